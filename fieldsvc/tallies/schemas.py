"""Shapes of submissions, their lines, reviews and completeness."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from fieldsvc.catalog.codes import AGE_BANDS, ICD10_CHAPTERS, SEXES
from fieldsvc.catalog.services import is_known, known_codes
from fieldsvc.db import ID_RANGE, MAX_INT
from fieldsvc.fields import Day, KnownUUID, day_in_range, visible_text
from fieldsvc.pagination import MAX_LIMIT, PageArgs
from fieldsvc.tallies.models import REVIEW_STATUSES
from fieldsvc.tallies.notes import identifier_in_note
from fieldsvc.tallies.services import (
    Line,
    ReviewDecision,
    StoredSubmission,
    SubmissionFilter,
    SubmissionInput,
    render_flags,
)

MAX_LINES = 500
MAX_COUNT = 10_000
MAX_NOTE = 500

NO_NUL = validate.Regexp(r"^[^\x00]*$", error=_l("Remove the NUL character."))


def _no_identifier(note: str | None) -> None:
    reason = identifier_in_note(note)
    if reason:
        raise ValidationError(reason)


def _str(**kwargs: Any) -> fields.String:
    return fields.String(**kwargs)


class LineSchema(Schema):
    """One disjoint count: a measure for a sex, an age band and optionally an ICD-10 chapter."""

    class Meta:
        unknown = RAISE

    measure = _str(required=True, validate=validate.Length(1, 32),
                   metadata={"description": "A measure code of the catalog, e.g. consultations."})
    sex = _str(required=True, validate=validate.OneOf(list(SEXES), error=_l("Use F or M.")))
    age_band = _str(required=True, validate=validate.OneOf(
        list(AGE_BANDS), error=_l("Use one of %(bands)s.", bands=", ".join(AGE_BANDS))))
    condition = _str(load_default=None, allow_none=True, validate=validate.OneOf(
        list(ICD10_CHAPTERS), error=_l("Use an ICD-10 chapter in Roman numerals, I to XXII.")),
        metadata={"description": "ICD-10 chapter I…XXII; omit for the part not attributed."})

    @validates("measure")
    def _known_measure(self, value: str, **kwargs: Any) -> None:
        if not is_known("measures", value):
            raise ValidationError(str(_l("Unknown measure %(code)s; see /api/v1/catalog.",
                                         code=value)))
    count = fields.Integer(
        required=True, strict=True,
        validate=validate.Range(0, MAX_COUNT, error=_l("Use a whole number from 0 to 10000.")),
        error_messages={"invalid": _l("Use a whole number from 0 to 10000 "
                                      "(not text, a decimal or true/false).")},
    )


class SubmissionContentSchema(Schema):
    """What a volunteer (or a coordinator typing a paper sheet) sends for one day and specialty."""

    class Meta:
        unknown = RAISE

    caravan_id = fields.Integer(required=True, strict=True, validate=ID_RANGE)
    site_id = fields.Integer(load_default=None, allow_none=True, strict=True, validate=ID_RANGE)
    day = Day(required=True, metadata={"example": "2026-11-28"})
    specialty = _str(required=True, validate=validate.Length(1, 8),
                     metadata={"description": "A specialty code of the catalog, e.g. OPH."})
    lines = fields.List(fields.Nested(LineSchema), required=True, validate=validate.Length(
        1, MAX_LINES, error=_l("Send from 1 to 500 lines; split a larger tally by specialty or site.")))
    note = _str(load_default=None, allow_none=True, validate=[validate.Length(
        max=MAX_NOTE, error=_l("Keep the note under 500 characters; never write about a patient.")),
        NO_NUL, _no_identifier], metadata={"description": (
            "For the coordinator, never about a patient: phone and ID numbers, dates of birth "
            "and names after \"patient\" or \"مريض\" are refused.")})
    enrollment_id = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ID_RANGE,
        metadata={"description": "Paper tally sheets: the enrollment of the volunteer "
                                 "a coordinator enters the sheet for."})

    @validates("specialty")
    def _known_specialty(self, value: str, **kwargs: Any) -> None:
        if not is_known("specialties", value):
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

    @post_load
    def _input(self, data: dict[str, Any], **kwargs: Any) -> SubmissionInput:
        return SubmissionInput(**data)


class SubmissionCreateSchema(SubmissionContentSchema):
    id = KnownUUID(required=True, metadata={"description": "A UUID made by the phone."})

    class Meta:
        unknown = RAISE

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None,
             unknown: str | None = None) -> Any:
        """Load a body: plain checks when it is valid, marshmallow (for its messages) when not.

        ``fast_load_submission`` accepts exactly what the marshmallow schema accepts, with the
        same result (tests/tallies/test_fast_validator.py checks it with generated bodies).
        """
        if many is None and partial is None and unknown is None and not self.many \
                and not self.partial:
            loaded, errors = fast_load_submission(data)
            if not errors:
                return loaded
        return super().load(data, many=many, partial=partial, unknown=unknown)


# --- the hot path: POST /api/v1/submissions without marshmallow ---------------------------------

_CREATE_FIELDS = frozenset(SubmissionCreateSchema().load_fields)
_LINE_FIELDS = frozenset(LineSchema().load_fields)
_SEXES = frozenset(SEXES)
_AGE_BANDS = frozenset(AGE_BANDS)
_CHAPTERS = frozenset(ICD10_CHAPTERS)

ErrorKeys = dict[Any, Any]  # {field: None} for a field's messages, nested dicts below


def _id_in_range(value: Any) -> bool:
    # marshmallow's strict Integer + ID_RANGE on JSON values: an int, not a bool, in range.
    return type(value) is int and 1 <= value <= MAX_INT


def _line_errors(line: Any, measures: frozenset[str],
                 ) -> tuple[Line | None, ErrorKeys | None]:
    if line is None:
        return None, None  # "Field may not be null." (a list of messages)
    if type(line) is not dict:
        return None, {"_schema": None}
    errors: ErrorKeys = {key: None for key in line if key not in _LINE_FIELDS}
    measure = line.get("measure")
    if type(measure) is not str or not 1 <= len(measure) <= 32 \
            or (measure not in measures and not is_known("measures", measure)):
        errors["measure"] = None
    sex = line.get("sex")
    if type(sex) is not str or sex not in _SEXES:
        errors["sex"] = None
    age_band = line.get("age_band")
    if type(age_band) is not str or age_band not in _AGE_BANDS:
        errors["age_band"] = None
    condition = line.get("condition")
    if condition is not None and (type(condition) is not str or condition not in _CHAPTERS):
        errors["condition"] = None
    count = line.get("count")
    if type(count) is not int or not 0 <= count <= MAX_COUNT:
        errors["count"] = None
    if errors:
        return None, errors
    return Line(measure=measure, sex=sex, age_band=age_band, condition=condition,
                count=count), None


def fast_load_submission(body: Any) -> tuple[SubmissionInput | None, ErrorKeys]:
    """Check a JSON submission body as SubmissionCreateSchema does, in plain Python.

    Returns what the schema's ``load`` returns and no errors, or None and the *keys* of the
    errors the schema reports (``{"lines": {3: {"count": None}}}``; None marks a field's list
    of messages). The messages themselves come from marshmallow: the route falls back to it for
    any body this refuses.
    """
    if type(body) is not dict:
        return None, {"_schema": None}
    errors: ErrorKeys = {key: None for key in body if key not in _CREATE_FIELDS}
    get = body.get

    submission_id = get("id")
    if type(submission_id) is str:
        try:
            submission_id = uuid.UUID(submission_id)
        except (ValueError, AttributeError, TypeError):
            errors["id"] = None
        else:
            if submission_id.int == 0:
                errors["id"] = None
    else:
        errors["id"] = None
    caravan_id = get("caravan_id")
    if not _id_in_range(caravan_id):
        errors["caravan_id"] = None
    site_id = get("site_id")
    if site_id is not None and not _id_in_range(site_id):
        errors["site_id"] = None
    enrollment_id = get("enrollment_id")
    if enrollment_id is not None and not _id_in_range(enrollment_id):
        errors["enrollment_id"] = None
    day = get("day")
    if type(day) is str:
        try:
            day = dt.date.fromisoformat(day)
        except (TypeError, AttributeError, ValueError):
            errors["day"] = None
        else:
            if not day_in_range(day):
                errors["day"] = None
    else:
        errors["day"] = None
    specialty = get("specialty")
    if type(specialty) is not str or not 1 <= len(specialty) <= 8 \
            or not is_known("specialties", specialty):
        errors["specialty"] = None
    note = get("note")
    if note is not None and (type(note) is not str or len(note) > MAX_NOTE or "\x00" in note
                             or identifier_in_note(note)):
        errors["note"] = None

    raw_lines = get("lines")
    lines: list[Line] = []
    if type(raw_lines) is not list:
        errors["lines"] = None
    else:
        line_errors: ErrorKeys = {}
        measures = known_codes("measures")
        for index, raw in enumerate(raw_lines):
            line, problems = _line_errors(raw, measures)
            if line is None:
                line_errors[index] = problems
            else:
                lines.append(line)
        if line_errors:
            errors["lines"] = line_errors
        elif not 1 <= len(lines) <= MAX_LINES:
            errors["lines"] = None
    if errors:
        return None, errors
    # The schema-level check runs only on an otherwise valid body, as marshmallow's does.
    seen: set[tuple] = set()
    duplicates: ErrorKeys = {}
    for index, line in enumerate(lines):
        key = (line["measure"], line["sex"], line["age_band"], line["condition"])
        if key in seen:
            duplicates[index] = {"_schema": None}
        seen.add(key)
    if duplicates:
        return None, {"lines": duplicates}
    return SubmissionInput(id=submission_id, caravan_id=caravan_id, site_id=site_id, day=day,
                           specialty=specialty, lines=lines, note=note,
                           enrollment_id=enrollment_id), {}


class SubmissionAmendSchema(SubmissionContentSchema):
    id = KnownUUID(load_default=None, metadata={"description": "Optional; must match the URL."})

    class Meta:
        unknown = RAISE


class UtcSeconds(fields.Field):
    """A moment in UTC to the second, as phones compare it: 2026-11-28T17:42:10Z."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).update(type="string", format="date-time")
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return utc_seconds(value)


def utc_seconds(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite gives back naive UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class FlagSchema(Schema):
    code = _str()
    message = _str()


class LineOutSchema(Schema):
    measure = _str()
    sex = _str()
    age_band = _str()
    condition = _str(allow_none=True)
    count = fields.Integer()


def _flags(stored: Any) -> list[dict[str, str]]:
    return render_flags(stored.version.flags)


class VersionSchema(Schema):
    """A StoredVersion: one content of a submission."""

    number = fields.Integer(attribute="version.number")
    site_id = fields.Integer(attribute="version.site_id", allow_none=True)
    day = fields.Date(attribute="version.day")
    specialty = _str(attribute="version.specialty_code")
    lines = fields.List(fields.Nested(LineOutSchema))
    note = _str(attribute="version.note", allow_none=True)
    flags = fields.Function(_flags, metadata={"type": "array", "items": {
        "type": "object", "properties": {"code": {"type": "string"},
                                         "message": {"type": "string"}}}})
    entered_by_id = fields.Integer(attribute="version.entered_by_id", allow_none=True)
    content_hash = _str(attribute="version.content_hash")
    created_at = UtcSeconds(attribute="version.created_at")


class SubmissionSchema(Schema):
    """A StoredSubmission: its current version's content, review and plausibility flags."""

    id = _str(attribute="submission.id")
    caravan_id = fields.Integer(attribute="submission.caravan_id")
    site_id = fields.Integer(attribute="version.site_id", allow_none=True)
    day = fields.Date(attribute="version.day")
    specialty = _str(attribute="version.specialty_code")
    lines = fields.List(fields.Nested(LineOutSchema))
    note = _str(attribute="version.note", allow_none=True)
    version = fields.Integer(attribute="version.number",
                             metadata={"description": "The number of the version that counts."})
    version_count = fields.Integer()
    review_status = _str(attribute="submission.review_status",
                         metadata={"enum": list(REVIEW_STATUSES)})
    review_reason = _str(attribute="submission.review_reason", allow_none=True)
    reviewed_at = UtcSeconds(attribute="submission.reviewed_at", allow_none=True)
    flags = fields.Function(_flags, metadata={"type": "array", "items": {
        "type": "object", "properties": {"code": {"type": "string"},
                                         "message": {"type": "string"}}}})
    enrollment_id = fields.Integer(attribute="submission.enrollment_id", allow_none=True)
    entered_by_id = fields.Integer(attribute="version.entered_by_id", allow_none=True)
    content_hash = _str(attribute="version.content_hash")
    created_at = UtcSeconds(attribute="submission.created_at")
    updated_at = UtcSeconds(attribute="submission.updated_at")

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """Dump as marshmallow would, in plain Python for one submission (the ingest answer).

        ``fast_dump_submission`` gives exactly marshmallow's result (tests/tallies/
        test_fast_validator.py checks it); marshmallow costs more than the insert here.
        """
        if type(self) is SubmissionSchema and not (many or self.many) \
                and self.only is None and not self.exclude:
            return fast_dump_submission(obj)
        return super().dump(obj, many=many)


def fast_dump_submission(stored: StoredSubmission) -> dict[str, Any]:
    """SubmissionSchema's dump of one stored submission, without marshmallow."""
    submission, version = stored.submission, stored.version
    return {
        "id": str(submission.id),
        "caravan_id": submission.caravan_id,
        "site_id": version.site_id,
        "day": version.day.isoformat(),
        "specialty": version.specialty_code,
        "lines": [{"measure": line["measure"], "sex": line["sex"], "age_band": line["age_band"],
                   "condition": line["condition"], "count": line["count"]}
                  for line in stored.lines],
        "note": version.note,
        "version": version.number,
        "version_count": stored.version_count,
        "review_status": submission.review_status,
        "review_reason": submission.review_reason,
        "reviewed_at": utc_seconds(submission.reviewed_at),
        "flags": render_flags(version.flags),
        "enrollment_id": submission.enrollment_id,
        "entered_by_id": version.entered_by_id,
        "content_hash": version.content_hash,
        "created_at": utc_seconds(submission.created_at),
        "updated_at": utc_seconds(submission.updated_at),
    }


class SubmissionDetailSchema(SubmissionSchema):
    versions = fields.List(fields.Nested(VersionSchema))


class SubmissionListArgs(PageArgs):
    class Meta:
        unknown = EXCLUDE

    caravan_id = fields.Integer(validate=ID_RANGE)
    day = Day()
    status = _str(validate=validate.OneOf(list(REVIEW_STATUSES)))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, MAX_LIMIT),
                           metadata={"description": f"Submissions per page, 1 to {MAX_LIMIT}."})

    @post_load
    def _filter(self, data: dict[str, Any], **kwargs: Any) -> SubmissionFilter:
        return SubmissionFilter(**data)


class ReviewSchema(Schema):
    class Meta:
        unknown = RAISE

    status = _str(required=True, validate=validate.OneOf(
        ["approved", "flagged", "rejected"], error=_l("Use approved, flagged or rejected.")))
    reason = _str(load_default=None, allow_none=True, validate=[validate.Length(max=500), NO_NUL])
    version = fields.Integer(
        required=True, strict=True, validate=ID_RANGE,
        metadata={"description": "The version you judged (`version` of the submission); 409 "
                                 "if the volunteer has amended it since.", "example": 2})

    @validates_schema
    def _reason_when_not_approved(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("status") in {"flagged", "rejected"} \
                and not visible_text(data.get("reason") or ""):
            raise ValidationError(
                {"reason": [str(_l("Say why: the volunteer sees this reason."))]})

    @post_load
    def _decision(self, data: dict[str, Any], **kwargs: Any) -> ReviewDecision:
        return ReviewDecision(**data)


class CompletenessCellSchema(Schema):
    day = fields.Date()
    specialty = _str()
    planned = fields.Boolean()
    status = _str(metadata={"enum": ["received", "missing"]})
    submissions = fields.Integer()


class CompletenessSchema(Schema):
    caravan_id = fields.Integer()
    days = fields.List(fields.Date())
    specialties = fields.List(_str())
    cells = fields.List(fields.Nested(CompletenessCellSchema))
    received = fields.Integer()
    missing = fields.Integer()
