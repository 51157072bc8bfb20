"""Shapes of submissions, their lines, reviews and completeness."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from fieldsvc.catalog.codes import AGE_BANDS, ICD10_CHAPTERS, SEXES
from fieldsvc.tallies.models import REVIEW_STATUSES

MAX_LINES = 500
MAX_COUNT = 10_000
MAX_NOTE = 500

LINE_EXAMPLE = {"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 12}
SUBMISSION_EXAMPLE = {
    "id": "0b6f2c9e-3f1c-4b8e-9a51-6f0d2f4a7c11",
    "caravan_id": 1,
    "site_id": 1,
    "day": "2026-11-28",
    "specialty": "OPH",
    "lines": [
        LINE_EXAMPLE,
        {"measure": "procedures", "sex": "F", "age_band": "65+", "condition": "VII", "count": 3},
        {"measure": "glasses", "sex": "M", "age_band": "50-64", "count": 7},
    ],
    "note": "Électricité coupée l'après-midi",
}


MAX_ID = 2**31 - 1  # database integer ids; larger numbers are refused, never sent to SQL
ID_RANGE = validate.Range(1, MAX_ID, error="Not a known id.")
NO_NUL = validate.Regexp(r"^[^\x00]*$", error="Remove the NUL character.")


def _codes(kind: str) -> set[str]:
    """The catalog's codes, read once per request (a 500-line tally checks 500 measures)."""
    from flask import g

    from fieldsvc.catalog.services import measure_codes, specialty_codes

    cache = g.setdefault("tallies_catalog", {})
    if kind not in cache:
        cache[kind] = specialty_codes() if kind == "specialties" else measure_codes()
    return cache[kind]


def _str(**kwargs: Any) -> fields.String:
    return fields.String(**kwargs)


class LineSchema(Schema):
    """One disjoint count: a measure for a sex, an age band and optionally an ICD-10 chapter."""

    class Meta:
        unknown = RAISE

    measure = _str(required=True, validate=validate.Length(1, 32),
                   metadata={"description": "A measure code of the catalog, e.g. consultations."})
    sex = _str(required=True, validate=validate.OneOf(list(SEXES), error="Use F or M."))
    age_band = _str(required=True, validate=validate.OneOf(
        list(AGE_BANDS), error="Use one of " + ", ".join(AGE_BANDS) + "."))
    condition = _str(load_default=None, allow_none=True, validate=validate.OneOf(
        list(ICD10_CHAPTERS), error="Use an ICD-10 chapter in Roman numerals, I to XXII."),
        metadata={"description": "ICD-10 chapter I…XXII; omit for the part not attributed."})

    @validates("measure")
    def _known_measure(self, value: str, **kwargs: Any) -> None:
        if value not in _codes("measures"):
            raise ValidationError(str(_l("Unknown measure %(code)s; see /api/v1/catalog.",
                                         code=value)))
    count = fields.Integer(
        required=True, strict=True,
        validate=validate.Range(0, MAX_COUNT, error="Use a whole number from 0 to 10000."),
        error_messages={"invalid": "Use a whole number from 0 to 10000 "
                                   "(not text, a decimal or true/false)."},
    )


class SubmissionContentSchema(Schema):
    """What a volunteer (or a coordinator typing a paper sheet) sends for one day and specialty."""

    class Meta:
        unknown = RAISE

    caravan_id = fields.Integer(required=True, strict=True, validate=ID_RANGE)
    site_id = fields.Integer(load_default=None, allow_none=True, strict=True, validate=ID_RANGE)
    day = fields.Date(required=True, metadata={"example": "2026-11-28"})
    specialty = _str(required=True, validate=validate.Length(1, 8),
                     metadata={"description": "A specialty code of the catalog, e.g. OPH."})
    lines = fields.List(fields.Nested(LineSchema), required=True, validate=validate.Length(
        1, MAX_LINES, error="Send from 1 to 500 lines; split a larger tally by specialty or site."))
    note = _str(load_default=None, allow_none=True, validate=[validate.Length(
        max=MAX_NOTE, error="Keep the note under 500 characters; never write about a patient."),
        NO_NUL])
    enrollment_id = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ID_RANGE,
        metadata={"description": "Paper tally sheets: the enrollment of the volunteer "
                                 "a coordinator enters the sheet for."})

    @validates("specialty")
    def _known_specialty(self, value: str, **kwargs: Any) -> None:
        if value not in _codes("specialties"):
            raise ValidationError(str(_l("Unknown specialty %(code)s; see /api/v1/catalog.",
                                         code=value)))

    @validates_schema
    def _distinct_keys(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: dict[tuple, int] = {}
        line_errors: dict[int, dict[str, list[str]]] = {}
        for index, line in enumerate(data.get("lines") or []):
            key = (line["measure"], line["sex"], line["age_band"], line.get("condition"))
            if key in seen:
                line_errors[index] = {"_schema": [str(_l(
                    "Same measure, sex, age band and condition as lines[%(first)s]; "
                    "add the counts into one line.", first=seen[key]))]}
            else:
                seen[key] = index
        if line_errors:
            raise ValidationError({"lines": line_errors})


class SubmissionCreateSchema(SubmissionContentSchema):
    id = fields.UUID(required=True, metadata={"description": "A UUID made by the phone."})

    class Meta:
        unknown = RAISE


class SubmissionAmendSchema(SubmissionContentSchema):
    id = fields.UUID(load_default=None, metadata={"description": "Optional; must match the URL."})

    class Meta:
        unknown = RAISE


class FlagSchema(Schema):
    code = _str()
    message = _str()


class LineOutSchema(Schema):
    measure = _str()
    sex = _str()
    age_band = _str()
    condition = _str(allow_none=True)
    count = fields.Integer()


class VersionSchema(Schema):
    number = fields.Integer()
    site_id = fields.Integer(allow_none=True)
    day = _str()
    specialty = _str()
    lines = fields.List(fields.Nested(LineOutSchema))
    note = _str(allow_none=True)
    flags = fields.List(fields.Nested(FlagSchema))
    entered_by_id = fields.Integer(allow_none=True)
    content_hash = _str()
    created_at = _str()


class SubmissionSchema(Schema):
    """A stored submission: its current version's content, review and plausibility flags."""

    id = _str()
    caravan_id = fields.Integer()
    site_id = fields.Integer(allow_none=True)
    day = _str()
    specialty = _str()
    lines = fields.List(fields.Nested(LineOutSchema))
    note = _str(allow_none=True)
    version = fields.Integer(metadata={"description": "The number of the version that counts."})
    version_count = fields.Integer()
    review_status = _str(metadata={"enum": list(REVIEW_STATUSES)})
    review_reason = _str(allow_none=True)
    reviewed_at = _str(allow_none=True)
    flags = fields.List(fields.Nested(FlagSchema))
    enrollment_id = fields.Integer(allow_none=True)
    entered_by_id = fields.Integer(allow_none=True)
    content_hash = _str()
    created_at = _str()
    updated_at = _str()


class SubmissionDetailSchema(SubmissionSchema):
    versions = fields.List(fields.Nested(VersionSchema))


class SubmissionListArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    caravan_id = fields.Integer(validate=ID_RANGE)
    day = fields.Date()
    status = _str(validate=validate.OneOf(list(REVIEW_STATUSES)))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_ID))


class SubmissionListSchema(Schema):
    items = fields.List(fields.Nested(SubmissionSchema))
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()


class ReviewSchema(Schema):
    class Meta:
        unknown = RAISE

    status = _str(required=True, validate=validate.OneOf(
        ["approved", "flagged", "rejected"], error="Use approved, flagged or rejected."))
    reason = _str(load_default=None, allow_none=True, validate=[validate.Length(max=500), NO_NUL])

    @validates_schema
    def _reason_when_not_approved(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("status") in {"flagged", "rejected"} and not (data.get("reason") or "").strip():
            raise ValidationError(
                {"reason": [str(_l("Say why: the volunteer sees this reason."))]})


class CompletenessCellSchema(Schema):
    day = _str()
    specialty = _str()
    planned = fields.Boolean()
    status = _str(metadata={"enum": ["received", "missing"]})
    submissions = fields.Integer()


class CompletenessSchema(Schema):
    caravan_id = fields.Integer()
    days = fields.List(_str())
    specialties = fields.List(_str())
    cells = fields.List(fields.Nested(CompletenessCellSchema))
    received = fields.Integer()
    missing = fields.Integer()
