"""One configuration, read from environment variables; tests pass a mapping instead."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class ConfigError(RuntimeError):
    """The configuration cannot run safely (for example production without a secret key)."""


def load_config(instance_path: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the settings from the environment, then apply explicit overrides."""
    env = os.environ
    production = env.get("FIELDSVC_ENV", "development") == "production"
    sqlite_default = "sqlite:///" + os.path.join(instance_path, "fieldsvc.sqlite3")
    database_url = env.get("DATABASE_URL") or sqlite_default
    # Accept the common postgres:// and postgresql:// spellings and use psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            database_url = "postgresql+psycopg://" + database_url[len(prefix):]
    config: dict[str, Any] = {
        "FIELDSVC_ENV": "production" if production else "development",
        "SECRET_KEY": env.get("SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MAX_CONTENT_LENGTH": 256 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
        "SUPPRESSION_K": int(env.get("SUPPRESSION_K", "5")),
        "SUPPRESSED_EXPORT_MAX_CELLS": int(env.get("SUPPRESSED_EXPORT_MAX_CELLS", "50000")),
        # How often a served process checks whether the protected release needs rebuilding.
        "RELEASE_REFRESH_SECONDS": float(env.get("RELEASE_REFRESH_SECONDS", "300")),
        # How often a served process folds new, amended and reviewed tallies into the summary
        # rollup (summaries stay exact in between; they read more raw lines).
        "ROLLUP_FOLD_SECONDS": float(env.get("ROLLUP_FOLD_SECONDS", "10")),
        # Summaries read the rollup when it has their dimensions (0: always the raw lines).
        "SUMMARY_ROLLUP": _bool(env.get("SUMMARY_ROLLUP"), True),
        "GEOCODER_USER_AGENT": env.get("GEOCODER_USER_AGENT", "fieldsvc (medical caravan tallies)"),
        "GEOCODER_MIN_DELAY_SECONDS": float(env.get("GEOCODER_MIN_DELAY_SECONDS", "1.1")),
        "API_TOKEN_HOURS": int(env.get("API_TOKEN_HOURS", "12")),
        # Failed logins allowed per username and per address within the window, then 429.
        "LOGIN_MAX_FAILURES_PER_USER": 5,
        "LOGIN_MAX_FAILURES_PER_IP": 20,
        "LOGIN_THROTTLE_MINUTES": 15,
        "LATE_SYNC_DAYS": 30,
        "BABEL_DEFAULT_LOCALE": "fr",
        "LANGUAGES": ["fr", "ar", "en"],
        # flask-smorest / OpenAPI
        "API_TITLE": "fieldsvc",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "WTF_CSRF_TIME_LIMIT": None,
        # Flask-Compress, applied by fieldsvc.http to answers of GET and HEAD only. gzip is what
        # every phone browser takes over plain HTTP too; small bodies are not worth it.
        "COMPRESS_REGISTER": False,
        "COMPRESS_ALGORITHM": ["gzip"],
        "COMPRESS_STREAMS": False,  # exports stream as they are made; never hold them to compress
        "COMPRESS_MIN_SIZE": 1024,
        "COMPRESS_MIMETYPES": [
            "text/html", "text/css", "text/plain", "text/csv", "text/javascript", "text/xml",
            "application/javascript", "application/json", "application/geo+json",
            "application/manifest+json", "application/xml", "image/svg+xml",
        ],
    }
    if overrides:
        config.update(overrides)
    if not config.get("SECRET_KEY"):
        if config["FIELDSVC_ENV"] == "production":
            raise ConfigError("SECRET_KEY must be set in production (FIELDSVC_ENV=production).")
        config["SECRET_KEY"] = _development_secret(instance_path)
    return config


def _development_secret(instance_path: str) -> str:
    """Keep one random secret per instance folder so development sessions survive restarts."""
    import secrets

    os.makedirs(instance_path, exist_ok=True)
    path = os.path.join(instance_path, "secret_key")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    key = secrets.token_hex(32)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key
