"""HTTP concerns every route shares, in one place: JSON-only bodies (and their depth and number
limits), compression, the caching of authenticated answers, and a commit that keeps a failure.

Problem documents live in errors.py, roles in security.py, pagination in pagination.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, Request, Response, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from fieldsvc.errors import DomainError
from fieldsvc.extensions import compress, db
from fieldsvc.security import ANONYMOUS, allowed_roles, current_principal, view_handler

# No request of ours nests deeper than a submission's lines (3) or carries a number longer than a
# few digits: anything past these is refused before Python's json module sees it (it recurses per
# level and converts digits in quadratic time).
MAX_JSON_DEPTH = 20
MAX_JSON_NUMBER_CHARS = 40
# A string, or an unterminated one up to the end: possessive, so no input makes it backtrack.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")
_JSON_LONG_NUMBER = re.compile(rb"[-+0-9.eE]{%d,}" % (MAX_JSON_NUMBER_CHARS + 1))


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


def init_http(app: Flask) -> None:
    """Refuse non-JSON bodies on JSON routes; compress answers to reads with Flask-Compress."""
    app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
        FastRoutes(app, app.wsgi_app), app.config)
    app.session_interface = CookieSessions()
    compress.init_app(app)
    declared: dict[tuple[str, str], bool] = {}

    @app.before_request
    def _json_bodies_only() -> None:
        if request.method not in {"POST", "PUT", "PATCH"} or request.endpoint is None:
            return
        key = (request.endpoint, request.method)
        takes_json = declared.get(key)
        if takes_json is None:
            view = app.view_functions.get(request.endpoint)
            takes_json = declared[key] = view is not None and _reads_json(view, request.method)
        if takes_json:
            refuse_non_json_body()

    @app.before_request
    def _bounded_json() -> None:
        if request.method in {"POST", "PUT", "PATCH", "DELETE"} and request.is_json:
            refuse_hostile_json(request.get_data(cache=True))

    @app.after_request
    def _no_store_when_authenticated(response: Response) -> Response:
        # What a caller sees with their token or session is theirs: no browser or proxy keeps it.
        if (response.is_json or request.path.startswith("/api/")) and _authenticated():
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.after_request
    def _compress(response: Response) -> Response:
        # Writes answer small bodies to phones on the ingest path: never spend time on them.
        if request.method not in {"GET", "HEAD"}:
            return response
        return compress.after_request(response)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the cookie's signer for a request that
    brings no session cookie (every phone and API call): the same empty session, sooner."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def _authenticated() -> bool:
    principal = g.get("principal")
    if principal is not None and principal.role != ANONYMOUS:
        return True
    return "Authorization" in request.headers or session.get("user_id") is not None


def _reads_json(view: Any, method: str) -> bool:
    handler = view_handler(view, method)
    apidoc = getattr(handler, "_apidoc", None) or {}
    parameters = apidoc.get("arguments", {}).get("parameters", [])
    return any(parameter.get("in") == "json" for parameter in parameters)


def refuse_non_json_body() -> None:
    """Answer 415 to a body that is not JSON, and 413 to a chunked body past the size limit.

    Callers the route does not allow get their 401 or 403 from the route itself first.
    """
    if not request.is_json:
        roles = allowed_roles(current_app.view_functions[request.endpoint], request.method)
        if roles is None or current_principal().role not in roles:
            return
        message = _("Send the body as JSON with Content-Type: application/json.")
        raise UnsupportedMediaType(message, errors={"Content-Type": [message]})
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit:
        # werkzeug silently cuts a chunked body at the limit (it then reads as broken JSON):
        # say 413 as for a declared length.
        if len(request.get_data(cache=True)) >= limit:
            raise RequestEntityTooLarge()


def refuse_hostile_json(raw: bytes) -> None:
    """Answer 400 to a JSON body nested past MAX_JSON_DEPTH or with a number past
    MAX_JSON_NUMBER_CHARS characters, in one linear pass over the bytes (strings skipped)."""
    problem = hostile_json(raw)
    if problem == "number":
        message = _("Numbers may have at most %(count)s characters.",
                    count=MAX_JSON_NUMBER_CHARS)
        raise DomainError(message, errors={"_schema": [message]})
    if problem == "depth":
        message = _("JSON may nest at most %(count)s levels of arrays and objects.",
                    count=MAX_JSON_DEPTH)
        raise DomainError(message, errors={"_schema": [message]})


def hostile_json(raw: bytes) -> str | None:
    """What makes a JSON body too costly to parse: "number" (too long), "depth", or None."""
    if not raw:
        return None
    outside_strings = _JSON_STRING.sub(b'""', raw) if b'"' in raw else raw
    if _JSON_LONG_NUMBER.search(outside_strings):
        return "number"
    depth = 0
    for bracket in _JSON_BRACKET.finditer(outside_strings):
        if bracket.group() in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return "depth"
        else:
            depth -= 1
    return None


# A lean handler for one hot route: given the WSGI environ, a response, or None to let the
# application serve the request in full (it must then leave wsgi.input readable from the start).
FastHandler = Callable[[dict[str, Any]], Any]
FAST_ROUTES = "fieldsvc.fast_routes"


def register_fast_route(app: Flask, method: str, path: str, handler: FastHandler) -> None:
    """Let ``handler`` try ``method path`` before Flask's dispatch (see FastRoutes)."""
    app.extensions.setdefault(FAST_ROUTES, {})[(method, path)] = handler


class FastRoutes:
    """Offer the requests of a few hot routes to a lean handler before the full application.

    A handler serves what it is sure of (a volunteer's usual tally) and declines the rest, which
    then goes through every layer as any request does: errors, odd callers and rare cases keep
    one implementation. Sits inside TrustedProxies, so the handler sees the caller's address.
    """

    def __init__(self, app: Flask, wsgi_app: Callable[..., Any]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        routes = self.app.extensions.get(FAST_ROUTES)
        if routes:
            handler = routes.get((environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")))
            if handler is not None:
                response = handler(environ)
                if response is not None:
                    return response(environ, start_response)
        return self.wsgi_app(environ, start_response)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Networks from addresses or CIDR blocks ("127.0.0.1", "10.0.0.0/8"); ValueError if bad."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


class TrustedProxies:
    """Take the caller's address from X-Forwarded-For, believing only the proxies we trust.

    Like werkzeug's ProxyFix, but by address (the TRUSTED_PROXIES setting) rather than by a
    count of hops: walking X-Forwarded-For from the right, every hop a trusted proxy added is
    skipped, and the first address no trusted proxy vouches for is the caller. A request that
    does not come from a trusted proxy keeps its own address, whatever headers it sends, so
    throttles and the audit log see each phone of a caravan's hotspot as the hotspot, and every
    caller behind the proxy as themself.
    """

    def __init__(self, wsgi_app: Callable[..., Any], config: Any) -> None:
        self.wsgi_app = wsgi_app
        self.config = config
        self._parsed: dict[tuple[str, ...], tuple[Network, ...]] = {}

    def _networks(self) -> tuple[Network, ...]:
        entries = tuple(self.config.get("TRUSTED_PROXIES") or ())
        networks = self._parsed.get(entries)
        if networks is None:
            networks = self._parsed[entries] = parse_networks(entries)
        return networks

    @staticmethod
    def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        networks = self._networks()
        peer = environ.get("REMOTE_ADDR") or ""
        if networks and self._trusted(peer, networks):
            client = peer
            hops = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
            for hop in reversed([hop.strip() for hop in hops if hop.strip()]):
                try:
                    ipaddress.ip_address(hop)
                except ValueError:
                    break  # garbage from the caller: keep the last address a proxy vouched for
                client = hop
                if not self._trusted(hop, networks):
                    break
            environ["fieldsvc.proxy_addr"] = peer
            environ["REMOTE_ADDR"] = client
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in {"http", "https"}:
                environ["wsgi.url_scheme"] = proto
        return self.wsgi_app(environ, start_response)


T = TypeVar("T")


def commit_keeping(kept: type[Exception], call: Callable[[], T]) -> T:
    """Run a route's service call and commit its work; when it fails with ``kept``, commit what
    it recorded before failing (a wrong join code: it is what throttles guessing), then re-raise."""
    try:
        result = call()
    except kept:
        db.session.commit()
        raise
    db.session.commit()
    return result
