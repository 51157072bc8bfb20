"""One configuration, read from environment variables; tests pass a mapping instead."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


MIN_SECRET_KEY_BYTES = 32
# The languages of every page, answer and report (the first is the default).
LANGUAGES = ("fr", "ar", "en")


class ConfigError(RuntimeError):
    """The configuration cannot run safely (for example production without a secret key)."""


def load_config(instance_path: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the settings from the environment, then apply explicit overrides."""
    env = os.environ
    production = env.get("FIELDSVC_ENV", "development") == "production"
    sqlite_default = "sqlite:///" + os.path.join(instance_path, "fieldsvc.sqlite3")
    database_url = psycopg_url(env.get("DATABASE_URL") or sqlite_default)
    config: dict[str, Any] = {
        "FIELDSVC_ENV": "production" if production else "development",
        "SECRET_KEY": env.get("SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # A PostgreSQL streaming replica of DATABASE_URL that summaries, needs, plans and exports
        # read from (fieldsvc.replica); unset, everything reads the primary.
        "READ_DATABASE_URL": env.get("READ_DATABASE_URL") or None,
        # Past this replication lag, reads go to the primary instead (0: however far behind).
        "READ_DATABASE_MAX_LAG_SECONDS": float(env.get("READ_DATABASE_MAX_LAG_SECONDS", "60")),
        # After the replica failed to answer, reads stay on the primary this long before trying
        # it again (a dead host costs a connect timeout, not every request).
        "READ_DATABASE_RETRY_SECONDS": float(env.get("READ_DATABASE_RETRY_SECONDS", "30")),
        "MAX_CONTENT_LENGTH": 256 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        # Join links must open on phones: serving on every interface (0.0.0.0) means the LAN address.
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL")
        or reachable_base_url(env.get("GUNICORN_BIND", "127.0.0.1:8000")),
        "SUPPRESSION_K": int(env.get("SUPPRESSION_K", "5")),
        "SUPPRESSED_EXPORT_MAX_CELLS": int(env.get("SUPPRESSED_EXPORT_MAX_CELLS", "50000")),
        # The operator's DHIS2 mapping (flask --app wsgi dhis2 mapping-template); default: codes.
        "DHIS2_MAPPING_FILE": env.get("DHIS2_MAPPING_FILE") or None,
        # How often a served process checks whether the protected release needs rebuilding.
        "RELEASE_REFRESH_SECONDS": float(env.get("RELEASE_REFRESH_SECONDS", "300")),
        # How often a served process folds new, amended and reviewed tallies into the summary
        # rollup (summaries stay exact in between; they read more raw lines).
        "ROLLUP_FOLD_SECONDS": float(env.get("ROLLUP_FOLD_SECONDS", "10")),
        # On PostgreSQL, a device's usual tally is served by fieldsvc.tallies.lean, without the
        # framework's layers (0: every request through the whole application).
        "LEAN_INGEST": _bool(env.get("LEAN_INGEST"), True),
        # Summaries read the rollup when it has their dimensions (0: always the raw lines).
        "SUMMARY_ROLLUP": _bool(env.get("SUMMARY_ROLLUP"), True),
        "GEOCODER_USER_AGENT": env.get("GEOCODER_USER_AGENT", "fieldsvc (medical caravan tallies)"),
        "GEOCODER_MIN_DELAY_SECONDS": float(env.get("GEOCODER_MIN_DELAY_SECONDS", "1.1")),
        "API_TOKEN_HOURS": int(env.get("API_TOKEN_HOURS", "12")),
        # Addresses or networks of the reverse proxies whose X-Forwarded-For and
        # X-Forwarded-Proto are believed (e.g. "127.0.0.1, 10.0.0.0/8"); none by default.
        "TRUSTED_PROXIES": [part.strip() for part in env.get("TRUSTED_PROXIES", "").split(",")
                            if part.strip()],
        # Failed logins (accounts.services.LoginPolicy, README "Logging in"): per username and
        # caller, 5 free tries then waits of 1 minute doubling up to an hour; 20 failures per
        # address in 15 minutes; 50 per username from unknown callers; counted over 24 hours.
        "LOGIN_FREE_FAILURES": 5,
        "LOGIN_FIRST_DELAY_SECONDS": 60,
        "LOGIN_MAX_DELAY_SECONDS": 3600,
        "LOGIN_MAX_FAILURES_PER_IP": 20,
        "LOGIN_MAX_FAILURES_PER_USER": 50,
        "LOGIN_WINDOW_HOURS": 24,
        "LATE_SYNC_DAYS": 30,
        # Plans cost seconds of CPU: a caller gets PLAN_MAX_PER_MINUTE of them a minute, and a
        # process computes at most PLAN_CONCURRENCY at once (the single SQLite worker keeps its
        # other threads for /healthz and the phones); a plan waits PLAN_WAIT_SECONDS for a slot.
        "PLAN_MAX_PER_MINUTE": int(env.get("PLAN_MAX_PER_MINUTE", "6")),
        "PLAN_CONCURRENCY": int(env.get("PLAN_CONCURRENCY", "2")),
        "PLAN_WAIT_SECONDS": float(env.get("PLAN_WAIT_SECONDS", "5")),
        # Two caravans this close in km and days get a clash warning (fieldsvc.caravans.clashes).
        "CLASH_KM": float(env.get("CLASH_KM", "30")),
        "CLASH_DAYS": int(env.get("CLASH_DAYS", "14")),
        "BABEL_DEFAULT_LOCALE": LANGUAGES[0],
        "LANGUAGES": list(LANGUAGES),
        # Maps draw points and region outlines offline; a tile server (e.g.
        # https://tile.openstreetmap.org/{z}/{x}/{y}.png) is used, and allowed by the CSP, only
        # when configured here.
        "MAP_TILE_URL": env.get("MAP_TILE_URL") or None,
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
    _replica_bind(config)
    if not config.get("SECRET_KEY"):
        if config["FIELDSVC_ENV"] == "production":
            raise ConfigError("SECRET_KEY must be set in production (FIELDSVC_ENV=production).")
        config["SECRET_KEY"] = _development_secret(instance_path)
    secret = config["SECRET_KEY"]
    secret_bytes = len(secret.encode("utf-8") if isinstance(secret, str) else secret)
    if config["FIELDSVC_ENV"] == "production" and secret_bytes < MIN_SECRET_KEY_BYTES:
        raise ConfigError(
            f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes in production; generate "
            "one with: python3 -c 'import secrets; print(secrets.token_hex(32))'")
    for entry in config.get("TRUSTED_PROXIES") or ():
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {entry!r} is not an address or a network "
                              "(e.g. 127.0.0.1 or 10.0.0.0/8).") from None
    return config


def psycopg_url(url: str) -> str:
    """Accept the common postgres:// and postgresql:// spellings and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


REPLICA_BIND = "replica"


def _replica_bind(config: dict[str, Any]) -> None:
    """Give READ_DATABASE_URL its own engine (a Flask-SQLAlchemy bind no model names)."""
    url = config.get("READ_DATABASE_URL")
    if not url:
        config["READ_DATABASE_URL"] = None
        return
    url = config["READ_DATABASE_URL"] = psycopg_url(str(url))
    if not url.startswith("postgresql+psycopg://") or not str(
            config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        raise ConfigError("READ_DATABASE_URL must name a PostgreSQL streaming replica of a "
                          "PostgreSQL DATABASE_URL (postgresql://user@host:port/database).")
    binds = dict(config.get("SQLALCHEMY_BINDS") or {})
    # A short connect timeout: an unreachable replica sends reads to the primary, not to a
    # minute-long wait.
    binds[REPLICA_BIND] = {"url": url, "pool_pre_ping": True,
                           "connect_args": {"connect_timeout": 2}}
    config["SQLALCHEMY_BINDS"] = binds


def lan_address() -> str:
    """This machine's address on its local network, as other devices there reach it."""
    import socket

    try:
        # Connecting a UDP socket sends nothing; it only picks the interface of the default route.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        if address and not address.startswith(("0.", "127.")):
            return address
    except OSError:
        pass
    try:
        address = socket.gethostbyname(socket.gethostname())
        if not address.startswith("127."):
            return address
    except OSError:
        pass
    return "127.0.0.1"


def reachable_base_url(bind: str) -> str:
    """The http address of a server bound to ``bind`` (gunicorn's HOST:PORT) that phones can open."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = lan_address()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port or '8000'}"


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
