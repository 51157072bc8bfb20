"""Who is calling, and which roles each route allows.

Every view declares its audience with ``@allow(...)``; a view without one is refused for
everybody (deny by default), and a test walks the URL map to keep it that way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import gettext as _

from fieldsvc.errors import Forbidden, TooManyRequests, Unauthorized, problem

ANONYMOUS = "anonymous"
VOLUNTEER = "volunteer"
STAFF_ROLES = ("admin", "coordinator", "planner")
ALL_ROLES = (*STAFF_ROLES, VOLUNTEER, ANONYMOUS)

F = TypeVar("F", bound=Callable[..., Any])


# Staff bearer tokens start with this, so that one no longer valid gets the staff's wording
# (ask for a new one with a password) rather than the volunteers' (join again with a code).
STAFF_TOKEN_PREFIX = "st_"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def refuse_when_throttled(
    failures: int,
    oldest: dt.datetime | None,
    *,
    limit: int,
    window: dt.timedelta,
    now: dt.datetime,
    message: Callable[[int], str],
) -> None:
    """Answer 429 with Retry-After once `failures` within `window` reach `limit`.

    Callers count their failures in the database (the audit log for logins, enrollment_failure
    for join codes), so every gunicorn worker sees the same count; `oldest` is the earliest
    failure still in the window, and `message` words the refusal from the seconds to wait.
    """
    if failures < limit:
        return
    if oldest is None:
        retry = int(window.total_seconds())
    else:
        if oldest.tzinfo is None:  # SQLite gives back naive UTC
            oldest = oldest.replace(tzinfo=dt.UTC)
        retry = max(1, math.ceil((oldest + window - now).total_seconds()))
    raise TooManyRequests(message(retry), headers={"Retry-After": str(retry)}, retry_after=retry)


@dataclass
class Principal:
    """The caller: a staff user, a volunteer's device enrollment, or nobody."""

    role: str = ANONYMOUS
    user: Any = None
    enrollment: Any = None
    region_codes: list[str] = field(default_factory=list)
    organization_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def actor_id(self) -> str | None:
        if self.user is not None:
            return str(self.user.id)
        if self.enrollment is not None:
            return f"enrollment:{self.enrollment.id}"
        return None

    @property
    def enrollment_id(self) -> int | None:
        """The calling device's enrollment id (None for staff and nobody)."""
        return self.enrollment.id if self.enrollment is not None else None

    @property
    def enrollment_caravan_id(self) -> int | None:
        """The caravan the calling device joined (None for staff and nobody)."""
        return self.enrollment.caravan_id if self.enrollment is not None else None

    def in_region(self, region_code: str | None) -> bool:
        """Whether this principal may act with full detail on a region's data."""
        if self.role == "admin":
            return True
        return self.role == "coordinator" and region_code in self.region_codes


# Where a domain registers how a bearer token becomes a device's principal (caravans does):
# this module knows roles, not caravans. The loader returns None for a token that is no
# device's, and raises Unauthorized for a device token that no longer works.
DeviceLoader = Callable[[str], Principal | None]
DEVICE_LOADER = "fieldsvc.device_loader"


def register_device_loader(app: Flask, loader: DeviceLoader) -> None:
    """Let bearer tokens of volunteers' devices authenticate through ``loader``."""
    app.extensions[DEVICE_LOADER] = loader


# The same for staff (accounts does): a bearer token's digest → its user (None for a token that
# is no staff token; Unauthorized for one that expired), and a web session → its user or None.
STAFF_LOADERS = "fieldsvc.staff_loaders"


def register_staff_loaders(app: Flask, token_user: Callable[[str], Any],
                           session_user: Callable[[Any, Any], Any]) -> None:
    """Let staff bearer tokens and web sessions authenticate through these two loaders."""
    app.extensions[STAFF_LOADERS] = (token_user, session_user)


def _nobody(*_: Any) -> None:
    return None


def current_principal() -> Principal:
    if not has_request_context():
        return Principal()  # a command-line operator: audited as "system"
    principal = g.get("principal")
    if principal is None:
        principal = _load_principal()
        g.principal = principal
    return principal


def allow(*roles: str) -> Callable[[F], F]:
    """Declare which roles may call a view; enforced before the view runs."""
    unknown = set(roles) - set(ALL_ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal.role not in roles:
                if principal.role == ANONYMOUS:
                    raise Unauthorized(
                        _("Log in, or send a valid bearer token in the Authorization header.")
                    )
                raise Forbidden(_("The %(role)s role may not do this.", role=principal.role))
            return view(*args, **kwargs)

        wrapper._allowed_roles = tuple(roles)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def view_handler(view: Any, method: str | None = None) -> Any:
    """The function that answers `method` on a view (a MethodView's method, or the view)."""
    view_class = getattr(view, "view_class", None)
    if view_class is None or method is None:
        return view
    handler = getattr(view_class, method.lower(), None)
    if handler is None and method.upper() == "HEAD":
        handler = getattr(view_class, "get", None)
    return handler


def allowed_roles(view: Any, method: str | None = None) -> tuple[str, ...] | None:
    """The roles a view function (or a MethodView's method) declared, if any."""
    handler = view_handler(view, method)
    return _find_roles(handler) if handler is not None else None


def _find_roles(func: Any) -> tuple[str, ...] | None:
    seen = 0
    while func is not None and seen < 20:
        roles = getattr(func, "_allowed_roles", None)
        if roles is not None:
            return roles
        func = getattr(func, "__wrapped__", None)
        seen += 1
    return None


# Endpoints that serve files and pages with no data; everything else must declare @allow.
PUBLIC_ENDPOINTS = {"static", "api-docs.openapi_json"}


def init_security(app: Flask) -> None:
    """Refuse any endpoint that did not declare its audience; add security headers."""

    # The roles each endpoint and method declared, looked up once (views do not change).
    declared: dict[tuple[str, str], Any] = {}

    @app.before_request
    def _deny_undeclared() -> Any:
        endpoint = request.endpoint
        if endpoint is None or endpoint in PUBLIC_ENDPOINTS or endpoint.endswith(".static"):
            return None  # blueprints' static files are public like the app's
        view = app.view_functions.get(endpoint)
        if view is None:
            return None
        if request.method == "OPTIONS":
            return None
        key = (endpoint, request.method)
        roles = declared.get(key, declared)  # the dict itself: not looked up yet
        if roles is declared:
            roles = declared[key] = allowed_roles(view, request.method)
        if roles is None:
            app.logger.error("Endpoint %s declares no roles; refusing", endpoint)
            return problem(403, "Forbidden", _("This address is not open to anyone yet."))
        return None

    security_headers = with_tile_server(SECURITY_HEADERS, app.config.get("MAP_TILE_URL"))

    @app.after_request
    def _security_headers(response: Any) -> Any:
        headers = response.headers
        present = {key.lower() for key in headers.keys()}
        for key, value in security_headers:
            if key.lower() not in present:
                headers.add(key, value)
        if app.config.get("SESSION_COOKIE_SECURE"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


# Added to every answer that does not set its own (computed once, not per request).
SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     "connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
     "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


def with_tile_server(headers: tuple[tuple[str, str], ...], tile_url: str | None
                     ) -> tuple[tuple[str, str], ...]:
    """The headers with the configured map tile server's origin allowed as an image source."""
    if not tile_url:
        return headers
    from urllib.parse import urlsplit

    parts = urlsplit(tile_url.replace("{s}", "a"))
    origin = f"{parts.scheme}://{parts.netloc}"
    if "{s}" in tile_url:  # Leaflet's subdomains a, b, c
        origin = f"{parts.scheme}://*.{parts.netloc.split('.', 1)[1]}"
    return tuple(
        (key, value.replace("img-src 'self' data:", f"img-src 'self' data: {origin}"))
        if key == "Content-Security-Policy" else (key, value)
        for key, value in headers
    )


def _load_principal() -> Principal:
    token_user, session_user = current_app.extensions.get(STAFF_LOADERS, (_nobody, _nobody))
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        token = header[7:].strip()
        digest = token_digest(token)
        loader = current_app.extensions.get(DEVICE_LOADER)
        # A staff token (prefixed) is looked up first, with its user and regions in the same
        # query: one round trip instead of four. A device token may start like one by chance.
        staff_first = token.startswith(STAFF_TOKEN_PREFIX)
        device = loader(digest) if loader is not None and not staff_first else None
        if device is not None:
            return device
        user = token_user(digest)
        if user is None and staff_first and loader is not None:
            device = loader(digest)
            if device is not None:
                return device
        if user is not None:
            return _staff(user)
        if token.startswith(STAFF_TOKEN_PREFIX):
            raise Unauthorized(_("This staff token is no longer valid (revoked or replaced); ask "
                                 "for a new one: POST /api/v1/tokens with your username and "
                                 "password."))
        raise Unauthorized(_("Unknown device token; join the caravan again with its code."))
    user_id = session.get("user_id")
    # The API is exempt from CSRF tokens, so a session cookie may only read it; changes through
    # the API need a bearer token (pages post forms, which carry CSRF tokens).
    if request.path.startswith("/api/") and request.method not in {"GET", "HEAD", "OPTIONS"}:
        user_id = None
    if user_id is not None:
        # The cookie alone is not enough: its session must still be open on the server.
        user = session_user(session.get("sid"), user_id)
        if user is not None:
            return _staff(user)
    return Principal()


def _staff(user: Any) -> Principal:
    return Principal(
        role=user.role,
        user=user,
        region_codes=list(user.region_codes),
        organization_id=user.organization_id,
    )


def document_access(app: Flask, spec: Any) -> None:
    """Write each operation's roles and authentication scheme into the OpenAPI document."""
    import re

    paths = spec._paths  # apispec keeps the registered paths here until the spec is rendered
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operations = paths.get(path)
        if not operations:
            continue
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = operations.get(method.lower())
            roles = allowed_roles(view, method)
            if operation is None or roles is None:
                continue
            who = ", ".join(roles)
            note = f"Allowed: {who}."
            description = operation.get("description", "")
            if note not in description:
                operation["description"] = f"{description}\n\n{note}".strip()
            if "security" not in operation:
                schemes: list[dict[str, list[str]]] = []
                if VOLUNTEER in roles or any(role in STAFF_ROLES for role in roles):
                    schemes.append({"bearer": []})
                if ANONYMOUS in roles:
                    schemes.append({})
                operation["security"] = schemes
