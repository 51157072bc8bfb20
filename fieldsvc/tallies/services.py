"""What tallies do: store submissions once, amend them, review them, and say what counts.

The one documented exception to the layers is ingest: on PostgreSQL a new submission, its
version, lines, flags and audit event are written by one statement (``_CREATE_POSTGRESQL``),
and bodies are checked by ``schemas.fast_load_submission`` before marshmallow; together they
made ingest three times faster. tests/tallies/test_fast_validator.py proves each equal to the
layered path (``_add_version`` and ``audit``; the marshmallow schema).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, NamedTuple, TypedDict

from flask import has_request_context, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Subquery,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import lazyload

from fieldsvc.accounts.services import audit
from fieldsvc.caravans.models import Caravan, Enrollment, Site, caravan_specialty
from fieldsvc.caravans.services import (
    DevicePrincipal,
    late_sync_message,
    morocco_today,
    require_scope,
    sync_deadline,
)
from fieldsvc.db import utcnow
from fieldsvc.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.pagination import Page, paginate
from fieldsvc.security import Principal
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine


class Line(TypedDict):
    """One disjoint count of a tally (a dict, so the hot path sends lines as JSON unchanged)."""

    measure: str
    sex: str
    age_band: str
    condition: str | None
    count: int


@dataclass
class SubmissionInput:
    """What a phone or a paper sheet says: the content of a submission."""

    caravan_id: int
    day: dt.date
    specialty: str
    lines: list[Line]
    id: uuid.UUID | None = None
    site_id: int | None = None
    note: str | None = None
    enrollment_id: int | None = None  # paper sheets: the volunteer a coordinator enters it for


@dataclass
class ReviewDecision:
    status: str
    version: int
    reason: str | None = None


@dataclass
class SubmissionFilter:
    caravan_id: int | None = None
    day: dt.date | None = None
    status: str | None = None
    specialty: str | None = None
    flagged_first: bool = False  # the review inbox: flagged, then plausibility-flagged, first
    limit: int = 100
    offset: int = 0


@dataclass
class StoredVersion:
    version: SubmissionVersion
    lines: list[Line]


@dataclass
class StoredSubmission:
    """A stored submission: its current version's content and lines, its review, its versions.

    On the ingest hot path ``submission`` and ``version`` are the rows just written (namespaces
    with the columns' values), not ORM objects: nothing is read back.
    """

    submission: Submission | SimpleNamespace
    version: SubmissionVersion | SimpleNamespace
    lines: list[Line]
    version_count: int
    versions: list[StoredVersion] | None = None


@dataclass
@dataclass
class CompletenessCell:
    day: dt.date
    specialty: str
    planned: bool
    submissions: int
    approved: int = 0  # of those submissions, how many a coordinator approved

    @property
    def status(self) -> str:
        return "received" if self.submissions else "missing"

    @property
    def all_approved(self) -> bool:
        return bool(self.submissions) and self.approved == self.submissions


@dataclass
class Completeness:
    """For each day × planned specialty of a caravan (and unplanned ones received): how many."""

    caravan_id: int
    days: list[dt.date]
    specialties: list[str]
    cells: list[CompletenessCell]

    @property
    def received(self) -> int:
        return sum(1 for cell in self.cells if cell.planned and cell.submissions)

    @property
    def missing(self) -> int:
        return sum(1 for cell in self.cells if not cell.submissions)


def counted_lines() -> Subquery:
    """Return the tally lines that aggregates count, as a subquery named ``counted_lines``.

    A line counts when it belongs to the *current* version of its submission
    (``Submission.current_version_id``) and the submission is not ``rejected``. Earlier versions
    (amended away) and rejected submissions never count. Columns:

    ``caravan_id, site_id, day, specialty_code, measure_code, sex, age_band, condition, count,
    submission_id, review_status``

    ``condition`` is NULL for the part of a count not attributed to an ICD-10 chapter (lines are
    disjoint: never add a total on top). Never add different measures together: filter on
    ``measure_code`` (``consultations`` by default in summaries). Use it like a table::

        lines = counted_lines()
        select(lines.c.specialty_code, func.sum(lines.c.count)).group_by(lines.c.specialty_code)
    """
    return (
        select(
            SubmissionVersion.caravan_id.label("caravan_id"),
            SubmissionVersion.site_id.label("site_id"),
            SubmissionVersion.day.label("day"),
            SubmissionVersion.specialty_code.label("specialty_code"),
            TallyLine.measure_code.label("measure_code"),
            TallyLine.sex.label("sex"),
            TallyLine.age_band.label("age_band"),
            TallyLine.condition.label("condition"),
            TallyLine.count.label("count"),
            Submission.id.label("submission_id"),
            Submission.review_status.label("review_status"),
        )
        .select_from(TallyLine)
        .join(SubmissionVersion, SubmissionVersion.id == TallyLine.version_id)
        .join(Submission, Submission.current_version_id == SubmissionVersion.id)
        .where(Submission.review_status != "rejected")
        .subquery("counted_lines")
    )


# --- storing submissions -------------------------------------------------------------------

CONSULTATIONS_PER_DAY_LIMIT = 150


def _line_key(line: Line) -> tuple[str, str, str, str]:
    return (line["measure"], line["sex"], line["age_band"], line.get("condition") or "")


def canonical_lines(lines: Iterable[Line]) -> list[Line]:
    """Lines in one stable order (measure, sex, age band, condition), as the API shows them."""
    return [
        Line(measure=line["measure"], sex=line["sex"], age_band=line["age_band"],
             condition=line.get("condition"), count=int(line["count"]))
        for line in sorted(lines, key=_line_key)
    ]


def content_hash(content: SubmissionInput) -> str:
    """SHA-256 of what a submission says: caravan, day, specialty, site and sorted lines.

    The note is left out (fixing a typo in it is not new content), and so is line order.
    """
    canonical = {
        "caravan_id": int(content.caravan_id),
        "day": content.day.isoformat(),
        "specialty": content.specialty,
        "site_id": content.site_id,
        "lines": [
            [line["measure"], line["sex"], line["age_band"], line.get("condition") or "",
             int(line["count"])]
            for line in sorted(content.lines, key=_line_key)
        ],
    }
    text = json.dumps(canonical, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()



FLAG_MESSAGES = {
    "over_150_consultations": _l(
        "%(consultations)s consultations by one volunteer on %(day)s "
        "(more than %(limit)s in a day)."),
    "procedures_above_consultations": _l(
        "%(procedures)s procedures for %(consultations)s consultations."),
    "referrals_above_consultations": _l(
        "%(referrals)s referrals for %(consultations)s consultations."),
    "glasses_outside_ophthalmology": _l(
        "%(glasses)s pairs of glasses counted under %(specialty)s, not ophthalmology."),
    "specialty_not_planned": _l("%(specialty)s was not planned for this caravan."),
}


def render_flags(flags: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Flag codes with a sentence a coordinator reads."""
    rendered = []
    for flag in flags or []:
        params = {key: value for key, value in flag.items() if key != "code"}
        template = _flag_template(flag["code"])
        message = template % params if template is not None else flag["code"]
        rendered.append({"code": flag["code"], "message": message})
    return rendered


# Each flag's sentence in each language, translated once per process (a lookup of the
# translations per flag was a tenth of the ingest answer's cost).
_FLAG_TEMPLATES: dict[tuple[str, str], str] = {}


def _flag_template(code: str) -> str | None:
    template = FLAG_MESSAGES.get(code)
    if template is None:
        return None
    key = (str(get_locale()), code)
    text = _FLAG_TEMPLATES.get(key)
    if text is None:
        text = _FLAG_TEMPLATES[key] = str(template)
    return text


def _line(line: TallyLine) -> Line:
    return Line(measure=line.measure_code, sex=line.sex, age_band=line.age_band,
                condition=line.condition, count=line.count)


def stored_submission(submission: Submission, *, with_versions: bool = False) -> StoredSubmission:
    """A stored submission with its current version's lines (and every version's, if asked)."""
    versions = list(db.session.scalars(
        select(SubmissionVersion).where(SubmissionVersion.submission_id == submission.id)
        .order_by(SubmissionVersion.number)))
    ids = [version.id for version in versions]
    lines_by_version: dict[int, list[Line]] = {version_id: [] for version_id in ids}
    wanted = ids if with_versions else [submission.current_version_id]
    for line in db.session.scalars(select(TallyLine).where(TallyLine.version_id.in_(wanted))):
        lines_by_version[line.version_id].append(_line(line))
    current = next(version for version in versions if version.id == submission.current_version_id)
    stored = StoredSubmission(submission, current, canonical_lines(lines_by_version[current.id]),
                              len(versions))
    if with_versions:
        stored.versions = [StoredVersion(v, canonical_lines(lines_by_version[v.id]))
                           for v in versions]
    return stored


# --- scope ------------------------------------------------------------------------------------

def _caravan_for(caravan_id: int) -> Caravan:
    # Only the planned specialties are needed (for flags); skip the other eager loads.
    caravan = db.session.get(Caravan, caravan_id, options=[
        lazyload(Caravan.organizers), lazyload(Caravan.sites), lazyload(Caravan.specialty_rows)])
    if caravan is None:
        raise ValidationFailed(
            str(_l("No caravan has id %(id)s.", id=caravan_id)),
            errors={"caravan_id": [str(_l("No caravan has id %(id)s.", id=caravan_id))]})
    return caravan


def _check_write_scope(principal: Principal, caravan: Caravan) -> None:
    if principal.role == "volunteer":
        if principal.enrollment_caravan_id != caravan.id:
            raise Forbidden(str(_l(
                "Your device token is for another caravan; join caravan %(id)s with its code "
                "to send tallies there.", id=caravan.id)))
        return
    require_scope(caravan, principal)


def _volunteer_enrollment_ids(principal: Principal) -> Any:
    """The enrollments that are the same person as this device: itself, or its profile's.

    A revoked enrollment's tallies are no longer anyone's to amend through a profile: a device
    the coordinator revoked must not come back through its saved profile key.
    """
    enrollment = principal.enrollment
    if enrollment.volunteer_id is None:
        return select(Enrollment.id).where(Enrollment.id == enrollment.id)
    return select(Enrollment.id).where(Enrollment.volunteer_id == enrollment.volunteer_id,
                                       Enrollment.revoked_at.is_(None))


def _owns(principal: Principal, submission: Submission) -> bool:
    if submission.enrollment_id is None:
        return False
    if submission.enrollment_id == principal.enrollment_id:
        return True
    return submission.enrollment_id in set(db.session.scalars(_volunteer_enrollment_ids(principal)))


def _check_read(principal: Principal, submission: Submission) -> None:
    if principal.role == "volunteer":
        if not _owns(principal, submission):
            raise NotFound(str(_l("No submission of yours has this id.")))
        return
    caravan = db.session.get(Caravan, submission.caravan_id)
    if not principal.in_region(caravan.region_code):
        raise Forbidden(str(_l(
            "This submission belongs to a caravan in region %(region)s, outside your regions.",
            region=caravan.region_code)))


# --- meaning ----------------------------------------------------------------------------------

def _check_content(principal: Principal, caravan: Caravan, content: SubmissionInput,
                   today: dt.date | None, *, site_ok: bool | None = None) -> None:
    """Check what the schema cannot: the day, the site and the late-sync window."""
    errors: dict[str, list[str]] = {}
    day: dt.date = content.day
    if not caravan.first_day <= day <= caravan.last_day:
        errors["day"] = [str(_l(
            "%(day)s is not a day of this caravan (%(first)s to %(last)s).",
            day=day.isoformat(), first=caravan.first_day.isoformat(),
            last=caravan.last_day.isoformat()))]
    today = today or morocco_today()
    # Today in Morocco, where caravan days are counted: a later day has not happened yet.
    if "day" not in errors and day > today:
        errors["day"] = [str(_l("%(day)s has not happened yet; send the tally on the day.",
                                day=day.isoformat()))]
    site_id = content.site_id
    if site_id is not None:
        if site_ok is None:
            site = db.session.get(Site, site_id)
            site_ok = site is not None and site.caravan_id == caravan.id
        if not site_ok:
            errors["site_id"] = [str(_l(
                "Site %(id)s is not a site of this caravan.", id=site_id))]
    if errors:
        raise ValidationFailed(
            str(_l("Some fields are invalid: ")) + "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in errors.items()),
            errors=errors)
    if principal.role == "volunteer":
        until = sync_deadline(caravan)
        if today > until:
            message = late_sync_message(caravan)
            raise ValidationFailed(message, errors={"day": [message]},
                                   accepted_until=until.isoformat())


def _enrollment_for(principal: Principal, caravan: Caravan, content: SubmissionInput) -> int | None:
    """The volunteer enrollment a submission belongs to (paper sheets: the one named)."""
    wanted = content.enrollment_id
    if principal.role == "volunteer":
        if wanted is not None and wanted != principal.enrollment_id:
            raise ValidationFailed(
                str(_l("A device sends its own tallies; leave enrollment_id out.")),
                errors={"enrollment_id": [str(_l("Leave enrollment_id out; it is your token's."))]})
        return principal.enrollment_id
    if wanted is None:
        return None
    enrollment = db.session.get(Enrollment, wanted)
    if enrollment is None or enrollment.caravan_id != caravan.id:
        message = str(_l("Enrollment %(id)s is not a volunteer of this caravan.", id=wanted))
        raise ValidationFailed(message, errors={"enrollment_id": [message]})
    return enrollment.id


def plausibility_flags(caravan: Caravan, content: SubmissionInput, *,
                       planned: bool | None = None) -> list[dict[str, Any]]:
    """Flags about one tally on its own (not rejections): a coordinator should look.

    ``planned`` says whether the specialty is planned for the caravan when the caller already
    knows (else the caravan's planned specialties are read).
    """
    totals: dict[str, int] = {}
    for line in content.lines:
        totals[line["measure"]] = totals.get(line["measure"], 0) + int(line["count"])
    consultations = totals.get("consultations", 0)
    specialty = content.specialty
    flags: list[dict[str, Any]] = []
    if totals.get("procedures", 0) > consultations:
        flags.append({"code": "procedures_above_consultations",
                      "procedures": totals["procedures"], "consultations": consultations})
    if totals.get("referrals", 0) > consultations:
        flags.append({"code": "referrals_above_consultations",
                      "referrals": totals["referrals"], "consultations": consultations})
    if totals.get("glasses", 0) > 0 and specialty != "OPH":
        flags.append({"code": "glasses_outside_ophthalmology",
                      "glasses": totals["glasses"], "specialty": specialty})
    if planned is None:
        planned = specialty in caravan.specialties
    if not planned:
        flags.append({"code": "specialty_not_planned", "specialty": specialty})
    return flags


class FlagContext(NamedTuple):
    """What the flags and checks of one tally need from the database, read in one statement."""

    other_consultations: int  # the volunteer's other counted consultations that day
    planned: bool  # the specialty is planned for the caravan
    site_ok: bool  # no site, or a site of this caravan


_FLAG_CONTEXT: dict[tuple[bool, bool], Any] = {}


def _flag_context_statement(with_volume: bool, with_site: bool) -> Any:
    """The flag context's SELECT, built once per shape (building it costs more than running it)."""
    statement = _FLAG_CONTEXT.get((with_volume, with_site))
    if statement is None:
        if with_volume:
            lines = counted_lines()
            others: Any = (
                select(func.coalesce(func.sum(lines.c.count), 0))
                .join(Submission, Submission.id == lines.c.submission_id)
                .where(Submission.enrollment_id == bindparam("enrollment_id"),
                       lines.c.day == bindparam("day"),
                       lines.c.measure_code == "consultations",
                       lines.c.submission_id != bindparam("submission_id"))
                .scalar_subquery())
        else:
            others = literal(0)
        planned = (select(caravan_specialty.c.caravan_id)
                   .where(caravan_specialty.c.caravan_id == bindparam("caravan_id"),
                          caravan_specialty.c.specialty_code == bindparam("specialty")).exists())
        site_ok: Any = (
            select(Site.id).where(Site.id == bindparam("site_id"),
                                  Site.caravan_id == bindparam("caravan_id")).exists()
            if with_site else literal(True))
        statement = _FLAG_CONTEXT[(with_volume, with_site)] = select(others, planned, site_ok)
    return statement


def flag_context(caravan_id: int, submission_id: str, enrollment_id: int | None,
                 content: SubmissionInput) -> FlagContext:
    """Read, in one statement, the volume, planned specialty and site a tally is checked with."""
    site_id = content.site_id
    statement = _flag_context_statement(enrollment_id is not None, site_id is not None)
    params: dict[str, Any] = {"caravan_id": caravan_id, "specialty": content.specialty}
    if enrollment_id is not None:
        params.update(enrollment_id=enrollment_id, day=content.day,
                      submission_id=submission_id)
    if site_id is not None:
        params["site_id"] = site_id
    row = db.session.connection().execute(statement, params).one()
    return FlagContext(int(row[0]), bool(row[1]), bool(row[2]))


def _volume_flag(enrollment_id: int | None, day: dt.date, content: SubmissionInput,
                 other_consultations: int) -> dict[str, Any] | None:
    """More than 150 consultations by one volunteer in a day, across their counted tallies.

    Counts this content plus the volunteer's other counted submissions of that day.
    """
    if enrollment_id is None:
        return None
    total = other_consultations + sum(
        int(line["count"]) for line in content.lines if line["measure"] == "consultations")
    if total > CONSULTATIONS_PER_DAY_LIMIT:
        return {"code": "over_150_consultations", "consultations": total,
                "day": day.isoformat(), "limit": CONSULTATIONS_PER_DAY_LIMIT}
    return None


def _version_flags(caravan: Caravan, content: SubmissionInput, enrollment_id: int | None,
                   context: FlagContext) -> list[dict[str, Any]]:
    flags = plausibility_flags(caravan, content, planned=context.planned)
    volume = _volume_flag(enrollment_id, content.day, content, context.other_consultations)
    if volume is not None:
        flags.insert(0, volume)
    return flags


# PostgreSQL: a new submission, its first version, its lines and its audit event in one
# statement (one round trip instead of seven), with what the flags need read in it too:
# - ctx: as flag_context() (the volume is counted_lines() spelled out: the volunteer's other
#   current, not rejected versions of that day), and whether the site is one of the caravan's;
# - a bad site inserts nothing (the caller then raises the same 422 as _check_content);
# - the version id is drawn from its sequence by the submission's INSERT, so that
#   current_version_id needs no UPDATE; a duplicate id inserts nothing at all;
# - the version's flags are those of _version_flags(): the volume flag, then the ones computed
#   from the lines alone (:flags), then specialty_not_planned. The caller recomputes them in
#   Python from ctx for its answer (tests compare the answer with what is stored).
# Foreign keys are checked at the end of the statement.
_CREATE_POSTGRESQL = text("""
WITH ctx AS (
    SELECT
        (SELECT coalesce(sum(tl.count), 0)
         FROM tally_line tl
         JOIN submission_version sv ON sv.id = tl.version_id
         JOIN submission sb ON sb.current_version_id = sv.id
         WHERE sb.review_status != 'rejected'
           AND sb.enrollment_id = CAST(:enrollment_id AS integer)
           AND sv.day = CAST(:day AS date)
           AND tl.measure_code = 'consultations'
           AND sb.id != CAST(:id AS varchar)) AS others,
        EXISTS (SELECT 1 FROM caravan_specialty
                WHERE caravan_id = CAST(:caravan_id AS integer)
                  AND specialty_code = CAST(:specialty AS varchar)) AS planned,
        (CAST(:site_id AS integer) IS NULL
         OR EXISTS (SELECT 1 FROM site WHERE id = CAST(:site_id AS integer)
                                         AND caravan_id = CAST(:caravan_id AS integer)))
            AS site_ok
), s AS (
    INSERT INTO submission (id, caravan_id, enrollment_id, review_status, created_at,
                            updated_at, current_version_id)
    SELECT CAST(:id AS varchar), CAST(:caravan_id AS integer),
           CAST(:enrollment_id AS integer), 'received', CAST(:now AS timestamptz),
           CAST(:now AS timestamptz), nextval(pg_get_serial_sequence('submission_version', 'id'))
    FROM ctx WHERE ctx.site_ok
    ON CONFLICT (id) DO NOTHING
    RETURNING current_version_id
), v AS (
    INSERT INTO submission_version (id, submission_id, number, caravan_id, site_id, day,
                                    specialty_code, content_hash, note, flags, entered_by_id,
                                    created_at)
    SELECT s.current_version_id, CAST(:id AS varchar), 1, CAST(:caravan_id AS integer),
           CAST(:site_id AS integer), CAST(:day AS date), CAST(:specialty AS varchar),
           CAST(:content_hash AS varchar), CAST(:note AS varchar),
           CAST(
               CASE WHEN CAST(:enrollment_id AS integer) IS NOT NULL
                         AND ctx.others + CAST(:consultations AS integer) > CAST(:limit AS integer)
                    THEN jsonb_build_array(jsonb_build_object(
                        'code', 'over_150_consultations',
                        'consultations', ctx.others + CAST(:consultations AS integer),
                        'day', CAST(:day_text AS text), 'limit', CAST(:limit AS integer)))
                    ELSE CAST('[]' AS jsonb) END
               || CAST(:flags AS jsonb)
               || CASE WHEN ctx.planned THEN CAST('[]' AS jsonb)
                       ELSE jsonb_build_array(jsonb_build_object(
                           'code', 'specialty_not_planned',
                           'specialty', CAST(:specialty AS text))) END
           AS json),
           CAST(:entered_by_id AS integer), CAST(:now AS timestamptz)
    FROM s CROSS JOIN ctx
    RETURNING id
), l AS (
    INSERT INTO tally_line (version_id, measure_code, sex, age_band, condition, count)
    SELECT v.id, x.measure, x.sex, x.age_band, x.condition, x.count
    FROM v CROSS JOIN ROWS FROM (jsonb_to_recordset(CAST(:lines AS jsonb))
                                 AS (measure varchar, sex varchar, age_band varchar,
                                     condition varchar, count integer))
         WITH ORDINALITY AS x(measure, sex, age_band, condition, count, n)
    ORDER BY x.n
), a AS (
    INSERT INTO audit_event (at, actor_kind, actor_id, action, object_type, object_id,
                             region_code, detail)
    SELECT CAST(:now AS timestamptz), CAST(:actor_kind AS varchar), CAST(:actor_id AS varchar),
           CAST(:action AS varchar), CAST(:object_type AS varchar),
           CAST(:object_id AS varchar), CAST(:region_code AS varchar), CAST(:detail AS json)
    FROM v
)
SELECT ctx.others, ctx.planned, ctx.site_ok, (SELECT id FROM v) FROM ctx
""")


def one_statement_insert() -> bool:
    """Whether new submissions take the one-statement insert (PostgreSQL) over the layered one."""
    return db.engine.dialect.name == "postgresql"  # (writes go to the primary, db.engine)


class NewSubmission(NamedTuple):
    """What the one statement stores for a new submission, and what its answer is made of."""

    row: dict[str, Any]
    version: dict[str, Any]
    lines: list[Line]
    params: dict[str, Any]


def _new_submission(principal: Principal, caravan: Caravan, content: SubmissionInput,
                    enrollment_id: int | None, remote_addr: str | None, digest: str,
                    ) -> NewSubmission:
    """The rows of a new submission and the one statement's parameters (PostgreSQL)."""
    submission_id = str(content.id)
    now = utcnow()
    row = {"id": submission_id, "caravan_id": caravan.id, "enrollment_id": enrollment_id,
           "review_status": "received", "review_reason": None, "reviewed_at": None,
           "created_at": now, "updated_at": now}
    entered_by_id = principal.user.id if principal.user is not None else None
    version = {
        "number": 1, "site_id": content.site_id, "day": content.day,
        "specialty_code": content.specialty, "content_hash": digest,
        "note": content.note, "entered_by_id": entered_by_id, "created_at": now,
    }
    event = _audit_create_values(principal, caravan, submission_id, content, entered_by_id,
                                 remote_addr)
    lines = canonical_lines(content.lines)
    params = _create_params(row, version, lines,
                            plausibility_flags(caravan, content, planned=True), event)
    return NewSubmission(row, version, lines, params)


def _stored_new(caravan: Caravan, content: SubmissionInput, new: NewSubmission,
                context: FlagContext, version_id: int) -> StoredSubmission:
    """The answer to a new submission the one statement stored (flags recomputed from ctx)."""
    version = {**new.version, "flags": _version_flags(caravan, content, new.row["enrollment_id"],
                                                      context)}
    return StoredSubmission(SimpleNamespace(**new.row), SimpleNamespace(id=version_id, **version),
                            new.lines, 1)


_CREATE_SQL: dict[str, str] = {}


def lean_submit(content: SubmissionInput, principal: Any, remote_addr: str | None,
                execute: Callable[[str, dict[str, Any]], tuple]) -> StoredSubmission | None:
    """submit() of a device's usual new tally through ``execute(sql, params)`` on a raw
    connection in autocommit (tallies.lean): the stored submission, or None when submit() must
    judge the request instead (another caravan, a check that fails, a site that is not the
    caravan's, an id that exists); then nothing was stored."""
    caravan = principal.caravan
    if principal.enrollment_caravan_id != content.caravan_id \
            or not _checks_need_no_database(principal, caravan, content, None):
        return None
    new = _new_submission(principal, caravan, content, principal.enrollment_id, remote_addr,
                          content_hash(content))
    sql = _CREATE_SQL.get("psycopg")
    if sql is None:
        sql = _CREATE_SQL["psycopg"] = str(_CREATE_POSTGRESQL.compile(
            dialect=db.session.get_bind().dialect))
    others, planned, site_ok, version_id = execute(sql, new.params)
    if not site_ok or version_id is None:
        return None
    return _stored_new(caravan, content, new, FlagContext(int(others), bool(planned), True),
                       version_id)


def _create_params(row: dict[str, Any], version: dict[str, Any], lines: list[Line],
                   line_flags: list[dict[str, Any]], event: Any) -> dict[str, Any]:
    """The one statement's parameters."""
    return {
        "id": row["id"], "caravan_id": row["caravan_id"], "enrollment_id": row["enrollment_id"],
        "now": row["created_at"], "site_id": version["site_id"], "day": version["day"],
        "day_text": version["day"].isoformat(), "specialty": version["specialty_code"],
        "content_hash": version["content_hash"], "note": version["note"],
        "flags": json.dumps(line_flags), "limit": CONSULTATIONS_PER_DAY_LIMIT,
        "consultations": sum(line["count"] for line in lines
                             if line["measure"] == "consultations"),
        "entered_by_id": version["entered_by_id"],
        "lines": json.dumps(lines),  # one parameter: cheaper to send than five arrays
        "actor_kind": event.actor_kind, "actor_id": event.actor_id, "action": event.action,
        "object_type": event.object_type, "object_id": event.object_id,
        "region_code": event.region_code,
        "detail": None if event.detail is None else json.dumps(event.detail),
    }


def _create_postgresql(params: dict[str, Any]) -> tuple[FlagContext, int | None]:
    """Store a new submission in one statement: the flags' context, and the new version's id
    (None when the id exists already or the site is not the caravan's: nothing is stored)."""
    others, planned, site_ok, version_id = db.session.connection().execute(
        _CREATE_POSTGRESQL, params).one()
    return FlagContext(int(others), bool(planned), bool(site_ok)), version_id


def _checks_need_no_database(principal: Principal, caravan: Caravan, content: SubmissionInput,
                             today: dt.date | None) -> bool:
    """Whether every check but the site's passes without reading anything (the usual tally)."""
    wanted = content.enrollment_id
    if wanted is not None and (principal.role != "volunteer" or wanted != principal.enrollment_id):
        return False
    try:
        _check_content(principal, caravan, content, today, site_ok=True)
    except DomainError:
        return False
    return True


def _add_version(submission_id: str, enrollment_id: int | None, caravan: Caravan,
                 content: SubmissionInput, digest: str, number: int, entered_by_id: int | None,
                 now: dt.datetime, context: FlagContext | None = None,
                 ) -> tuple[SimpleNamespace, list[dict]]:
    """Store a version with its lines and make it the one that counts (flags computed first).

    Plain INSERTs (the lines in one executemany) and no read-back: the caller answers with
    what it wrote.
    """
    if context is None:
        context = flag_context(caravan.id, submission_id, enrollment_id, content)
    flags = _version_flags(caravan, content, enrollment_id, context)
    values = {
        "submission_id": submission_id, "number": number, "caravan_id": caravan.id,
        "site_id": content.site_id, "day": content.day,
        "specialty_code": content.specialty, "content_hash": digest,
        "note": content.note, "flags": flags, "entered_by_id": entered_by_id,
        "created_at": now,
    }
    table = SubmissionVersion.__table__
    version_id = db.session.execute(insert(table).values(values).returning(table.c.id)).scalar_one()
    lines = canonical_lines(content.lines)
    db.session.execute(insert(TallyLine.__table__), [
        {"version_id": version_id, "measure_code": line["measure"], "sex": line["sex"],
         "age_band": line["age_band"], "condition": line["condition"], "count": line["count"]}
        for line in lines
    ])
    db.session.execute(
        update(Submission.__table__).where(Submission.__table__.c.id == submission_id)
        .values(current_version_id=version_id, updated_at=now))
    return SimpleNamespace(id=version_id, **values), lines


# --- the API's operations ---------------------------------------------------------------------

def _insert_ignoring_duplicate(values: dict[str, Any]) -> bool:
    """Insert a submission row unless its id exists; True when this call stored it.

    Two phones (or one retrying) racing on the same id: the database keeps exactly one; the
    loser's INSERT waits for the winner's commit, then does nothing.
    """
    dialect = db.session.get_bind().dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    table = Submission.__table__
    statement = (builder(table).values(**values)
                 .on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id))
    return db.session.execute(statement).scalar() is not None


def _replay(submission: Submission, digest: str, principal: Principal) -> StoredSubmission:
    """The same id again: the same content answers as before; other content is a conflict."""
    same_owner = (
        _owns(principal, submission) if principal.role == "volunteer"
        else principal.in_region(db.session.get(Caravan, submission.caravan_id).region_code)
    )
    known = same_owner and db.session.scalar(
        select(SubmissionVersion.id).where(SubmissionVersion.submission_id == submission.id,
                                           SubmissionVersion.content_hash == digest).limit(1))
    if not known:
        message = str(_l(
            "A submission with this id already exists with other content; to change it, send "
            "PUT /api/v1/submissions/%(id)s (or a new id for a new tally).", id=submission.id))
        raise Conflict(message, errors={"id": [message]},
                       amend_with=f"PUT /api/v1/submissions/{submission.id}")
    return stored_submission(submission)


def submit(content: SubmissionInput, principal: Principal, *,
           today: dt.date | None = None) -> tuple[StoredSubmission, bool]:
    """Store a new submission; the same id and content again changes nothing.

    Returns the stored submission and whether it was created (201) rather than replayed (200).
    """
    submission_id = str(content.id)
    if principal.role == "volunteer" and principal.enrollment_caravan_id == content.caravan_id:
        # Read with the token, in the same statement (a device's: the columns the checks need).
        caravan = getattr(principal, "caravan", None) or principal.enrollment.caravan
    else:
        caravan = _caravan_for(content.caravan_id)
    _check_write_scope(principal, caravan)
    digest = content_hash(content)
    postgresql = one_statement_insert()
    if postgresql and _checks_need_no_database(principal, caravan, content, today):
        # The one statement below reads the flags' context and checks the site itself.
        enrollment_id = principal.enrollment_id if principal.role == "volunteer" else None
    else:
        try:
            # The enrollment it will belong to, if it passes _enrollment_for (checked after the
            # content, as ever): the flags' context is read in one statement before either check.
            tentative = (principal.enrollment_id if principal.role == "volunteer"
                         else content.enrollment_id)
            context = flag_context(caravan.id, submission_id, tentative, content)
            _check_content(principal, caravan, content, today, site_ok=context.site_ok)
            enrollment_id = _enrollment_for(principal, caravan, content)
        except DomainError as error:
            return _replay_or_raise(submission_id, digest, principal, error)
    if postgresql:
        address = request.remote_addr if has_request_context() else None  # (demo data: none)
        new = _new_submission(principal, caravan, content, enrollment_id, address, digest)
        context, version_id = _create_postgresql(new.params)
        if not context.site_ok:
            try:
                _check_content(principal, caravan, content, today, site_ok=False)
            except DomainError as error:
                return _replay_or_raise(submission_id, digest, principal, error)
        if version_id is None:
            existing = db.session.get(Submission, submission_id, populate_existing=True)
            return _replay(existing, digest, principal), False
        return _stored_new(caravan, content, new, context, version_id), True
    now = utcnow()
    row = {"id": submission_id, "caravan_id": caravan.id, "enrollment_id": enrollment_id,
           "review_status": "received", "review_reason": None, "reviewed_at": None,
           "created_at": now, "updated_at": now}
    entered_by_id = principal.user.id if principal.user is not None else None
    if not _insert_ignoring_duplicate(row):
        existing = db.session.get(Submission, submission_id, populate_existing=True)
        return _replay(existing, digest, principal), False
    version, lines = _add_version(submission_id, enrollment_id, caravan, content, digest, 1,
                                  entered_by_id, now, context)
    _audit_create(principal, caravan, submission_id, content, entered_by_id)
    return StoredSubmission(SimpleNamespace(**row), version, lines, 1), True


def _replay_or_raise(submission_id: str, digest: str, principal: Principal,
                     error: DomainError) -> tuple[StoredSubmission, bool]:
    """A phone retrying what was stored before (say, before the window closed) still gets its
    answer; anything else gets the error."""
    existing = db.session.get(Submission, submission_id)
    if existing is not None:
        return _replay(existing, digest, principal), False
    raise error


def _audit_create(principal: Principal, caravan: Caravan, submission_id: str,
                  content: SubmissionInput, entered_by_id: int | None) -> Any:
    return audit("submission.create", object_type="submission", object_id=submission_id,
                 region_code=caravan.region_code, principal=principal, caravan_id=caravan.id,
                 version=1, day=content.day.isoformat(), specialty=content.specialty,
                 paper=entered_by_id is not None)


def _audit_create_values(principal: Principal, caravan: Caravan, submission_id: str,
                         content: SubmissionInput, entered_by_id: int | None,
                         remote_addr: str | None) -> Any:
    """The audit event of a new submission, for the statement that writes it with the
    submission: a device's as audit() would record it, without an ORM object (the hot path);
    anyone else's through audit() itself."""
    if isinstance(principal, DevicePrincipal):
        return SimpleNamespace(
            actor_kind="volunteer", actor_id=principal.actor_id, action="submission.create",
            object_type="submission", object_id=submission_id, region_code=caravan.region_code,
            detail={"caravan_id": caravan.id, "version": 1, "day": content.day.isoformat(),
                    "specialty": content.specialty, "paper": entered_by_id is not None,
                    "ip": remote_addr})
    event = _audit_create(principal, caravan, submission_id, content, entered_by_id)
    db.session.expunge(event)  # written by the same statement, with the submission
    return event


def amend(submission_id: str, content: SubmissionInput, principal: Principal, *,
          today: dt.date | None = None) -> tuple[StoredSubmission, bool]:
    """Make a new version when the content differs; return it and whether it changed."""
    submission = db.session.get(Submission, submission_id, with_for_update=True)
    if submission is None:
        raise NotFound(str(_l(
            "No submission has this id; send it first with POST /api/v1/submissions.")))
    # Who may touch it first: a mismatched body must not reveal that someone else's id exists.
    if principal.role == "volunteer" and not _owns(principal, submission):
        raise NotFound(str(_l("No submission of yours has this id.")))
    caravan = db.session.get(Caravan, submission.caravan_id)
    _check_write_scope(principal, caravan)
    if content.id is not None and str(content.id) != submission_id:
        message = str(_l("The id in the body must be the id in the address."))
        raise ValidationFailed(message, errors={"id": [message]})
    if content.caravan_id != submission.caravan_id:
        message = str(_l("A submission stays with its caravan; send a new one for caravan %(id)s.",
                         id=content.caravan_id))
        raise ValidationFailed(message, errors={"caravan_id": [message]})
    digest = content_hash(content)
    current = db.session.get(SubmissionVersion, submission.current_version_id)
    if current.content_hash == digest:
        return stored_submission(submission), False
    _check_content(principal, caravan, content, today)
    if principal.role != "volunteer" and content.enrollment_id is not None:
        submission.enrollment_id = _enrollment_for(principal, caravan, content)
    number = db.session.scalar(select(func.max(SubmissionVersion.number)).where(
        SubmissionVersion.submission_id == submission_id)) + 1
    previous_status = submission.review_status
    submission.review_status = "received"
    submission.review_reason = None
    submission.reviewed_by_id = None
    submission.reviewed_at = None
    entered_by_id = principal.user.id if principal.user is not None else None
    db.session.flush()
    _add_version(submission_id, submission.enrollment_id, caravan, content, digest, number,
                 entered_by_id, utcnow())
    db.session.expire(submission)
    audit("submission.amend", object_type="submission", object_id=submission.id,
          region_code=caravan.region_code, principal=principal, caravan_id=caravan.id,
          version=number, previous_review_status=previous_status,
          paper=entered_by_id is not None)
    return stored_submission(submission), True


def review(submission_id: str, decision: ReviewDecision,
           principal: Principal) -> StoredSubmission:
    """Approve, flag or reject a submission (a coordinator of its region)."""
    submission = db.session.get(Submission, submission_id, with_for_update=True)
    if submission is None:
        raise NotFound(str(_l("No submission has this id.")))
    caravan = db.session.get(Caravan, submission.caravan_id)
    _check_write_scope(principal, caravan)
    current = db.session.get(SubmissionVersion, submission.current_version_id)
    if current is None or current.number != decision.version:
        # The volunteer amended it since the reviewer looked: judge what is there now.
        raise Conflict(
            str(_l("You reviewed version %(judged)s, but version %(current)s is current now; "
                   "look at it and review again.", judged=decision.version,
                   current=current.number if current else 0)),
            errors={"version": [str(_l("not the current version (%(current)s)",
                                       current=current.number if current else 0))]},
            current_version=current.number if current else None)
    submission.review_status = decision.status
    submission.review_reason = (decision.reason or "").strip() or None
    submission.reviewed_by_id = principal.user.id
    submission.reviewed_at = utcnow()
    db.session.flush()
    audit("submission.review", object_type="submission", object_id=submission.id,
          region_code=caravan.region_code, principal=principal, status=decision.status,
          reason=submission.review_reason, version=decision.version)
    return stored_submission(submission)


def erase_note(submission_id: str, principal: Principal) -> StoredSubmission:
    """Erase a submission's note from every version (a coordinator of its region); audited
    without the note's text."""
    submission = db.session.get(Submission, submission_id, with_for_update=True)
    if submission is None:
        raise NotFound(str(_l("No submission has this id.")))
    caravan = db.session.get(Caravan, submission.caravan_id)
    _check_write_scope(principal, caravan)
    erased = db.session.execute(
        update(SubmissionVersion)
        .where(SubmissionVersion.submission_id == submission.id,
               SubmissionVersion.note.is_not(None))
        .values(note=None)).rowcount or 0
    db.session.flush()
    db.session.expire_all()
    audit("submission.note_erase", object_type="submission", object_id=submission.id,
          region_code=caravan.region_code, principal=principal, versions=erased)
    return stored_submission(db.session.get(Submission, submission_id))


def get_submission(submission_id: str, principal: Principal) -> StoredSubmission:
    """A submission with all its versions, for its volunteer or a coordinator in scope."""
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(str(_l("No submission has this id.")))
    _check_read(principal, submission)
    return stored_submission(submission, with_versions=True)


def list_submissions(principal: Principal, wanted: SubmissionFilter) -> Page[StoredSubmission]:
    """Submissions a caller may see, newest first, with their current content."""
    caravan_id, day, status = wanted.caravan_id, wanted.day, wanted.status
    query = select(Submission).join(
        SubmissionVersion, SubmissionVersion.id == Submission.current_version_id)
    if principal.role == "volunteer":
        query = query.where(Submission.enrollment_id.in_(_volunteer_enrollment_ids(principal)))
    elif principal.role != "admin":
        if caravan_id is not None:
            caravan = db.session.get(Caravan, caravan_id)
            if caravan is not None:
                require_scope(caravan, principal)
        query = query.where(Submission.caravan_id.in_(
            select(Caravan.id).where(Caravan.region_code.in_(principal.region_codes))))
    if caravan_id is not None:
        query = query.where(Submission.caravan_id == caravan_id)
    if day is not None:
        query = query.where(SubmissionVersion.day == day)
    if status is not None:
        query = query.where(Submission.review_status == status)
    if wanted.specialty is not None:
        query = query.where(SubmissionVersion.specialty_code == wanted.specialty)
    order: list[Any] = [Submission.created_at.desc(), Submission.id]
    if wanted.flagged_first:
        flags_text = cast(SubmissionVersion.flags, Text)
        order.insert(0, case(
            (Submission.review_status == "flagged", 0),
            (and_(Submission.review_status == "received", flags_text.is_not(None),
                  flags_text.not_in(["[]", "null"])), 1),
            (Submission.review_status == "received", 2),
            else_=3))
    found = paginate(query.order_by(*order), wanted.limit, wanted.offset)
    page: list[Submission] = found.items
    ids = [submission.id for submission in page]
    counts = dict(db.session.execute(
        select(SubmissionVersion.submission_id, func.count())
        .where(SubmissionVersion.submission_id.in_(ids))
        .group_by(SubmissionVersion.submission_id)).all())
    current_ids = [submission.current_version_id for submission in page]
    versions = {version.id: version for version in db.session.scalars(
        select(SubmissionVersion).where(SubmissionVersion.id.in_(current_ids)))}
    lines: dict[int, list[Line]] = {version_id: [] for version_id in current_ids}
    for line in db.session.scalars(select(TallyLine).where(TallyLine.version_id.in_(current_ids))):
        lines[line.version_id].append(_line(line))
    items = [
        StoredSubmission(submission, versions[submission.current_version_id],
                         canonical_lines(lines[submission.current_version_id]),
                         counts[submission.id])
        for submission in page
    ]
    return Page(items=items, total=found.total, limit=found.limit, offset=found.offset)


def keep_submissions_within_days(caravan: Caravan, first: dt.date, last: dt.date) -> None:
    """Refuse new caravan days that would leave some of its submissions outside them."""
    outside = db.session.scalar(
        select(func.count())
        .select_from(Submission)
        .join(SubmissionVersion, SubmissionVersion.id == Submission.current_version_id)
        .where(Submission.caravan_id == caravan.id)
        .where((SubmissionVersion.day < first) | (SubmissionVersion.day > last))
    ) or 0
    if outside:
        raise Conflict(
            str(_l("%(count)s submissions are for days outside %(first)s–%(last)s; keep those "
                   "days or have the submissions amended first.", count=outside, first=first,
                   last=last)),
            errors={"first_day": [str(_l("submissions exist outside these days"))]},
        )


def keep_named_sites(site: Site) -> None:
    """Refuse to remove a site that any tally names (an older version counts too)."""
    named = db.session.scalar(
        select(func.count(func.distinct(SubmissionVersion.submission_id)))
        .where(SubmissionVersion.site_id == site.id)
    ) or 0
    if named:
        raise Conflict(
            str(_l("Site %(id)s (%(name)s) stays: tallies already name it (%(count)s). If "
                   "its name or point is wrong, correct them instead.", count=named, id=site.id,
                   name=site.name)),
            errors={"site": [str(_l("tallies name this site"))]},
        )


def completeness(caravan_id: int, principal: Principal) -> Completeness:
    """For each day × planned specialty of a caravan: received or missing."""
    caravan = db.session.get(Caravan, caravan_id)
    if caravan is None:
        raise NotFound(str(_l("No caravan has id %(id)s.", id=caravan_id)))
    allowed = (
        principal.in_region(caravan.region_code)
        or (principal.role == "volunteer" and principal.enrollment_caravan_id == caravan.id)
        or (principal.role == "planner" and principal.organization_id is not None
            and principal.organization_id in {org.id for org in caravan.organizers})
    )
    if not allowed:
        raise Forbidden(str(_l(
            "Only the caravan's coordinators, organizers and volunteers see its completeness.")))
    approved = Submission.review_status == "approved"
    received, approvals = {}, {}
    for day, specialty, count, approved_count in db.session.execute(
            select(SubmissionVersion.day, SubmissionVersion.specialty_code, func.count(),
                   func.count().filter(approved))
            .join(Submission, Submission.current_version_id == SubmissionVersion.id)
            .where(Submission.caravan_id == caravan.id, Submission.review_status != "rejected")
            .group_by(SubmissionVersion.day, SubmissionVersion.specialty_code)):
        received[(day, specialty)] = count
        approvals[(day, specialty)] = approved_count
    days = [caravan.first_day + dt.timedelta(days=n)
            for n in range((caravan.last_day - caravan.first_day).days + 1)]
    planned = caravan.specialties
    extra = sorted({specialty for _, specialty in received} - set(planned))
    cells = []
    for day in days:
        for specialty in [*planned, *extra]:
            count = received.get((day, specialty), 0)
            if specialty in extra and not count:
                continue
            cells.append(CompletenessCell(day, specialty, specialty in planned, count,
                                          approvals.get((day, specialty), 0)))
    return Completeness(caravan.id, days, planned, cells)


def last_tally_times(caravan_id: int) -> dict[int, dt.datetime]:
    """When each volunteer enrollment of a caravan last sent (or amended) a tally."""
    return dict(db.session.execute(
        select(Submission.enrollment_id, func.max(SubmissionVersion.created_at))
        .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
        .where(Submission.caravan_id == caravan_id, Submission.enrollment_id.is_not(None))
        .group_by(Submission.enrollment_id)).all())
