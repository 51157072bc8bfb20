"""What tallies do: store submissions once, amend them, review them, and say what counts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Subquery, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import lazyload

from fieldsvc.accounts.services import audit
from fieldsvc.caravans.models import Caravan, Enrollment, Site
from fieldsvc.caravans.services import LATE_SYNC_DAYS
from fieldsvc.db import utcnow
from fieldsvc.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.security import Principal
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine


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


def _line_key(line: dict[str, Any]) -> tuple[str, str, str, str]:
    return (line["measure"], line["sex"], line["age_band"], line.get("condition") or "")


def canonical_lines(lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines in one stable order (measure, sex, age band, condition), as the API shows them."""
    return [
        {"measure": line["measure"], "sex": line["sex"], "age_band": line["age_band"],
         "condition": line.get("condition"), "count": int(line["count"])}
        for line in sorted(lines, key=_line_key)
    ]


def content_hash(content: dict[str, Any]) -> str:
    """SHA-256 of what a submission says: caravan, day, specialty, site and sorted lines.

    The note is left out (fixing a typo in it is not new content), and so is line order.
    """
    canonical = {
        "caravan_id": int(content["caravan_id"]),
        "day": content["day"].isoformat(),
        "specialty": content["specialty"],
        "site_id": content.get("site_id"),
        "lines": [
            [line["measure"], line["sex"], line["age_band"], line.get("condition") or "",
             int(line["count"])]
            for line in sorted(content["lines"], key=_line_key)
        ],
    }
    text = json.dumps(canonical, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# Phones may be a day ahead of the server around midnight; a day further on has not happened yet.
FUTURE_GRACE_DAYS = 1

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


def morocco_today() -> dt.date:
    """Today's date in Morocco, where caravan days are counted."""
    try:
        from zoneinfo import ZoneInfo

        return dt.datetime.now(ZoneInfo("Africa/Casablanca")).date()
    except Exception:  # noqa: BLE001 - no time zone database: Morocco is UTC+1 most of the year
        return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).date()


def accepted_until(caravan: Caravan) -> dt.date:
    """The last day a phone may still send or amend a tally for this caravan."""
    end = caravan.last_day
    if caravan.closed_at is not None:
        end = max(end, caravan.closed_at.date())
    return end + dt.timedelta(days=LATE_SYNC_DAYS)


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite gives back naive UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def render_flags(flags: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Flag codes with a sentence a coordinator reads."""
    rendered = []
    for flag in flags or []:
        params = {key: value for key, value in flag.items() if key != "code"}
        template = FLAG_MESSAGES.get(flag["code"])
        message = str(template) % params if template is not None else flag["code"]
        rendered.append({"code": flag["code"], "message": message})
    return rendered


def _line_dict(line: TallyLine) -> dict[str, Any]:
    return {"measure": line.measure_code, "sex": line.sex, "age_band": line.age_band,
            "condition": line.condition, "count": line.count}


def _version_body(version: SubmissionVersion, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "number": version.number,
        "site_id": version.site_id,
        "day": version.day.isoformat(),
        "specialty": version.specialty_code,
        "lines": canonical_lines(lines),
        "note": version.note,
        "flags": render_flags(version.flags),
        "entered_by_id": version.entered_by_id,
        "content_hash": version.content_hash,
        "created_at": _iso(version.created_at),
    }


def _body(submission: Submission | SimpleNamespace, version: SubmissionVersion,
          lines: list[dict[str, Any]], version_count: int) -> dict[str, Any]:
    return {
        "id": submission.id,
        "caravan_id": submission.caravan_id,
        "site_id": version.site_id,
        "day": version.day.isoformat(),
        "specialty": version.specialty_code,
        "lines": canonical_lines(lines),
        "note": version.note,
        "version": version.number,
        "version_count": version_count,
        "review_status": submission.review_status,
        "review_reason": submission.review_reason,
        "reviewed_at": _iso(submission.reviewed_at),
        "flags": render_flags(version.flags),
        "enrollment_id": submission.enrollment_id,
        "entered_by_id": version.entered_by_id,
        "content_hash": version.content_hash,
        "created_at": _iso(submission.created_at),
        "updated_at": _iso(submission.updated_at),
    }


def submission_body(submission: Submission, *, with_versions: bool = False) -> dict[str, Any]:
    """The API's view of a stored submission (its current version), read from the database."""
    versions = list(db.session.scalars(
        select(SubmissionVersion).where(SubmissionVersion.submission_id == submission.id)
        .order_by(SubmissionVersion.number)))
    ids = [version.id for version in versions]
    lines_by_version: dict[int, list[dict[str, Any]]] = {version_id: [] for version_id in ids}
    wanted = ids if with_versions else [submission.current_version_id]
    for line in db.session.scalars(select(TallyLine).where(TallyLine.version_id.in_(wanted))):
        lines_by_version[line.version_id].append(_line_dict(line))
    current = next(version for version in versions if version.id == submission.current_version_id)
    body = _body(submission, current, lines_by_version[current.id], len(versions))
    if with_versions:
        body["versions"] = [_version_body(v, lines_by_version[v.id]) for v in versions]
    return body


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
        if principal.enrollment.caravan_id != caravan.id:
            raise Forbidden(str(_l(
                "Your device token is for another caravan; join caravan %(id)s with its code "
                "to send tallies there.", id=caravan.id)))
        return
    if not principal.in_region(caravan.region_code):
        raise Forbidden(str(_l(
            "This caravan is in region %(region)s, outside your regions.",
            region=caravan.region_code)))


def _volunteer_enrollment_ids(principal: Principal) -> Any:
    """The enrollments that are the same person as this device: itself, or its profile's."""
    enrollment = principal.enrollment
    if enrollment.volunteer_id is None:
        return select(Enrollment.id).where(Enrollment.id == enrollment.id)
    return select(Enrollment.id).where(Enrollment.volunteer_id == enrollment.volunteer_id)


def _owns(principal: Principal, submission: Submission) -> bool:
    if submission.enrollment_id is None:
        return False
    if submission.enrollment_id == principal.enrollment.id:
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

def _check_content(principal: Principal, caravan: Caravan, content: dict[str, Any],
                   today: dt.date | None) -> None:
    """Check what the schema cannot: the day, the site and the late-sync window."""
    errors: dict[str, list[str]] = {}
    day: dt.date = content["day"]
    if not caravan.first_day <= day <= caravan.last_day:
        errors["day"] = [str(_l(
            "%(day)s is not a day of this caravan (%(first)s to %(last)s).",
            day=day.isoformat(), first=caravan.first_day.isoformat(),
            last=caravan.last_day.isoformat()))]
    today = today or morocco_today()
    if "day" not in errors and day > today + dt.timedelta(days=FUTURE_GRACE_DAYS):
        errors["day"] = [str(_l("%(day)s has not happened yet; send the tally on the day.",
                                day=day.isoformat()))]
    site_id = content.get("site_id")
    if site_id is not None:
        site = db.session.get(Site, site_id)
        if site is None or site.caravan_id != caravan.id:
            errors["site_id"] = [str(_l(
                "Site %(id)s is not a site of this caravan.", id=site_id))]
    if errors:
        raise ValidationFailed(
            str(_l("Some fields are invalid: ")) + "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in errors.items()),
            errors=errors)
    if principal.role == "volunteer":
        until = accepted_until(caravan)
        if today > until:
            message = str(_l(
                "This caravan's tallies were accepted until %(until)s (30 days after it closed); "
                "ask your coordinator to enter this sheet.", until=until.isoformat()))
            raise ValidationFailed(message, errors={"day": [message]},
                                   accepted_until=until.isoformat())


def _enrollment_for(principal: Principal, caravan: Caravan, content: dict[str, Any]) -> int | None:
    """The volunteer enrollment a submission belongs to (paper sheets: the one named)."""
    wanted = content.get("enrollment_id")
    if principal.role == "volunteer":
        if wanted is not None and wanted != principal.enrollment.id:
            raise ValidationFailed(
                str(_l("A device sends its own tallies; leave enrollment_id out.")),
                errors={"enrollment_id": [str(_l("Leave enrollment_id out; it is your token's."))]})
        return principal.enrollment.id
    if wanted is None:
        return None
    enrollment = db.session.get(Enrollment, wanted)
    if enrollment is None or enrollment.caravan_id != caravan.id:
        message = str(_l("Enrollment %(id)s is not a volunteer of this caravan.", id=wanted))
        raise ValidationFailed(message, errors={"enrollment_id": [message]})
    return enrollment.id


def plausibility_flags(caravan: Caravan, content: dict[str, Any]) -> list[dict[str, Any]]:
    """Flags about one tally on its own (not rejections): a coordinator should look."""
    totals: dict[str, int] = {}
    for line in content["lines"]:
        totals[line["measure"]] = totals.get(line["measure"], 0) + int(line["count"])
    consultations = totals.get("consultations", 0)
    specialty = content["specialty"]
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
    if specialty not in caravan.specialties:
        flags.append({"code": "specialty_not_planned", "specialty": specialty})
    return flags


def _volume_flag(submission_id: str, enrollment_id: int | None, day: dt.date,
                 content: dict[str, Any]) -> dict[str, Any] | None:
    """More than 150 consultations by one volunteer in a day, across their counted tallies.

    Counts this content plus the volunteer's other counted submissions of that day.
    """
    if enrollment_id is None:
        return None
    lines = counted_lines()
    others = db.session.scalar(
        select(func.coalesce(func.sum(lines.c.count), 0))
        .join(Submission, Submission.id == lines.c.submission_id)
        .where(Submission.enrollment_id == enrollment_id, lines.c.day == day,
               lines.c.measure_code == "consultations", lines.c.submission_id != submission_id))
    total = int(others) + sum(
        int(line["count"]) for line in content["lines"] if line["measure"] == "consultations")
    if total > CONSULTATIONS_PER_DAY_LIMIT:
        return {"code": "over_150_consultations", "consultations": total,
                "day": day.isoformat(), "limit": CONSULTATIONS_PER_DAY_LIMIT}
    return None


def _add_version(submission_id: str, enrollment_id: int | None, caravan: Caravan,
                 content: dict[str, Any], digest: str, number: int, entered_by_id: int | None,
                 now: dt.datetime) -> tuple[SubmissionVersion, list[dict]]:
    """Store a version with its lines and make it the one that counts (flags computed first)."""
    flags = plausibility_flags(caravan, content)
    volume = _volume_flag(submission_id, enrollment_id, content["day"], content)
    if volume is not None:
        flags.insert(0, volume)
    version = SubmissionVersion(
        submission_id=submission_id, number=number, caravan_id=caravan.id,
        site_id=content.get("site_id"), day=content["day"], specialty_code=content["specialty"],
        content_hash=digest, note=content.get("note"), flags=flags, entered_by_id=entered_by_id,
        created_at=now,
    )
    db.session.add(version)
    db.session.flush()
    lines = canonical_lines(content["lines"])
    db.session.execute(insert(TallyLine.__table__), [
        {"version_id": version.id, "measure_code": line["measure"], "sex": line["sex"],
         "age_band": line["age_band"], "condition": line["condition"], "count": line["count"]}
        for line in lines
    ])
    db.session.execute(
        update(Submission.__table__).where(Submission.__table__.c.id == submission_id)
        .values(current_version_id=version.id, updated_at=now))
    return version, lines


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


def _replay(submission: Submission, digest: str, principal: Principal) -> dict[str, Any]:
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
    return submission_body(submission)


def submit(content: dict[str, Any], principal: Principal, *,
           today: dt.date | None = None) -> tuple[dict[str, Any], bool]:
    """Store a new submission; the same id and content again changes nothing.

    Returns the API body and whether it was created (201) rather than replayed (200).
    """
    submission_id = str(content["id"])
    caravan = _caravan_for(content["caravan_id"])
    _check_write_scope(principal, caravan)
    digest = content_hash(content)
    try:
        _check_content(principal, caravan, content, today)
        enrollment_id = _enrollment_for(principal, caravan, content)
    except DomainError:
        # A phone retrying what was stored before the window closed still gets its answer.
        existing = db.session.get(Submission, submission_id)
        if existing is not None:
            return _replay(existing, digest, principal), False
        raise
    now = utcnow()
    row = {"id": submission_id, "caravan_id": caravan.id, "enrollment_id": enrollment_id,
           "review_status": "received", "review_reason": None, "reviewed_at": None,
           "created_at": now, "updated_at": now}
    if not _insert_ignoring_duplicate(row):
        existing = db.session.get(Submission, submission_id, populate_existing=True)
        return _replay(existing, digest, principal), False
    entered_by_id = principal.user.id if principal.user is not None else None
    version, lines = _add_version(submission_id, enrollment_id, caravan, content, digest, 1,
                                  entered_by_id, now)
    audit("submission.create", object_type="submission", object_id=submission_id,
          region_code=caravan.region_code, principal=principal, caravan_id=caravan.id,
          version=1, day=version.day.isoformat(), specialty=version.specialty_code,
          paper=entered_by_id is not None)
    return _body(SimpleNamespace(**row), version, lines, 1), True


def amend(submission_id: str, content: dict[str, Any], principal: Principal, *,
          today: dt.date | None = None) -> tuple[dict[str, Any], bool]:
    """Make a new version when the content differs; returns the body and whether it changed."""
    submission = db.session.get(Submission, submission_id, with_for_update=True)
    if submission is None:
        raise NotFound(str(_l(
            "No submission has this id; send it first with POST /api/v1/submissions.")))
    if content.get("id") is not None and str(content["id"]) != submission_id:
        message = str(_l("The id in the body must be the id in the address."))
        raise ValidationFailed(message, errors={"id": [message]})
    if principal.role == "volunteer" and not _owns(principal, submission):
        raise NotFound(str(_l("No submission of yours has this id.")))
    caravan = db.session.get(Caravan, submission.caravan_id)
    _check_write_scope(principal, caravan)
    if content["caravan_id"] != submission.caravan_id:
        message = str(_l("A submission stays with its caravan; send a new one for caravan %(id)s.",
                         id=content["caravan_id"]))
        raise ValidationFailed(message, errors={"caravan_id": [message]})
    digest = content_hash(content)
    current = db.session.get(SubmissionVersion, submission.current_version_id)
    if current.content_hash == digest:
        return submission_body(submission), False
    _check_content(principal, caravan, content, today)
    if principal.role != "volunteer" and content.get("enrollment_id") is not None:
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
    return submission_body(submission), True


def review(submission_id: str, decision: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """Approve, flag or reject a submission (a coordinator of its region)."""
    submission = db.session.get(Submission, submission_id, with_for_update=True)
    if submission is None:
        raise NotFound(str(_l("No submission has this id.")))
    caravan = db.session.get(Caravan, submission.caravan_id)
    _check_write_scope(principal, caravan)
    submission.review_status = decision["status"]
    submission.review_reason = (decision.get("reason") or "").strip() or None
    submission.reviewed_by_id = principal.user.id
    submission.reviewed_at = utcnow()
    db.session.flush()
    audit("submission.review", object_type="submission", object_id=submission.id,
          region_code=caravan.region_code, principal=principal, status=decision["status"],
          reason=submission.review_reason)
    return submission_body(submission)


def get_submission(submission_id: str, principal: Principal) -> dict[str, Any]:
    """A submission with all its versions, for its volunteer or a coordinator in scope."""
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(str(_l("No submission has this id.")))
    _check_read(principal, submission)
    return submission_body(submission, with_versions=True)


def list_submissions(principal: Principal, *, caravan_id: int | None = None,
                     day: dt.date | None = None, status: str | None = None,
                     limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Submissions a caller may see, newest first, with their current content."""
    query = select(Submission).join(
        SubmissionVersion, SubmissionVersion.id == Submission.current_version_id)
    if principal.role == "volunteer":
        query = query.where(Submission.enrollment_id.in_(_volunteer_enrollment_ids(principal)))
    elif principal.role != "admin":
        if caravan_id is not None:
            caravan = db.session.get(Caravan, caravan_id)
            if caravan is not None and not principal.in_region(caravan.region_code):
                raise Forbidden(str(_l(
                    "This caravan is in region %(region)s, outside your regions.",
                    region=caravan.region_code)))
        query = query.where(Submission.caravan_id.in_(
            select(Caravan.id).where(Caravan.region_code.in_(principal.region_codes))))
    if caravan_id is not None:
        query = query.where(Submission.caravan_id == caravan_id)
    if day is not None:
        query = query.where(SubmissionVersion.day == day)
    if status is not None:
        query = query.where(Submission.review_status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = list(db.session.scalars(
        query.order_by(Submission.created_at.desc(), Submission.id).limit(limit).offset(offset)))
    ids = [submission.id for submission in page]
    counts = dict(db.session.execute(
        select(SubmissionVersion.submission_id, func.count())
        .where(SubmissionVersion.submission_id.in_(ids))
        .group_by(SubmissionVersion.submission_id)).all())
    current_ids = [submission.current_version_id for submission in page]
    versions = {version.id: version for version in db.session.scalars(
        select(SubmissionVersion).where(SubmissionVersion.id.in_(current_ids)))}
    lines: dict[int, list[dict[str, Any]]] = {version_id: [] for version_id in current_ids}
    for line in db.session.scalars(select(TallyLine).where(TallyLine.version_id.in_(current_ids))):
        lines[line.version_id].append(_line_dict(line))
    items = [
        _body(submission, versions[submission.current_version_id],
              lines[submission.current_version_id], counts[submission.id])
        for submission in page
    ]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def completeness(caravan_id: int, principal: Principal) -> dict[str, Any]:
    """For each day × planned specialty of a caravan: received or missing."""
    caravan = db.session.get(Caravan, caravan_id)
    if caravan is None:
        raise NotFound(str(_l("No caravan has id %(id)s.", id=caravan_id)))
    allowed = (
        principal.in_region(caravan.region_code)
        or (principal.role == "volunteer" and principal.enrollment.caravan_id == caravan.id)
        or (principal.role == "planner" and principal.organization_id is not None
            and principal.organization_id in {org.id for org in caravan.organizers})
    )
    if not allowed:
        raise Forbidden(str(_l(
            "Only the caravan's coordinators, organizers and volunteers see its completeness.")))
    received = {
        (day, specialty): count
        for day, specialty, count in db.session.execute(
            select(SubmissionVersion.day, SubmissionVersion.specialty_code, func.count())
            .join(Submission, Submission.current_version_id == SubmissionVersion.id)
            .where(Submission.caravan_id == caravan.id, Submission.review_status != "rejected")
            .group_by(SubmissionVersion.day, SubmissionVersion.specialty_code))
    }
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
            cells.append({"day": day.isoformat(), "specialty": specialty,
                          "planned": specialty in planned,
                          "status": "received" if count else "missing", "submissions": count})
    return {
        "caravan_id": caravan.id,
        "days": [day.isoformat() for day in days],
        "specialties": planned,
        "cells": cells,
        "received": sum(1 for cell in cells if cell["planned"] and cell["status"] == "received"),
        "missing": sum(1 for cell in cells if cell["status"] == "missing"),
    }
