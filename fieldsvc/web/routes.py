"""Pages and the health check."""

from __future__ import annotations

import datetime as dt
import os
import struct
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import select, text
from werkzeug.exceptions import HTTPException

from fieldsvc.accounts import services as accounts
from fieldsvc.areas.models import Area
from fieldsvc.errors import DomainError, Forbidden, TooManyRequests, register_error_page
from fieldsvc.extensions import db
from fieldsvc.replica import replica_health
from fieldsvc.security import ALL_ROLES, STAFF_ROLES, Principal, allow, current_principal
from fieldsvc.web.forms import LoginForm, LogoutForm
from fieldsvc.web.insights_routes import insights_blp
from fieldsvc.web.phone_routes import phone_blp
from fieldsvc.web.services import languages, migration_state
from fieldsvc.web.volunteer_routes import volunteer_blp
from fieldsvc.web.workspace_routes import workspace_blp


class _WebBlueprint(Blueprint):
    def send_static_file(self, filename: str) -> Response:
        """Serve a page's CSS or script read whole, so that Flask-Compress gzips it too.

        Flask-Compress leaves a streamed file alone: Leaflet and Chart.js went out whole
        (147 KB and 210 KB) where gzip sends about a third.
        """
        response = super().send_static_file(filename)
        if response.status_code == 200 and response.mimetype in COMPRESSED_STATIC:
            response.direct_passthrough = False
            response.make_sequence()
        return response


COMPRESSED_STATIC = {"text/css", "text/javascript", "application/javascript", "application/json",
                     "image/svg+xml"}
web_blp = _WebBlueprint("web", __name__, template_folder="templates", static_folder="static",
                        static_url_path="/static/web")
web_blp.register_blueprint(phone_blp)  # the phone form: /app, /join, /sw.js (phone_routes.py)
web_blp.register_blueprint(workspace_blp)  # the coordinator's workspace (workspace_routes.py)
web_blp.register_blueprint(insights_blp)  # needs, map, plans, summaries (insights_routes.py)
# Contributions, clash notifications, certificates (volunteer_routes.py).
web_blp.register_blueprint(volunteer_blp)


@web_blp.route("/healthz")
@allow(*ALL_ROLES)
def healthz():
    """Report whether the database is reachable and migrated to head, and the read replica's lag."""
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - any failure means unreachable
        db.session.rollback()
        return jsonify(status="error", database="unreachable", migrations="unknown"), 503
    current, head = migration_state()
    migrated = current is not None and current == head
    body = {
        "status": "ok" if migrated else "error",
        "database": database,
        "migrations": "head" if migrated else "behind",
        "revision": current,
        "head": head,
    }
    replica = replica_health()
    if replica is not None:  # reads fall back to the primary: a replica down is not a 503
        body["replica"] = replica
    return jsonify(body), 200 if migrated else 503


# --- The interactive API docs (Swagger UI's files from swagger-ui-bundle: no CDN, no inline script)

_DOCS_ASSETS = {name: os.path.join(os.path.dirname(__file__), "static")
                for name in ("api-docs.js", "api-docs.css")}
_SWAGGER_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


@web_blp.route("/api/docs")
@allow(*ALL_ROLES)
def api_docs():
    """Browse and try the API (Swagger UI served by fieldsvc itself)."""
    return render_template("api_docs.html", spec_url=url_for("api-docs.openapi_json"),
                           token_minutes=DOCS_TOKEN_MINUTES)


# A token for the docs page lives long enough to try a few calls, not to be reused elsewhere.
DOCS_TOKEN_MINUTES = 15


@web_blp.route("/api-token", methods=["POST"])
@allow(*STAFF_ROLES)
def session_api_token():
    """Give the logged-in user a short-lived bearer token for the API docs page (CSRF-checked)."""
    principal = current_principal()
    # Only a browser session (whose POST carries its CSRF token) turns into a token here.
    if request.authorization is not None or session.get("user_id") != principal.user.id:
        raise Forbidden(_("Only a logged-in browser session can ask for a token here."))
    token, row = accounts.issue_token(principal.user,
                                      lifetime=dt.timedelta(minutes=DOCS_TOKEN_MINUTES))
    db.session.commit()
    response = jsonify(token=token, expires_at=row.expires_at.isoformat(),
                       minutes=DOCS_TOKEN_MINUTES)
    response.headers["Cache-Control"] = "no-store"
    return response


@web_blp.route("/api/docs/assets/<name>")
@allow(*ALL_ROLES)
def api_docs_asset(name: str):
    """Serve the docs page's script and Swagger UI's files."""
    folder = _DOCS_ASSETS.get(name)
    if folder is None and name in _SWAGGER_ASSETS:
        from swagger_ui_bundle import swagger_ui_path

        folder = str(swagger_ui_path)
    if folder is None:
        abort(404)
    return send_from_directory(folder, name, max_age=86400)


@web_blp.route("/favicon.ico")
@allow(*ALL_ROLES)
def favicon():
    """Serve the app's icon where browsers look for it unasked."""
    response = current_app.response_class(_favicon_bytes(), mimetype="image/vnd.microsoft.icon")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


@lru_cache(maxsize=1)
def _favicon_bytes() -> bytes:
    # An ICO holding the phone's 192 px PNG (ICO files may carry PNG images since Windows Vista).
    with open(os.path.join(os.path.dirname(__file__), "static", "phone", "icon-192.png"),
              "rb") as handle:
        png = handle.read()
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 192, 192, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


# --- Pages -------------------------------------------------------------------------------------

@web_blp.before_request
def _remember_language() -> None:
    """Keep the language chosen with ?lang= for the following pages."""
    chosen = request.args.get("lang")
    if chosen in current_app.config["LANGUAGES"] and session.get("lang") != chosen:
        session["lang"] = chosen


@web_blp.app_context_processor
def _page_context() -> dict[str, Any]:
    """What every page (ours and those extending base.html) needs: language, direction, caller."""
    locale = get_locale()
    lang = locale.language if locale is not None else current_app.config["BABEL_DEFAULT_LOCALE"]
    direction = locale.text_direction if locale is not None else "ltr"
    if not has_request_context():  # a template rendered by a command: nobody is logged in
        return {"page_lang": lang, "page_dir": direction, "languages": languages(),
                "principal": Principal(), "logout_form": None}
    try:
        principal = current_principal()
    except DomainError:  # a bad bearer token on a page: show it as logged out
        principal = Principal()
    return {
        "page_lang": lang,
        "page_dir": direction,
        "languages": languages(),
        "lang_url": _lang_url,
        "principal": principal,
        "logout_form": LogoutForm() if principal.user is not None else None,
    }


def _lang_url(code: str) -> str:
    args = request.args.to_dict()
    args["lang"] = code
    if request.endpoint and request.url_rule is not None and "GET" in request.url_rule.methods:
        try:
            return url_for(request.endpoint, **(request.view_args or {}), **args)
        except Exception:  # noqa: BLE001 - fall back to the same path
            pass
    return "?lang=" + code


def _has_control_characters(text: str | None) -> bool:
    return bool(text) and any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text)


def _safe_next(target: str | None) -> str:
    """Only follow a `next` that stays on this site (no //host or scheme, no control characters)."""
    if target and not _has_control_characters(target):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") \
                and not target.startswith("//") and "\\" not in target:
            return target
    return url_for("web.home")


@web_blp.route("/")
@allow(*ALL_ROLES)
def home():
    """Say what fieldsvc is, and who is logged in."""
    principal = current_principal()
    arabic = str(get_locale()) == "ar"
    regions = [
        {"code": area.code, "name": (area.name_ar if arabic else None) or area.name_fr}
        for area in db.session.scalars(
            select(Area).where(Area.code.in_(principal.region_codes)).order_by(Area.code))
    ] if principal.region_codes else []
    role_labels = {"admin": _("Administrator"), "coordinator": _("Regional coordinator"),
                   "planner": _("Association planner")}
    return render_template("home.html", regions=regions, role_labels=role_labels)


@web_blp.route("/login", methods=["GET", "POST"])
@allow(*ALL_ROLES)
def login():
    """Log a staff member in with a password (web session)."""
    form = LoginForm()
    error = None
    status = 200
    headers: dict[str, str] = {}
    if _has_control_characters(request.args.get("next")):
        # A header injection attempt (next=/x%0d%0aSet-Cookie:…): refused before any login.
        error = _("This login link is damaged; open the login page again.")
        return render_template("login.html", form=form, error=error), 400
    if form.validate_on_submit():
        try:
            user = accounts.login(form.username.data.strip(), form.password.data, method="web")
        except TooManyRequests as refused:
            user = None
            error = refused.detail
            status = 429
            headers["Retry-After"] = str(refused.extra["retry_after"])
        else:
            if user is None:
                db.session.commit()  # the failure is audited and counts towards the throttle
                error = _("Wrong username or password.")
        if user is not None:
            language = session.get("lang")
            session.clear()  # a fresh session for the logged-in user
            if language:
                session["lang"] = language
            session["user_id"] = user.id
            session["sid"] = accounts.start_web_session(user)
            db.session.commit()
            if not request.args.get("next") and user.role in ("admin", "coordinator"):
                return redirect(url_for("web.workspace.index"))  # their regions' caravans
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        error = _("Enter your username and password.")
    return render_template("login.html", form=form, error=error), status, headers


@web_blp.route("/logout", methods=["POST"])
@allow(*ALL_ROLES)
def logout():
    """End the web session."""
    principal = current_principal()
    if principal.user is not None and session.get("user_id") is not None:
        accounts.logout(principal.user, session.get("sid"))
        db.session.commit()
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    flash(_("You are logged out."))
    return redirect(url_for("web.home"))


@web_blp.record_once
def _register_error_page(state: Any) -> None:
    register_error_page(state.app, _error_page)


def _error_page(error: HTTPException) -> Any:
    """A missing page or a wrong method, as a page a browser user can act on."""
    return render_template("error.html", error=error), error.code


@web_blp.errorhandler(CSRFError)
def _form_expired(error: CSRFError) -> Any:
    """A form posted without a valid CSRF token: say so on the page, never act on it."""
    message = _("This form has expired or did not come from this site. Please try again.")
    if request.endpoint == "web.login":
        return render_template("login.html", form=LoginForm(formdata=None), error=message), 400
    return render_template("error.html", error=error, message=message), 400
