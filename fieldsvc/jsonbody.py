"""The API's one rule for request bodies: JSON only, refused with 415 before any parsing."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, request
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from fieldsvc.errors import DomainError


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


def json_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse bodies that are not JSON with a 415 problem (before any parsing)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not request.is_json:
            message = _("Send the body as JSON with Content-Type: application/json.")
            raise UnsupportedMediaType(message, errors={"Content-Type": [message]})
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if request.content_length is None and limit:
            # A chunked body is silently cut at the limit by werkzeug (then reads as broken
            # JSON); say 413 as for a declared length.
            if len(request.get_data(cache=True)) >= limit:
                raise RequestEntityTooLarge()
        return view(*args, **kwargs)

    return wrapper
