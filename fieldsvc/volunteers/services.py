"""Recognition of those who contribute: contributions and certificates.

The privacy rule of contributions (docs/privacy.md, "Contributions"): caravans, days, communes
reached and specialties brought are caravan metadata and are shown to everyone. Consultations and
procedures are health tallies; they are given only to a caller with full detail for the row —
an admin for every row, a planner for the rows of their own organization (and the partnerships
it belongs to), exactly as the summary gives them full detail for ``organization=<their own>``
(a coordinator's organization does not: outside their regions a coordinator has no full detail).
Everyone else gets ``null`` with ``"suppressed": "full_detail_only"``: organization, partnership
and volunteer rows overlap (a caravan counts under each organizer, a partnership is a subset of
each member's caravans), so thresholding each row at k would still let differences of published
rows reveal a small count. A per-volunteer tally is finer still (one doctor over one caravan), so
volunteers' consultations and procedures are for admins only.
Volunteers are named to admins and coordinators; to everyone else only those who consented to be
named publicly are listed at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, func, select

from fieldsvc.accounts.models import Organization
from fieldsvc.accounts.services import audit
from fieldsvc.caravans import services as caravans
from fieldsvc.caravans.models import Caravan, Enrollment, Volunteer
from fieldsvc.errors import Conflict, NotFound, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.insights import suppression
from fieldsvc.insights.queries import SummaryQuery, counted_lines, summary_rows
from fieldsvc.security import Principal, token_digest
from fieldsvc.volunteers.models import Pledge

CONTRIBUTION_KINDS = ("organization", "partnership", "volunteer")
COUNTED_MEASURES = ("consultations", "procedures")
# A caravan contributes once it has started.
HELD_STATUSES = ("active", "closed")
SUPPRESSED = "full_detail_only"


@dataclass
class ContributionQuery:
    by: str = "organization"
    year: int | None = None


@dataclass
class Contribution:
    """One contributor's record: an organization, a partnership or a volunteer."""

    kind: str
    key: str
    name: str | None
    name_ar: str | None = None
    organizations: list[Organization] = field(default_factory=list)
    volunteer_id: int | None = None
    specialty: str | None = None
    caravan_ids: list[int] = field(default_factory=list)
    days: int = 0
    communes: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    consultations: int | None = None
    procedures: int | None = None
    full_detail: bool = False
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    # A partnership's history: the caravans its members held together, oldest first.
    history: list[Caravan] = field(default_factory=list)

    @property
    def caravans(self) -> int:
        return len(self.caravan_ids)

    @property
    def communes_reached(self) -> int:
        return len(self.communes)

    @property
    def suppressed(self) -> str | None:
        return None if self.full_detail else SUPPRESSED


@dataclass
class Contributions:
    by: str
    year: int | None
    rows: list[Contribution]

    @property
    def row_count(self) -> int:
        return len(self.rows)


def held_caravans(year: int | None = None) -> list[Caravan]:
    """The caravans that have started (their first day in ``year`` when given), oldest first."""
    query = select(Caravan).where(Caravan.status.in_(HELD_STATUSES))
    if year is not None:
        query = query.where(Caravan.first_day >= dt.date(year, 1, 1),
                            Caravan.first_day <= dt.date(year, 12, 31))
    return list(db.session.scalars(query.order_by(Caravan.first_day, Caravan.id)))


def caravan_days(caravan: Caravan) -> int:
    return (caravan.last_day - caravan.first_day).days + 1


def _caravan_counts() -> dict[tuple[int, str], int]:
    """Consultations and procedures per caravan, by the summary's own query (so they agree)."""
    rows = summary_rows(SummaryQuery(by=["caravan", "measure"], measures=list(COUNTED_MEASURES)))
    return {(row["caravan"], row["measure"]): row["count"] for row in rows}


def _volunteer_counts(caravan_ids: list[int]) -> dict[tuple[int, str], int]:
    """Consultations and procedures per volunteer profile, from their devices' submissions."""
    from fieldsvc.tallies.models import Submission

    lines = counted_lines()
    rows = db.session.execute(
        select(Enrollment.volunteer_id, lines.c.measure_code, func.sum(lines.c.count))
        .select_from(lines)
        .join(Submission, Submission.id == lines.c.submission_id)
        .join(Enrollment, Enrollment.id == Submission.enrollment_id)
        .where(Enrollment.volunteer_id.is_not(None),
               lines.c.measure_code.in_(COUNTED_MEASURES),
               lines.c.caravan_id.in_(caravan_ids))
        .group_by(Enrollment.volunteer_id, lines.c.measure_code))
    return {(volunteer, measure): int(total or 0) for volunteer, measure, total in rows}


def _fill(row: Contribution, caravans: list[Caravan]) -> None:
    communes: set[str] = set()
    specialties: set[str] = set()
    for caravan in caravans:
        communes.add(caravan.commune_code)
        communes.update(site.commune_code for site in caravan.sites)
        specialties.update(caravan.specialties)
    row.caravan_ids = [caravan.id for caravan in caravans]
    row.days = sum(caravan_days(caravan) for caravan in caravans)
    row.communes = sorted(communes)
    row.specialties = sorted(specialties)
    if caravans:
        row.first_day = min(c.first_day for c in caravans)
        row.last_day = max(c.last_day for c in caravans)


def _tallies(row: Contribution, counts: dict[tuple[int, str], int], ids: list[int]) -> None:
    row.consultations = sum(counts.get((i, "consultations"), 0) for i in ids)
    row.procedures = sum(counts.get((i, "procedures"), 0) for i in ids)


def names_volunteers(principal: Principal) -> bool:
    """Whether the caller sees every volunteer's name (else only those who consented)."""
    return principal.role in ("admin", "coordinator")


def contributions(query: ContributionQuery, principal: Principal) -> Contributions:
    """Caravans, days, communes reached and (with full detail) tallies per contributor."""
    caravans = held_caravans(query.year)
    if query.by == "volunteer":
        rows = _volunteer_rows(caravans, principal)
    else:
        rows = _organization_rows(caravans, principal, query.by == "partnership")
    rows.sort(key=lambda r: (-r.caravans, -r.days, (r.name or "").lower(), r.key))
    return Contributions(query.by, query.year, rows)


def _organization_rows(caravans: list[Caravan], principal: Principal,
                       partnerships: bool) -> list[Contribution]:
    groups: dict[tuple[int, ...], list[Caravan]] = defaultdict(list)
    for caravan in caravans:
        members = tuple(sorted(org.id for org in caravan.organizers))
        if partnerships:
            if len(members) > 1:
                groups[members].append(caravan)
        else:
            for member in members:
                groups[(member,)].append(caravan)
    organizations = {org.id: org for caravan in caravans for org in caravan.organizers}
    counts = _caravan_counts() if groups else {}
    rows = []
    for members, held in groups.items():
        orgs = sorted((organizations[i] for i in members), key=lambda o: o.name.lower())
        row = Contribution(
            kind="partnership" if partnerships else "organization",
            key="-".join(map(str, members)),
            name=" + ".join(org.name for org in orgs),
            name_ar=" + ".join(org.name_ar or org.name for org in orgs),
            organizations=orgs,
        )
        _fill(row, held)
        if partnerships:
            row.history = held
        # The summary's own rule for organization=<id> (a planner of a member, or an admin):
        # a coordinator's organization gives no full detail outside their regions there.
        row.full_detail = any(suppression.full_detail(principal, organization_id=member)
                              for member in members)
        if row.full_detail:
            _tallies(row, counts, row.caravan_ids)
        rows.append(row)
    return rows


def _volunteer_rows(caravans: list[Caravan], principal: Principal) -> list[Contribution]:
    by_id = {caravan.id: caravan for caravan in caravans}
    if not by_id:
        return []
    pairs = db.session.execute(
        select(Enrollment.volunteer_id, Enrollment.caravan_id)
        .where(Enrollment.volunteer_id.is_not(None), Enrollment.caravan_id.in_(by_id))
        .distinct())
    held: dict[int, list[Caravan]] = defaultdict(list)
    for volunteer_id, caravan_id in pairs:
        held[volunteer_id].append(by_id[caravan_id])
    query = select(Volunteer).where(Volunteer.id.in_(held))
    if not names_volunteers(principal):
        query = query.where(Volunteer.public_consent.is_(True))
    full = principal.role == "admin"
    counts = _volunteer_counts(list(by_id)) if full else {}
    rows = []
    for volunteer in db.session.scalars(query):
        row = Contribution(kind="volunteer", key=str(volunteer.id), name=volunteer.display_name,
                           volunteer_id=volunteer.id, specialty=volunteer.specialty_code,
                           full_detail=full)
        _fill(row, sorted(held[volunteer.id], key=lambda c: (c.first_day, c.id)))
        if full:
            row.consultations = counts.get((volunteer.id, "consultations"), 0)
            row.procedures = counts.get((volunteer.id, "procedures"), 0)
        rows.append(row)
    return rows


# --- certificates of recognition --------------------------------------------------------------
#
# A certificate needs no table: its code is the volunteer, the caravan or year, and a keyed MAC of
# both (HMAC-SHA-256 with the SECRET_KEY, 8 base-32 characters), so that a forged or altered code
# fails verification. Rotating SECRET_KEY invalidates every printed code.

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MAC_LENGTH = 8
_CODE = re.compile(rf"^V?(\d{{1,9}})-([CY])(\d{{1,9}})-([A-Z0-9]{{{MAC_LENGTH}}})$")


@dataclass
class Certificate:
    """A volunteer's participation in one caravan or in one year's caravans."""

    volunteer: Volunteer
    scope: str  # caravan or year
    caravans: list[Caravan]
    year: int | None = None
    code: str = ""

    @property
    def caravan(self) -> Caravan | None:
        return self.caravans[0] if self.scope == "caravan" else None

    @property
    def organizers(self) -> list[Organization]:
        seen: dict[int, Organization] = {}
        for caravan in self.caravans:
            for org in caravan.organizers:
                seen.setdefault(org.id, org)
        return sorted(seen.values(), key=lambda org: org.name.lower())

    @property
    def days(self) -> int:
        return sum(caravan_days(caravan) for caravan in self.caravans)

    @property
    def may_name_publicly(self) -> bool:
        return self.volunteer.public_consent


def _mac(volunteer_id: int, scope: str, subject: int) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    digest = hmac.new(key, f"certificate:{volunteer_id}:{scope}:{subject}".encode(),
                      hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _position in range(MAC_LENGTH):
        number, index = divmod(number, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[index])
    return "".join(chars)


def certificate_code(volunteer_id: int, scope: str, subject: int) -> str:
    """The short code printed on a certificate, e.g. ``12-C34-K7QX4MZP``."""
    letter = "C" if scope == "caravan" else "Y"
    return f"{volunteer_id}-{letter}{subject}-{_mac(volunteer_id, scope, subject)}"


def _volunteer(volunteer_id: int) -> Volunteer:
    volunteer = db.session.get(Volunteer, volunteer_id)
    if volunteer is None:
        raise NotFound(_("No volunteer profile has id %(id)s.", id=volunteer_id))
    return volunteer


def _held_caravans_of(volunteer_id: int) -> Select[tuple[Caravan]]:
    return (select(Caravan).join(Enrollment, Enrollment.caravan_id == Caravan.id)
            .where(Enrollment.volunteer_id == volunteer_id,
                   Caravan.status.in_(HELD_STATUSES))
            .distinct().order_by(Caravan.first_day, Caravan.id))


def certificate(volunteer_id: int, scope: str, subject: int) -> Certificate:
    """A volunteer's certificate for a caravan they joined, or a year they served in."""
    if scope == "year" and not 2000 <= subject <= 2100:
        raise NotFound(_("This volunteer took part in no caravan held in %(year)s.",
                         year=subject))
    volunteer = _volunteer(volunteer_id)
    query = _held_caravans_of(volunteer_id)
    if scope == "caravan":
        query = query.where(Caravan.id == subject)
    else:
        query = query.where(Caravan.first_day >= dt.date(subject, 1, 1),
                            Caravan.first_day <= dt.date(subject, 12, 31))
    caravans = list(db.session.scalars(query))
    if not caravans:
        raise NotFound(
            _("This volunteer took part in no caravan held in %(year)s.", year=subject)
            if scope == "year" else
            _("This volunteer did not take part in caravan %(id)s, or it has not started.",
              id=subject))
    return Certificate(volunteer, scope, caravans, subject if scope == "year" else None,
                       certificate_code(volunteer_id, scope, subject))


def certificates_of(volunteer_id: int) -> list[Certificate]:
    """Every certificate a volunteer can print: one per caravan held, one per year."""
    volunteer = _volunteer(volunteer_id)
    caravans = list(db.session.scalars(_held_caravans_of(volunteer_id)))
    result = [Certificate(volunteer, "caravan", [c], None,
                          certificate_code(volunteer.id, "caravan", c.id)) for c in caravans]
    for year in sorted({c.first_day.year for c in caravans}):
        held = [c for c in caravans if c.first_day.year == year]
        result.append(Certificate(volunteer, "year", held, year,
                                  certificate_code(volunteer.id, "year", year)))
    return result


def verify_certificate(code: str) -> Certificate:
    """The certificate a code stands for; a forged, altered or unknown code is refused."""
    match = _CODE.match(code.strip().upper().replace(" ", ""))
    refused = NotFound(_("This verification code matches no certificate; check it against the "
                         "printed certificate."), errors={"code": [_("unknown or altered code")]})
    if match is None:
        raise refused
    volunteer_id, letter, subject, mac = (int(match[1]), match[2], int(match[3]), match[4])
    scope = "caravan" if letter == "C" else "year"
    if not hmac.compare_digest(mac, _mac(volunteer_id, scope, subject)):
        raise refused
    try:
        return certificate(volunteer_id, scope, subject)
    except NotFound:
        raise refused from None


# --- coordination: pledges --------------------------------------------------------------------


@dataclass
class PledgeInput:
    join_code: str
    display_name: str
    specialty: str
    profile_key: str | None = None


@dataclass
class Pledged:
    """A new pledge with its key, shown once: it becomes the device token when the caravan starts."""

    pledge: Pledge
    token: str


@dataclass
class SpecialtyStaffing:
    specialty: str
    pledged: int
    enrolled: int

    @property
    def gap(self) -> bool:
        return self.pledged + self.enrolled == 0


@dataclass
class Staffing:
    """The specialties a caravan plans against the doctors who pledged or enrolled for them."""

    caravan: Caravan
    specialties: list[SpecialtyStaffing]
    pledges: list[Pledge]

    @property
    def gaps(self) -> list[str]:
        return [row.specialty for row in self.specialties if row.gap]

    @property
    def pledge_url(self) -> str:
        """The link to share with doctors: the caravan's join code opens its pledge page."""
        base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
        return f"{base}/pledge/{caravans.display_join_code(self.caravan.join_code)}"


def pledge(data: PledgeInput, client: str) -> Pledged:
    """Record a doctor's pledge to bring a specialty the caravan plans, before it starts."""
    caravan = caravans.caravan_by_join_code(data.join_code, client)
    if caravan.status != "planned":
        raise Conflict(_("This caravan has already started; join it with its code instead."),
                       errors={"join_code": [_("the caravan has started")]})
    if data.specialty not in caravan.specialties:
        planned = ", ".join(caravan.specialties)
        raise ValidationFailed(
            _("This caravan plans %(planned)s; pledge for one of them.", planned=planned),
            errors={"specialty": [_("Must be one of: %(choices)s.", choices=planned)]})
    name = data.display_name.strip()
    if not name:
        raise ValidationFailed(_("The name cannot be empty."),
                               errors={"display_name": [_("The name cannot be empty.")]})
    volunteer = None
    if data.profile_key:
        volunteer = db.session.scalar(
            select(Volunteer).where(Volunteer.profile_key_hash == token_digest(data.profile_key)))
        if volunteer is None:
            raise ValidationFailed(
                _("This profile key is not known; pledge without it."),
                errors={"profile_key": [_("unknown profile key")]})
    token = secrets.token_urlsafe(32)
    record = Pledge(caravan_id=caravan.id, specialty_code=data.specialty, display_name=name,
                    volunteer_id=volunteer.id if volunteer else None,
                    token_hash=token_digest(token))
    db.session.add(record)
    db.session.flush()
    audit("pledge.create", object_type="pledge", object_id=record.id,
          region_code=caravan.region_code, caravan_id=caravan.id, specialty=data.specialty)
    return Pledged(record, token)


def staffing(caravan: Caravan, principal: Principal) -> Staffing:
    """What a caravan's plan needs against who pledged and enrolled, specialty by specialty."""
    caravans.require_scope(caravan, principal)
    return staffing_of(caravan)


def staffing_of(caravan: Caravan) -> Staffing:
    """The staffing of a caravan, for its coordinators and (counts only) its pledge page."""
    pledges = list(db.session.scalars(
        select(Pledge).where(Pledge.caravan_id == caravan.id)
        .order_by(Pledge.specialty_code, Pledge.created_at, Pledge.id)))
    pledged: dict[str, int] = defaultdict(int)
    for item in pledges:
        if item.enrollment_id is None:
            pledged[item.specialty_code] += 1
    enrolled = dict(db.session.execute(
        select(Enrollment.specialty_code, func.count())
        .where(Enrollment.caravan_id == caravan.id, Enrollment.revoked_at.is_(None))
        .group_by(Enrollment.specialty_code)).all())
    rows = [SpecialtyStaffing(code, pledged.get(code, 0), enrolled.get(code, 0))
            for code in caravan.specialties]
    return Staffing(caravan, rows, pledges)


def enroll_pledges(caravan: Caravan, old: str, new: str, principal: Principal) -> None:
    """When a caravan starts, turn each of its pledges into an enrollment with the pledge's key."""
    if not (old == "planned" and new == "active"):
        return
    pending = list(db.session.scalars(
        select(Pledge).where(Pledge.caravan_id == caravan.id, Pledge.enrollment_id.is_(None))
        .order_by(Pledge.id)))
    for item in pending:
        enrollment = Enrollment(caravan_id=caravan.id, volunteer_id=item.volunteer_id,
                                display_name=item.display_name,
                                specialty_code=item.specialty_code, token_hash=item.token_hash)
        db.session.add(enrollment)
        db.session.flush()
        item.enrollment_id = enrollment.id
        audit("enrollment.create", object_type="enrollment", object_id=enrollment.id,
              region_code=caravan.region_code, principal=principal, caravan_id=caravan.id,
              volunteer_id=item.volunteer_id, pledge_id=item.id)
    db.session.flush()


# --- a volunteer's own record -------------------------------------------------------------------
#
# What the phone shows a volunteer about themself: the caravans they joined, their days, their own
# tallies in full (they are theirs: only their devices' submissions are counted), their
# certificates and their consent. Erasing the profile keeps the tallies, unattributed.

ERASED_NAME = "—"


@dataclass
class CaravanServed:
    caravan: Caravan
    consultations: int = 0
    procedures: int = 0

    @property
    def days(self) -> int:
        return caravan_days(self.caravan)


@dataclass
class VolunteerRecord:
    volunteer: Volunteer
    caravans: list[CaravanServed]
    certificates: list[Certificate]

    @property
    def days(self) -> int:
        return sum(item.days for item in self.caravans)

    @property
    def consultations(self) -> int:
        return sum(item.consultations for item in self.caravans)

    @property
    def procedures(self) -> int:
        return sum(item.procedures for item in self.caravans)


def _own_volunteer(principal: Principal) -> Volunteer:
    volunteer = principal.enrollment.volunteer if principal.enrollment is not None else None
    if volunteer is None:
        raise NotFound(_("This device has no volunteer profile (it joined without one, or the "
                         "profile was erased)."))
    return volunteer


def _own_counts(volunteer_id: int) -> dict[tuple[int, str], int]:
    """Consultations and procedures per caravan, from this volunteer's devices only."""
    from fieldsvc.tallies.models import Submission

    lines = counted_lines()
    rows = db.session.execute(
        select(lines.c.caravan_id, lines.c.measure_code, func.sum(lines.c.count))
        .select_from(lines)
        .join(Submission, Submission.id == lines.c.submission_id)
        .join(Enrollment, Enrollment.id == Submission.enrollment_id)
        .where(Enrollment.volunteer_id == volunteer_id,
               lines.c.measure_code.in_(COUNTED_MEASURES))
        .group_by(lines.c.caravan_id, lines.c.measure_code))
    return {(caravan, measure): int(total or 0) for caravan, measure, total in rows}


def my_record(principal: Principal) -> VolunteerRecord:
    """The calling device's volunteer: caravans joined, days, own tallies and certificates."""
    volunteer = _own_volunteer(principal)
    joined = db.session.scalars(
        select(Caravan).join(Enrollment, Enrollment.caravan_id == Caravan.id)
        .where(Enrollment.volunteer_id == volunteer.id)
        .distinct().order_by(Caravan.first_day, Caravan.id))
    counts = _own_counts(volunteer.id)
    served = [CaravanServed(caravan, counts.get((caravan.id, "consultations"), 0),
                            counts.get((caravan.id, "procedures"), 0)) for caravan in joined]
    return VolunteerRecord(volunteer, served, certificates_of(volunteer.id))


def erase_my_profile(principal: Principal) -> None:
    """Erase the calling device's volunteer profile: every enrollment and pledge that pointed to
    it loses the link and the name, the profile row goes; the tallies stay, unattributed."""
    volunteer = _own_volunteer(principal)
    enrollments = list(db.session.scalars(
        select(Enrollment).where(Enrollment.volunteer_id == volunteer.id)))
    for enrollment in enrollments:
        enrollment.volunteer_id = None
        enrollment.display_name = ERASED_NAME
    for item in db.session.scalars(select(Pledge).where(Pledge.volunteer_id == volunteer.id)):
        item.volunteer_id = None
        item.display_name = ERASED_NAME
    volunteer_id = volunteer.id
    db.session.flush()
    db.session.delete(volunteer)
    db.session.flush()
    db.session.expire(principal.enrollment, ["volunteer"])
    audit("volunteer.erase", object_type="volunteer", object_id=volunteer_id,
          region_code=principal.enrollment.caravan.region_code, principal=principal,
          enrollments=len(enrollments))
