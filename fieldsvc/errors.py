"""Domain errors and their RFC 9457 problem+json rendering."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, json, request
from flask_babel import lazy_gettext as _l
from marshmallow import INCLUDE, Schema, fields
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE_BASE = "https://fieldsvc.org/problems/"
PROBLEM_JSON = "application/problem+json"


class ProblemSchema(Schema):
    """What every error answer is (RFC 9457), as the OpenAPI document describes it."""

    class Meta:
        # Some problems add members: understood, accepted_until, retry_after, nearest…
        unknown = INCLUDE

    type = fields.String(metadata={"example": PROBLEM_TYPE_BASE + "validation",
                                   "description": "A URI naming the kind of problem"})
    title = fields.String(metadata={"example": "Validation failed",
                                    "description": "Short, in the caller's language"})
    status = fields.Integer(metadata={"example": 422})
    detail = fields.String(metadata={
        "example": "Some fields are invalid: commune: Use the commune's HCP code, e.g. "
                   "08.587.01.13.",
        "description": "What went wrong and what to fix, in the caller's language"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "For invalid input: each field's path and its messages",
        "example": {"commune": ["Use the commune's HCP code, e.g. 08.587.01.13."]}})


class DomainError(Exception):
    """A request that the domain refuses; becomes a problem+json response."""

    status = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: dict[str, Any] | None = None,
        status: int | None = None,
        title: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.extra = extra


class ValidationFailed(DomainError):
    status = 422
    title = "Validation failed"
    type_slug = "validation"


class NotFound(DomainError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class Unauthorized(DomainError):
    status = 401
    title = "Authentication required"
    type_slug = "unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"
    type_slug = "too-many-requests"


def problem(
    status: int,
    title: str,
    detail: Any,
    *,
    type_slug: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Render an RFC 9457 problem document (title and detail in the request's language)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (type_slug or str(status)),
        "title": str(TITLES.get(title, title)),
        "status": status,
        "detail": str(detail),
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = Response(
        # "replace": a lone surrogate echoed from bad input must not turn a 4xx into a 500.
        json.dumps(body, ensure_ascii=False).encode("utf-8", "replace"),
        status=status, mimetype=PROBLEM_JSON,
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


# marshmallow's own messages are English: read each in the caller's language when it answers.
_SCHEMA_MESSAGES = {
    "Missing data for required field.": _l("Missing data for required field."),
    "Field may not be null.": _l("Field may not be null."),
    "Invalid value.": _l("Invalid value."),
    "Not a valid string.": _l("Not a valid string."),
    "Not a valid number.": _l("Not a valid number."),
    "Number too large.": _l("Number too large."),
    "Not a valid integer.": _l("Not a valid integer."),
    "Special numeric values (nan or infinity) are not permitted.":
        _l("Special numeric values (nan or infinity) are not permitted."),
    "Not a valid boolean.": _l("Not a valid boolean."),
    "Not a valid date.": _l("Not a valid date."),
    "Not a valid datetime.": _l("Not a valid datetime."),
    "Not a valid list.": _l("Not a valid list."),
    "Not a valid mapping type.": _l("Not a valid mapping type."),
    "Not a valid UUID.": _l("Not a valid UUID."),
    "Invalid type.": _l("Invalid type."),
    "Invalid input type.": _l("Invalid input type."),
    "Unknown field.": _l("Unknown field."),
}
_SCHEMA_PATTERNS = [
    (re.compile(r"Must be one of: (?P<choices>.*)\."), _l("Must be one of: %(choices)s.")),
    (re.compile(r"Shorter than minimum length (?P<min>\d+)\."),
     _l("Shorter than minimum length %(min)s.")),
    (re.compile(r"Longer than maximum length (?P<max>\d+)\."),
     _l("Longer than maximum length %(max)s.")),
    (re.compile(r"Length must be between (?P<min>\d+) and (?P<max>\d+)\."),
     _l("Length must be between %(min)s and %(max)s.")),
    (re.compile(r"Must be greater than or equal to (?P<min>\S+) and less than or equal to "
                r"(?P<max>\S+)\."),
     _l("Must be greater than or equal to %(min)s and less than or equal to %(max)s.")),
]


def _in_callers_language(message: str) -> str:
    if message in _SCHEMA_MESSAGES:
        return str(_SCHEMA_MESSAGES[message])
    for pattern, translated in _SCHEMA_PATTERNS:
        match = pattern.fullmatch(message)
        if match:
            return str(translated) % match.groupdict()
    return message


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into {"lines[0].count": ["..."]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif prefix:
                path = f"{prefix}.{key}"
            else:
                path = str(key)
            if key == "_schema":
                path = prefix or "_schema"
            flat.update(_merge(flat, flatten_messages(value, path)))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = [_in_callers_language(m) for m in messages]
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}[{index}]"))
    else:
        flat[prefix or "_schema"] = [_in_callers_language(str(messages))]
    return flat


def _merge(existing: dict[str, list[str]], new: dict[str, list[str]]) -> dict[str, list[str]]:
    for key, value in new.items():
        if key in existing:
            new[key] = existing[key] + value
    return new


_HTTP_DETAILS = {
    400: _l("The request could not be read; check that it is well-formed JSON."),
    401: _l("Log in, or send a valid bearer token in the Authorization header."),
    403: _l("Your role or scope does not allow this."),
    404: _l("Nothing exists at this address."),
    405: _l("This address does not accept that method."),
    413: _l("The request body is too large (the limit is 256 KB); split the submission."),
    415: _l("Send the body as application/json."),
}
# Every problem's title, in the caller's language: `problem` looks the English title up here.
TITLES: dict[str, Any] = {
    "Bad request": _l("Bad request"),
    "Authentication required": _l("Authentication required"),
    "Forbidden": _l("Forbidden"),
    "Not found": _l("Not found"),
    "Method not allowed": _l("Method not allowed"),
    "Conflict": _l("Conflict"),
    "Request too large": _l("Request too large"),
    "Unsupported media type": _l("Unsupported media type"),
    "Validation failed": _l("Validation failed"),
    "Too many requests": _l("Too many requests"),
    "Internal error": _l("Internal error"),
    "Gone": _l("Gone"),
    "Busy": _l("Busy"),
    "Service unavailable": _l("Service unavailable"),
    "PDF unavailable": _l("PDF unavailable"),
    "DHIS2 mapping unusable": _l("DHIS2 mapping unusable"),
}
# Werkzeug's names are English only (and capitalised differently): the titles we use instead.
_HTTP_TITLES = {
    400: "Bad request", 401: "Authentication required", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Request too large",
    415: "Unsupported media type", 422: "Validation failed", 429: "Too many requests",
}


def problem_from_http_exception(error: HTTPException) -> Response:
    """Render a werkzeug/webargs HTTP error as a problem document."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    errors = None
    if messages:
        # webargs nests messages under the location ("json", "query"); strip it.
        if isinstance(messages, dict) and len(messages) == 1:
            (location, inner), = messages.items()
            if location in {"json", "query", "form", "headers", "view_args", "files"}:
                messages = inner
        errors = flatten_messages(messages)
    if status == 422 and errors:
        detail = str(_l("Some fields are invalid: ")) + "; ".join(
            f"{field}: {' '.join(map(str, msgs))}" for field, msgs in list(errors.items())[:5]
        )
        return problem(422, _HTTP_TITLES[422], detail, type_slug="validation", errors=errors)
    detail = _HTTP_DETAILS.get(status) or (error.description or error.name)
    headers = dict(error.get_headers()) if status in {401, 405} else {}
    headers.pop("Content-Type", None)
    return problem(status, _HTTP_TITLES.get(status, error.name), detail, type_slug=str(status),
                   errors=errors, headers=headers)


def unstorable_text(value: Any, path: str = "") -> str | None:
    """The path of the first string a database cannot store (NUL, unpaired surrogate), if any."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            return path or "_schema"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unstorable_text(key, path) or unstorable_text(
                item, f"{path}.{key}" if path else str(key)
            )
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_text(item, f"{path}[{index}]")
            if found:
                return found
    return None


def may_hold_unstorable_text(raw: bytes) -> bool:
    """Whether a JSON body must be walked with :func:`unstorable_text`: an ASCII body can only
    carry NUL or a surrogate as a \\u escape, so without one it need not be parsed for it."""
    return not (raw.isascii() and b"\\u" not in raw and b"\x00" not in raw)


def refuse_unstorable_text() -> Response | None:
    """Refuse NUL characters and unpaired surrogates in JSON bodies and query strings up front."""
    found = None
    for key, value in request.args.items(multi=True):
        found = unstorable_text(key) or unstorable_text(value, key)
        if found:
            break
    if not found and request.method in {"POST", "PUT", "PATCH"} and request.is_json:
        raw = request.get_data(cache=True)
        if may_hold_unstorable_text(raw):
            found = unstorable_text(request.get_json(silent=True, cache=True))
    if not found:
        return None
    return problem(
        422,
        _HTTP_TITLES[422],
        str(_l("%(field)s: text may not contain NUL characters or unpaired surrogates.",
               field=found)),
        type_slug="validation",
        errors={found: [str(_l("Remove NUL characters and unpaired surrogates."))]},
    )


_ERROR_PAGE = "fieldsvc_error_page"


def register_error_page(app: Flask, page: Callable[[HTTPException], Any]) -> None:
    """Let a browser asking for a missing page get `page(error)` (the web domain's HTML)."""
    app.extensions[_ERROR_PAGE] = page


def register_error_handlers(app: Flask) -> None:
    """Make every error a problem document (HTML pages may render their own)."""
    app.before_request(refuse_unstorable_text)

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError) -> Response:
        return problem(
            error.status,
            error.title,
            error.detail,
            type_slug=error.type_slug,
            errors=error.errors,
            **error.extra,
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Any:
        page = app.extensions.get(_ERROR_PAGE)
        if page is not None and _wants_html() and error.code in {404, 405}:
            try:
                return page(error)
            except Exception:  # noqa: BLE001 - a broken page must not hide the error itself
                app.logger.exception("The error page failed; answering problem+json")
        return problem_from_http_exception(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return problem_from_http_exception(error)
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return problem(
            500,
            "Internal error",
            _l("Something went wrong on our side; nothing was saved. Try again later."),
            type_slug="internal",
        )


def _wants_html() -> bool:
    if request.path.startswith("/api/") or request.path == "/healthz":
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "text/html"
