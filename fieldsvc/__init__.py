"""fieldsvc: anonymized tallies from Morocco's volunteer medical caravans."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, has_request_context, request, session
from werkzeug.routing import IntegerConverter

from fieldsvc.config import load_config
from fieldsvc.db import MAX_INT
from fieldsvc.errors import register_error_handlers
from fieldsvc.extensions import api, babel, csrf, db, migrate
from fieldsvc.http import init_http
from fieldsvc.security import document_access, init_security

# Each domain's routes module exposes `blp`, a flask-smorest Blueprint for its API; pages
# (including the API docs page) are all web's `web_blp`.
DOMAINS = ("catalog", "areas", "accounts", "caravans", "tallies", "insights", "exports",
           "volunteers", "web")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the fieldsvc application."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(load_config(app.instance_path, config))
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    # Ids in URLs fit the database's integer; a larger one is simply not found (never a 500).
    app.url_map.converters["int"] = BoundedIntegerConverter

    db.init_app(app)
    migrate.init_app(app, db, directory=_migrations_dir(), render_as_batch=True)
    babel.init_app(app, locale_selector=_select_locale)
    csrf.init_app(app)
    init_http(app)
    api.init_app(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})

    for name in DOMAINS:
        try:
            importlib.import_module(f"fieldsvc.{name}.models")
        except ModuleNotFoundError as error:
            if error.name != f"fieldsvc.{name}.models":
                raise
    for name in DOMAINS:
        module = importlib.import_module(f"fieldsvc.{name}.routes")
        if hasattr(module, "blp"):
            api.register_blueprint(module.blp)
            csrf.exempt(module.blp)  # the API authenticates with bearer tokens, not cookies
        if name == "web":
            app.register_blueprint(module.web_blp)

    document_access(app, api.spec)
    register_error_handlers(app)

    init_security(app)

    from fieldsvc.cli import register_cli

    register_cli(app)
    return app


class BoundedIntegerConverter(IntegerConverter):
    # 0 to 2147483647 in the pattern itself: a converter that refuses a matched value makes
    # werkzeug answer 405 (it noted the other methods' rules first) instead of 404.
    regex = (r"(?:\d{1,9}|1\d{9}|20\d{8}|21[0-3]\d{7}|214[0-6]\d{6}|2147[0-3]\d{5}"
             r"|21474[0-7]\d{4}|214748[0-2]\d{3}|2147483[0-5]\d{2}|21474836[0-3]\d"
             r"|214748364[0-7])(?!\d)")

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's signature
        kwargs.setdefault("max", MAX_INT)
        super().__init__(map, *args, **kwargs)


def _select_locale() -> str | None:
    """The language asked for with ?lang= or kept in the session, else the browser's best."""
    if not has_request_context():  # CLI commands (demo load) translate in the default locale
        return None
    languages = current_app.config["LANGUAGES"]
    chosen = request.args.get("lang") or session.get("lang")
    if chosen in languages:
        return chosen
    # Phones send the same few Accept-Language headers again and again: parse each once.
    header = request.headers.get("Accept-Language", "")
    cache = current_app.extensions.setdefault("fieldsvc_best_language", {})
    best = cache.get(header)
    if best is None:
        best = (request.accept_languages.best_match(languages)
                or current_app.config["BABEL_DEFAULT_LOCALE"])
        if len(cache) >= 512:  # bounded: headers are client input
            cache.clear()
        cache[header] = best
    return best


def _migrations_dir() -> str:
    import os

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")
