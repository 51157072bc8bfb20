"""Tallies API: submissions from phones and paper sheets, amendments, review, completeness."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_smorest import Blueprint

from fieldsvc.caravans.services import register_day_guard, register_site_guard
from fieldsvc.db import MAX_INT
from fieldsvc.errors import NotFound
from fieldsvc.extensions import db
from fieldsvc.pagination import paginated_response
from fieldsvc.security import allow, current_principal
from fieldsvc.tallies import lean, services
from fieldsvc.tallies.schemas import (
    CompletenessSchema,
    ReviewSchema,
    SubmissionAmendSchema,
    SubmissionCreateSchema,
    SubmissionDetailSchema,
    SubmissionListArgs,
    SubmissionSchema,
)

blp = Blueprint("tallies", __name__, url_prefix="/api/v1",
                description="Submissions: volunteers' anonymized tallies, amendments and review")
# A caravan's days may not move away from the tallies sent for them.
blp.record_once(lambda state: register_day_guard(state.app, services.keep_submissions_within_days))
# A site stays while tallies name it.
blp.record_once(lambda state: register_site_guard(state.app, services.keep_named_sites))
# A device's usual tally skips the framework's layers (PostgreSQL; see lean.py).
blp.record_once(lambda state: lean.install(state.app))

STAFF_WRITERS = ("admin", "coordinator")
PROBLEM = "application/problem+json"

# --- documentation examples: an ophthalmology tally at Zagora (caravan 12, site 31) -------------
# Shaped like the real answers (tests/test_openapi_examples.py compares them); answers list the
# lines sorted by measure, sex, age band and condition, with "condition": null when unattributed.

EXAMPLE_ID = "0b6f2c9e-3f1c-4b8e-9a51-6f0d2f4a7c11"
EXAMPLE_REQUEST = {
    "id": EXAMPLE_ID,
    "caravan_id": 12,
    "site_id": 31,
    "day": "2026-11-28",
    "specialty": "OPH",
    "lines": [
        {"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 18},
        {"measure": "consultations", "sex": "M", "age_band": "65+", "count": 11},
        {"measure": "procedures", "sex": "F", "age_band": "65+", "condition": "VII", "count": 6},
        {"measure": "glasses", "sex": "M", "age_band": "50-64", "count": 9},
    ],
    "note": "Électricité coupée l'après-midi",
}
EXAMPLE_AMEND_REQUEST = {
    **{key: value for key, value in EXAMPLE_REQUEST.items() if key != "id"},
    "lines": [*EXAMPLE_REQUEST["lines"][:2],
              {"measure": "procedures", "sex": "F", "age_band": "65+", "condition": "VII",
               "count": 8},
              EXAMPLE_REQUEST["lines"][3]],
    "note": "Électricité coupée l'après-midi ; 2 cataractes opérées le soir",
}


def _answer_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({"condition": None, **line} for line in lines),
                  key=lambda line: (line["measure"], line["sex"], line["age_band"],
                                    line["condition"] or ""))


EXAMPLE_SUBMISSION = {
    "id": EXAMPLE_ID,
    "caravan_id": 12,
    "site_id": 31,
    "day": "2026-11-28",
    "specialty": "OPH",
    "lines": _answer_lines(EXAMPLE_REQUEST["lines"]),
    "note": EXAMPLE_REQUEST["note"],
    "version": 1,
    "version_count": 1,
    "review_status": "received",
    "review_reason": None,
    "reviewed_at": None,
    "flags": [],
    "enrollment_id": 41,
    "entered_by_id": None,
    "content_hash": "872431ec5284b7619e65f614978a67ebc07c7bcb449c609f767cf941ec3631c1",
    "created_at": "2026-11-28T17:42:10Z",
    "updated_at": "2026-11-28T17:42:10Z",
}
EXAMPLE_AMENDED = {
    **EXAMPLE_SUBMISSION,
    "lines": _answer_lines(EXAMPLE_AMEND_REQUEST["lines"]),
    "note": EXAMPLE_AMEND_REQUEST["note"],
    "version": 2,
    "version_count": 2,
    "content_hash": "0d2dbccc4abdd67504e59a221da4d3eaac72b6dd7bf24fe8057ecc33f8e93abf",
    "updated_at": "2026-11-28T21:05:37Z",
}
EXAMPLE_REVIEWED = {**EXAMPLE_AMENDED, "review_status": "flagged",
                    "review_reason": "Counts look doubled.",
                    "reviewed_at": "2026-11-29T08:15:02Z", "updated_at": "2026-11-29T08:15:02Z"}
_VERSION_KEYS = ("site_id", "day", "specialty", "lines", "note", "flags", "entered_by_id",
                 "content_hash")
EXAMPLE_DETAIL = {
    **EXAMPLE_REVIEWED,
    "versions": [
        {"number": 1, **{key: EXAMPLE_SUBMISSION[key] for key in _VERSION_KEYS},
         "created_at": EXAMPLE_SUBMISSION["created_at"]},
        {"number": 2, **{key: EXAMPLE_AMENDED[key] for key in _VERSION_KEYS},
         "created_at": EXAMPLE_AMENDED["updated_at"]},
    ],
}
EXAMPLE_STALE_REVIEW = {
    "type": "https://fieldsvc.org/problems/conflict",
    "title": "Conflict",
    "status": 409,
    "detail": "You reviewed version 1, but version 2 is current now; look at it and review again.",
    "errors": {"version": ["not the current version (2)"]},
    "current_version": 2,
}
# A general-medicine tally of the same day with glasses: flagged for a look, not refused.
EXAMPLE_FLAGGED = {
    **EXAMPLE_SUBMISSION,
    "id": "5d1e8a47-2b9c-4f60-8e3a-c7b2d9f01a64",
    "specialty": "GEN",
    "lines": [{"measure": "consultations", "sex": "F", "age_band": "25-49", "condition": None,
               "count": 26},
              {"measure": "glasses", "sex": "F", "age_band": "25-49", "condition": None,
               "count": 2}],
    "note": None,
    "flags": [{"code": "glasses_outside_ophthalmology",
               "message": "2 pairs of glasses counted under GEN, not ophthalmology."}],
    "enrollment_id": 43,
    "content_hash": "19ee1679184568aab33719c5e8011a401d43861d952029705ee8e207e7d3929b",
    "created_at": "2026-11-28T18:03:51Z",
    "updated_at": "2026-11-28T18:03:51Z",
}
EXAMPLE_LIST = {"items": [EXAMPLE_REVIEWED, EXAMPLE_FLAGGED], "total": 2, "limit": 100,
                "offset": 0}
EXAMPLE_COMPLETENESS = {
    "caravan_id": 12,
    "days": ["2026-11-27", "2026-11-28"],
    "specialties": ["GEN", "OPH", "PED"],
    "cells": [
        {"day": day, "specialty": specialty, "planned": True,
         "status": "received" if count else "missing", "submissions": count}
        for day, specialty, count in (
            ("2026-11-27", "GEN", 3), ("2026-11-27", "OPH", 1), ("2026-11-27", "PED", 0),
            ("2026-11-28", "GEN", 2), ("2026-11-28", "OPH", 1), ("2026-11-28", "PED", 1))
    ],
    "received": 5,
    "missing": 1,
}
_AMEND_URL = f"PUT /api/v1/submissions/{EXAMPLE_ID}"
EXAMPLE_CONFLICT = {
    "type": "https://fieldsvc.org/problems/conflict", "title": "Conflict", "status": 409,
    "detail": f"A submission with this id already exists with other content; to change it, "
              f"send {_AMEND_URL} (or a new id for a new tally).",
    "errors": {"id": [f"A submission with this id already exists with other content; to "
                      f"change it, send {_AMEND_URL} (or a new id for a new tally)."]},
    "amend_with": _AMEND_URL,
}
EXAMPLE_INVALID = {
    "type": "https://fieldsvc.org/problems/validation", "title": "Validation failed",
    "status": 422,
    "detail": "Some fields are invalid: lines[2].count: Use a whole number from 0 to 10000.",
    "errors": {"lines[2].count": ["Use a whole number from 0 to 10000."]},
}


def _submission_id(text: str) -> str:
    """The canonical form of a submission id from the address; anything else is not found."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise NotFound(_("No submission has this id.")) from None


@blp.before_request
def _ingest_in_one_statement() -> None:
    """On PostgreSQL, serve POST /submissions on a connection in autocommit mode.

    There a new submission is written by one statement (``services._CREATE_POSTGRESQL``),
    atomic on its own and committed (synchronous commit) before the driver hands back its
    result, so that the answer still follows the commit; everything else the route does is
    reading. Autocommit spares the BEGIN and COMMIT round trips of every tally: two of the
    request's four (the pool's ping, the token, the insert). The layered path (SQLite, or
    ``one_statement_insert()`` false) writes several statements and keeps its transaction.
    """
    if (request.endpoint == "tallies.create_submission" and request.method == "POST"
            and not db.session().in_transaction() and services.one_statement_insert()):
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


@blp.route("/submissions", methods=["POST"])
@allow("volunteer", *STAFF_WRITERS)
@blp.arguments(SubmissionCreateSchema(), example=EXAMPLE_REQUEST)  # one instance, not one per request
@blp.response(201, SubmissionSchema, example=EXAMPLE_SUBMISSION)
@blp.alt_response(200, schema=SubmissionSchema, description="The same id and content again",
                  example=EXAMPLE_SUBMISSION)
@blp.alt_response(409, description="The same id with other content: amend with PUT",
                  content_type=PROBLEM, example=EXAMPLE_CONFLICT)
@blp.alt_response(422, description="Invalid input, with field-level errors",
                  content_type=PROBLEM, example=EXAMPLE_INVALID)
def create_submission(data: services.SubmissionInput) -> Any:
    """Send a tally; retrying the same id and content answers 200 and stores nothing twice."""
    stored, created = services.submit(data, current_principal())
    db.session.commit()  # in autocommit (PostgreSQL), the insert has committed already
    return stored, 201 if created else 200


@blp.route("/submissions", methods=["GET"])
@allow("volunteer", *STAFF_WRITERS)
@blp.arguments(SubmissionListArgs, location="query")
@paginated_response(blp, SubmissionSchema, example=EXAMPLE_LIST)
def list_submissions(wanted: services.SubmissionFilter) -> Any:
    """List submissions: a coordinator's regions, or a volunteer's own."""
    return services.list_submissions(current_principal(), wanted)


@blp.route("/submissions/<string:submission_id>", methods=["GET"])
@allow("volunteer", *STAFF_WRITERS)
@blp.response(200, SubmissionDetailSchema, example=EXAMPLE_DETAIL)
def get_submission(submission_id: str) -> Any:
    """Show a submission with all its versions and its review."""
    return services.get_submission(_submission_id(submission_id), current_principal())


@blp.route("/submissions/<string:submission_id>", methods=["PUT"])
@allow("volunteer", *STAFF_WRITERS)
@blp.arguments(SubmissionAmendSchema, example=EXAMPLE_AMEND_REQUEST)
@blp.response(200, SubmissionSchema, example=EXAMPLE_AMENDED)
def amend_submission(data: services.SubmissionInput, submission_id: str) -> Any:
    """Amend a submission: new content makes a new version and puts review back to received."""
    stored, _changed = services.amend(_submission_id(submission_id), data, current_principal())
    db.session.commit()
    return stored


@blp.route("/submissions/<string:submission_id>/review", methods=["POST"])
@allow(*STAFF_WRITERS)
@blp.arguments(ReviewSchema, example={"status": "flagged", "reason": "Counts look doubled.",
                                      "version": 2})
@blp.response(200, SubmissionSchema, example=EXAMPLE_REVIEWED)
@blp.alt_response(409, description="The submission was amended since the version you judged",
                  content_type=PROBLEM, example=EXAMPLE_STALE_REVIEW)
def review_submission(decision: services.ReviewDecision, submission_id: str) -> Any:
    """Approve, flag or reject a submission, with a reason the volunteer sees."""
    stored = services.review(_submission_id(submission_id), decision, current_principal())
    db.session.commit()
    return stored


@blp.route("/submissions/<string:submission_id>/note", methods=["DELETE"])
@allow(*STAFF_WRITERS)
@blp.response(200, SubmissionSchema, example={**EXAMPLE_REVIEWED, "note": None})
def erase_note(submission_id: str) -> Any:
    """Erase a submission's note from every version (it said something about a patient)."""
    stored = services.erase_note(_submission_id(submission_id), current_principal())
    db.session.commit()
    return stored


@blp.route("/caravans/<int:caravan_id>/completeness", methods=["GET"])
@allow("volunteer", "planner", *STAFF_WRITERS)
@blp.response(200, CompletenessSchema, example=EXAMPLE_COMPLETENESS)
def caravan_completeness(caravan_id: int) -> Any:
    """Say, for each day and planned specialty of a caravan, whether a tally was received."""
    if caravan_id > MAX_INT:
        raise NotFound(_("No caravan has id %(id)s.", id=caravan_id))
    return services.completeness(caravan_id, current_principal())
