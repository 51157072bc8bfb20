"""Tallies API: submissions from phones and paper sheets, amendments, review, completeness."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request
from flask_babel import gettext as _
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestEntityTooLarge

from fieldsvc.errors import DomainError, NotFound
from fieldsvc.extensions import db
from fieldsvc.security import allow, current_principal
from fieldsvc.tallies import services
from fieldsvc.tallies.schemas import (
    MAX_ID,
    SUBMISSION_EXAMPLE,
    CompletenessSchema,
    ReviewSchema,
    SubmissionAmendSchema,
    SubmissionCreateSchema,
    SubmissionDetailSchema,
    SubmissionListArgs,
    SubmissionListSchema,
    SubmissionSchema,
)

blp = Blueprint("tallies", __name__, url_prefix="/api/v1",
                description="Submissions: volunteers' anonymized tallies, amendments and review")

STAFF_WRITERS = ("admin", "coordinator")


@blp.before_request
def _fresh_catalog_cache() -> None:
    # Tests run many requests in one app context; the catalog may have grown in between.
    g.pop("tallies_catalog", None)


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


def _submission_id(text: str) -> str:
    """The canonical form of a submission id from the address; anything else is not found."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise NotFound(_("No submission has this id.")) from None


@blp.route("/submissions", methods=["POST"])
@allow("volunteer", *STAFF_WRITERS)
@json_only
@blp.arguments(SubmissionCreateSchema, example=SUBMISSION_EXAMPLE)
@blp.response(201, SubmissionSchema)
@blp.alt_response(200, schema=SubmissionSchema, description="The same id and content again")
@blp.alt_response(409, description="The same id with other content: amend with PUT")
def create_submission(data: dict[str, Any]) -> Any:
    """Send a tally; retrying the same id and content answers 200 and stores nothing twice."""
    body, created = services.submit(data, current_principal())
    db.session.commit()
    return body, 201 if created else 200


@blp.route("/submissions", methods=["GET"])
@allow("volunteer", *STAFF_WRITERS)
@blp.arguments(SubmissionListArgs, location="query")
@blp.response(200, SubmissionListSchema)
def list_submissions(args: dict[str, Any]) -> Any:
    """List submissions: a coordinator's regions, or a volunteer's own."""
    return services.list_submissions(
        current_principal(), caravan_id=args.get("caravan_id"), day=args.get("day"),
        status=args.get("status"), limit=args["limit"], offset=args["offset"])


@blp.route("/submissions/<string:submission_id>", methods=["GET"])
@allow("volunteer", *STAFF_WRITERS)
@blp.response(200, SubmissionDetailSchema)
def get_submission(submission_id: str) -> Any:
    """Show a submission with all its versions and its review."""
    return services.get_submission(_submission_id(submission_id), current_principal())


@blp.route("/submissions/<string:submission_id>", methods=["PUT"])
@allow("volunteer", *STAFF_WRITERS)
@json_only
@blp.arguments(SubmissionAmendSchema,
               example={k: v for k, v in SUBMISSION_EXAMPLE.items() if k != "id"})
@blp.response(200, SubmissionSchema)
def amend_submission(data: dict[str, Any], submission_id: str) -> Any:
    """Amend a submission: new content makes a new version and puts review back to received."""
    body, _changed = services.amend(_submission_id(submission_id), data, current_principal())
    db.session.commit()
    return body


@blp.route("/submissions/<string:submission_id>/review", methods=["POST"])
@allow(*STAFF_WRITERS)
@json_only
@blp.arguments(ReviewSchema, example={"status": "flagged", "reason": "Counts look doubled."})
@blp.response(200, SubmissionSchema)
def review_submission(data: dict[str, Any], submission_id: str) -> Any:
    """Approve, flag or reject a submission, with a reason the volunteer sees."""
    body = services.review(_submission_id(submission_id), data, current_principal())
    db.session.commit()
    return body


@blp.route("/caravans/<int:caravan_id>/completeness", methods=["GET"])
@allow("volunteer", "planner", *STAFF_WRITERS)
@blp.response(200, CompletenessSchema)
def caravan_completeness(caravan_id: int) -> Any:
    """Say, for each day and planned specialty of a caravan, whether a tally was received."""
    if caravan_id > MAX_ID:
        raise NotFound(_("No caravan has id %(id)s.", id=caravan_id))
    return services.completeness(caravan_id, current_principal())
