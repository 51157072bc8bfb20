"""What caravans do: create, run and close them; enroll volunteers' devices."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask_babel import gettext as _
from geopy.distance import geodesic
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError

from fieldsvc.accounts.models import Organization
from fieldsvc.accounts.services import audit
from fieldsvc.areas.models import Area
from fieldsvc.areas.points import MOROCCO_LAT, MOROCCO_LON, in_morocco, parse_point
from fieldsvc.caravans.clashes import Clash, clash_warnings
from fieldsvc.caravans.models import (
    MAX_CARAVAN_DAYS,
    Caravan,
    CaravanSpecialty,
    Enrollment,
    EnrollmentFailure,
    Site,
    Volunteer,
)
from fieldsvc.catalog.services import specialty_codes
from fieldsvc.db import utcnow
from fieldsvc.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from fieldsvc.extensions import db
from fieldsvc.pagination import DEFAULT_LIMIT, Page, paginate
from fieldsvc.security import VOLUNTEER, Principal, token_digest

# Morocco's bounding box, Western Sahara included (HCP's 12 regions reach down to Lagouira, 20.8°N);
# deliberately a little generous so that a border village is never refused.
MAX_KM_FROM_COMMUNE = 50.0

# No 0/O, 1/I/L: a code read aloud over a bad line or copied from a poster stays unambiguous.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8

# Guessing join codes: at most this many failures per client address per window.
MAX_FAILED_ENROLLMENTS = 10
FAILURE_WINDOW = dt.timedelta(minutes=10)

STATUS_ORDER = {"planned": 0, "active": 1, "closed": 2}


# --- what callers send and get back ---------------------------------------------------------


@dataclass
class SiteInput:
    name: str
    location: str  # as typed: decimal "lat, lon" or degrees-minutes-seconds text


@dataclass
class CaravanInput:
    title: str
    commune: str
    first_day: dt.date
    last_day: dt.date
    specialties: list[str]
    organizers: list[int]
    sites: list[SiteInput]


@dataclass
class CaravanChanges:
    """A PATCH of a caravan: only the fields in ``sent`` change."""

    sent: frozenset[str]
    title: str | None = None
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    specialties: list[str] | None = None
    sites: list[SiteInput] | None = None
    status: str | None = None
    organizers: list[int] | None = None


@dataclass
class CaravanFilter:
    status: str | None = None
    region: str | None = None
    commune: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass
class CaravanView:
    """A caravan as one caller may see it: the join code only for those who run it."""

    caravan: Caravan
    join_code: str | None = None
    join_url: str | None = None
    warnings: list[str] | None = None
    clashes: list[Clash] | None = None  # other caravans too close in km and days


@dataclass
class EnrollmentInput:
    join_code: str
    display_name: str
    specialty: str | None = None
    profile_key: str | None = None
    create_profile: bool = False
    public_consent: bool = False


@dataclass
class Enrolled:
    """A new device enrollment with its token (and a new profile's key), shown once."""

    enrollment: Enrollment
    token: str
    profile_key: str | None = None


@dataclass
class DeviceStatus:
    enrollment: Enrollment
    live: bool  # whether its token still works


@dataclass
class ProfileChanges:
    """A volunteer's profile fields; only those in ``sent`` were given."""

    sent: frozenset[str]
    display_name: str | None = None
    specialty: str | None = None
    public_consent: bool = False


@dataclass
class VolunteerProfile:
    volunteer: Volunteer
    caravans: list[Caravan]
    profile_key: str | None = None  # only when the profile was just created


# --- the late-sync window -------------------------------------------------------------------


def morocco_today() -> dt.date:
    """Today's date in Morocco, where caravan days are counted."""
    try:
        from zoneinfo import ZoneInfo

        return dt.datetime.now(ZoneInfo("Africa/Casablanca")).date()
    except Exception:  # noqa: BLE001 - no time zone database: Morocco is UTC+1 most of the year
        return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).date()


@dataclass(frozen=True)
class CaravanDates:
    """The columns of a caravan that a device's every request needs, read with its token."""

    id: int
    region_code: str
    first_day: dt.date
    last_day: dt.date
    closed_at: dt.datetime | None


def _counts_from_closing(caravan: Caravan | CaravanDates) -> bool:
    # A caravan closed early still takes its last day's tallies: the window starts at the later.
    return caravan.closed_at is not None and caravan.closed_at.date() >= caravan.last_day


def sync_deadline(caravan: Caravan | CaravanDates) -> dt.date:
    """Return the last day phones may send tallies for a caravan and its device tokens work."""
    start = caravan.closed_at.date() if _counts_from_closing(caravan) else caravan.last_day
    return start + dt.timedelta(days=current_app.config["LATE_SYNC_DAYS"])


def late_sync_message(caravan: Caravan | CaravanDates) -> str:
    """Say until when a caravan's tallies were accepted, and counted from what."""
    until, days = sync_deadline(caravan).isoformat(), current_app.config["LATE_SYNC_DAYS"]
    if _counts_from_closing(caravan):
        return _("This caravan's tallies were accepted until %(until)s (%(days)s days after it "
                 "closed); ask your coordinator to enter this sheet.", until=until, days=days)
    return _("This caravan's tallies were accepted until %(until)s (%(days)s days after its "
             "last day); ask your coordinator to enter this sheet.", until=until, days=days)


def enrollment_is_live(revoked_at: dt.datetime | None, caravan: Caravan | CaravanDates,
                       today: dt.date) -> bool:
    """Whether a device token works: not revoked, and within its caravan's late-sync window."""
    return revoked_at is None and today <= sync_deadline(caravan)


class DevicePrincipal(Principal):
    """A volunteer's device, read with one Core statement (the hot path of every tally).

    ``caravan`` is a snapshot of the caravan's dates; the ORM ``enrollment`` (with its
    relationships) is loaded on first use, for the routes that need more than the ids.
    """

    def __init__(self, enrollment_id: int, caravan: CaravanDates) -> None:
        self.role = VOLUNTEER
        self.user = None
        self.region_codes = []
        self.organization_id = None
        self._enrollment_id = enrollment_id
        self.caravan = caravan
        self._enrollment: Enrollment | None = None

    @property  # type: ignore[override]
    def enrollment(self) -> Enrollment | None:
        if self._enrollment is None:
            self._enrollment = db.session.get(Enrollment, self._enrollment_id)
        return self._enrollment

    @property
    def enrollment_id(self) -> int:
        return self._enrollment_id

    @property
    def enrollment_caravan_id(self) -> int:
        return self.caravan.id

    @property
    def actor_id(self) -> str:
        return f"enrollment:{self._enrollment_id}"

    def __repr__(self) -> str:
        return f"DevicePrincipal(enrollment_id={self._enrollment_id}, caravan_id={self.caravan.id})"


_DEVICE_BY_TOKEN: list[Any] = []


def _device_by_token() -> Any:
    """The SELECT of an enrollment and its caravan's dates by token digest, built once (building
    costs more than running it): devices far outnumber staff, so it runs first on every token."""
    if not _DEVICE_BY_TOKEN:
        enrollment, caravan = Enrollment.__table__.c, Caravan.__table__.c
        _DEVICE_BY_TOKEN.append(
            select(enrollment.id, enrollment.revoked_at, caravan.id, caravan.region_code,
                   caravan.first_day, caravan.last_day, caravan.closed_at)
            .join_from(Enrollment.__table__, Caravan.__table__,
                       caravan.id == enrollment.caravan_id)
            .where(enrollment.token_hash == bindparam("digest")))
    return _DEVICE_BY_TOKEN[0]


def device_principal(digest: str) -> DevicePrincipal | None:
    """The device a bearer token's digest belongs to; None when it is no device's token."""
    row = db.session.connection().execute(_device_by_token(), {"digest": digest}).first()
    if row is None:
        return None
    principal = live_device(tuple(row))
    if principal is None:
        raise Unauthorized(
            _("This device token was revoked or has expired; join the caravan again with its "
              "code."))
    return principal


def device_by_token_sql(dialect: Any) -> str:
    """The token's SELECT (``%(digest)s``) as the driver runs it, for a caller with a raw
    connection (tallies.lean); its row goes to :func:`live_device`."""
    return str(_device_by_token().compile(dialect=dialect))


def live_device(row: tuple) -> DevicePrincipal | None:
    """The device of a row of the token's SELECT, or None when its token no longer works."""
    enrollment_id, revoked_at, *dates = row
    caravan = CaravanDates(*dates)
    if not enrollment_is_live(revoked_at, caravan, morocco_today()):
        return None
    return DevicePrincipal(enrollment_id, caravan)


@dataclass
class CheckedSite:
    name: str
    lat: float
    lon: float
    km: float | None


def check_sites(
    sites: list[SiteInput], commune: Area, field: str = "sites"
) -> list[CheckedSite]:
    """Read every site's point and refuse the request if one is unreadable or implausible."""
    checked: list[CheckedSite] = []
    errors: dict[str, list[str]] = {}
    first_understood: dict[str, Any] | None = None
    for index, site in enumerate(sites):
        key = f"{field}[{index}].location"
        point = parse_point(site.location)
        if point is None:
            errors[key] = [_(
                "Could not read %(text)s as a point; write \"30.33, -5.84\" (latitude, "
                "longitude) or 30°19'48\"N 5°50'24\"W.", text=repr(site.location))]
            continue
        lat, lon = point
        understood = {"site": index, "text": site.location, "lat": lat, "lon": lon}
        if not in_morocco(lat, lon):
            errors[key] = [_(
                "Read as latitude %(lat)s, longitude %(lon)s, which is outside Morocco "
                "(latitude %(south)s to %(north)s, longitude %(west)s to %(east)s). Check the "
                "order (latitude first) and the N/S, E/W letters.", lat=lat, lon=lon,
                south=MOROCCO_LAT[0], north=MOROCCO_LAT[1], west=MOROCCO_LON[0],
                east=MOROCCO_LON[1])]
            first_understood = first_understood or understood
            continue
        km = None
        if commune.lat is not None and commune.lon is not None:
            km = round(geodesic((lat, lon), (commune.lat, commune.lon)).km, 1)
            if km > MAX_KM_FROM_COMMUNE:
                errors[key] = [_(
                    "Read as latitude %(lat)s, longitude %(lon)s, which is %(km)s km from "
                    "%(commune)s (at most %(limit)s km).", lat=lat, lon=lon, km=km,
                    commune=commune.name_fr, limit=format(MAX_KM_FROM_COMMUNE, "g"))]
                first_understood = first_understood or {**understood, "km_from_commune": km}
                continue
        checked.append(CheckedSite(site.name.strip(), lat, lon, km))
    if errors:
        extra: dict[str, Any] = {}
        if first_understood is not None:
            extra["understood"] = first_understood
        raise ValidationFailed(
            _("A site's location is not plausible: %(reasons)s", reasons=" ".join(
                message for messages in errors.values() for message in messages)),
            errors=errors,
            **extra,
        )
    return checked


def _add_sites(caravan: Caravan, sites: list[CheckedSite]) -> None:
    for site in sites:
        db.session.add(Site(caravan_id=caravan.id, name=site.name,
                            commune_code=caravan.commune_code, lat=site.lat, lon=site.lon))


# --- join codes -----------------------------------------------------------------------------


def new_join_code() -> str:
    """A fresh, unused join code (stored without separators)."""
    while True:
        code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))
        if db.session.scalar(select(Caravan.id).where(Caravan.join_code == code)) is None:
            return code


def normalise_join_code(text: str) -> str:
    return re.sub(r"[\s\-_.]", "", text).upper()


def display_join_code(code: str) -> str:
    """Group an 8-character code as ABCD-EFGH for people to read."""
    if len(code) == JOIN_CODE_LENGTH:
        return f"{code[:4]}-{code[4:]}"
    return code


def join_url(caravan: Caravan) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}/join/{display_join_code(caravan.join_code)}"


def rotate_join_code(caravan: Caravan, principal: Principal) -> Caravan:
    """Give a caravan a new join code; devices already enrolled keep working."""
    require_scope(caravan, principal)
    caravan.join_code = new_join_code()
    db.session.flush()
    audit("caravan.rotate_join_code", object_type="caravan", object_id=caravan.id,
          region_code=caravan.region_code, principal=principal)
    return caravan


# --- caravans -------------------------------------------------------------------------------


def require_scope(caravan: Caravan, principal: Principal) -> None:
    """Refuse a write to a caravan outside the caller's regions (the one scope check)."""
    if not principal.in_region(caravan.region_code):
        raise Forbidden(_("Caravan %(id)s is in region %(region)s, outside your regions.",
                          id=caravan.id, region=caravan.region_code))


def get_caravan(caravan_id: int) -> Caravan:
    caravan = db.session.get(Caravan, caravan_id)
    if caravan is None:
        raise NotFound(_("No caravan has id %(id)s.", id=caravan_id))
    return caravan


def caravan_for_reader(caravan_id: int, principal: Principal) -> Caravan:
    """A caravan the caller may read: staff any, a volunteer only their own."""
    caravan = get_caravan(caravan_id)
    if principal.role == VOLUNTEER and principal.enrollment.caravan_id != caravan.id:
        raise Forbidden(_("A device token only opens its own caravan."))
    return caravan


def _commune(code: str) -> Area:
    area = db.session.get(Area, code)
    if area is None or area.level != "commune":
        raise ValidationFailed(_("No commune has the HCP code %(code)s.", code=code),
                               errors={"commune": [_("unknown commune %(code)s", code=code)]})
    return area


def _check_specialties(codes: list[str]) -> list[str]:
    wanted = sorted(set(codes))
    unknown = [code for code in wanted if code not in specialty_codes()]
    if unknown:
        raise ValidationFailed(
            _("Unknown specialties: %(codes)s; see GET /api/v1/catalog.", codes=", ".join(unknown)),
            errors={"specialties": [_("unknown specialty %(code)s", code=code)
                                    for code in unknown]},
        )
    return wanted


def _organizations(ids: list[int], principal: Principal) -> list[Organization]:
    wanted = sorted(set(ids))
    if not wanted and principal.organization_id is not None:
        wanted = [principal.organization_id]
    found = list(db.session.scalars(select(Organization).where(Organization.id.in_(wanted))))
    missing = sorted(set(wanted) - {org.id for org in found})
    if missing:
        raise ValidationFailed(
            _("Unknown organizations: %(ids)s.", ids=", ".join(map(str, missing))),
            errors={"organizers": [_("unknown organization %(id)s", id=i) for i in missing]},
        )
    return found


def _no_point_warning(commune: Area) -> list[str]:
    if commune.lat is None or commune.lon is None:
        return [_("The commune %(code)s (%(name)s) has no known point yet, so sites were "
                  "checked against Morocco's borders only, not against the 50 km distance.",
                  code=commune.code, name=commune.name_fr)]
    return []


def _past_warning(last_day: dt.date) -> list[str]:
    if last_day < morocco_today():
        return [_("This caravan ended on %(last)s, in the past: check its days. Phones can only "
                  "send tallies within %(days)s days of its last day.", last=last_day.isoformat(),
                  days=current_app.config["LATE_SYNC_DAYS"])]
    return []


def _no_organizer_warning(organizers: list[Organization]) -> list[str]:
    if not organizers:
        return [_("This caravan has no organizer: no association's planner sees it in full "
                  "detail. Add its organizers (organizers: organization ids).")]
    return []


def create_caravan(data: CaravanInput, principal: Principal) -> CaravanView:
    """Create a planned caravan in a commune within the caller's regions; say what to check."""
    commune = _commune(data.commune)
    if not principal.in_region(commune.region_code):
        raise Forbidden(_("%(name)s is in region %(region)s, outside your regions.",
                          name=commune.name_fr, region=commune.region_code))
    specialties = _check_specialties(data.specialties)
    organizers = _organizations(data.organizers, principal)
    sites = check_sites(data.sites, commune)
    caravan = Caravan(
        title=data.title.strip(),
        commune_code=commune.code,
        region_code=commune.region_code,
        first_day=data.first_day,
        last_day=data.last_day,
        status="planned",
        join_code=new_join_code(),
        created_by_id=principal.user.id if principal.user is not None else None,
    )
    caravan.organizers = organizers
    db.session.add(caravan)
    db.session.flush()
    for code in specialties:
        db.session.add(CaravanSpecialty(caravan_id=caravan.id, specialty_code=code))
    _add_sites(caravan, sites)
    db.session.flush()
    db.session.expire(caravan, ["specialty_rows", "sites"])
    audit("caravan.create", object_type="caravan", object_id=caravan.id,
          region_code=caravan.region_code, principal=principal, title=caravan.title,
          commune=commune.code)
    warnings = [*(_no_point_warning(commune) if sites else []), *_past_warning(caravan.last_day),
                *_no_organizer_warning(organizers)]
    return caravan_view(caravan, principal, warnings)


# Other domains' rules about a caravan's days (tallies: no submission may fall outside them);
# registered at app setup, so that caravans never import the domains built on them.
DayGuard = Callable[[Caravan, dt.date, dt.date], None]
DAY_GUARDS = "fieldsvc.caravan_day_guards"


def _register(app: Flask, key: str, function: Callable[..., None]) -> None:
    functions = app.extensions.setdefault(key, [])
    if function not in functions:
        functions.append(function)


def register_day_guard(app: Flask, guard: DayGuard) -> None:
    """Have ``guard(caravan, first, last)`` refuse (by raising) a change of a caravan's days."""
    _register(app, DAY_GUARDS, guard)


# Other domains' rules about removing a site (tallies: a site that tallies name stays).
SiteGuard = Callable[[Site], None]
SITE_GUARDS = "fieldsvc.caravan_site_guards"


def register_site_guard(app: Flask, guard: SiteGuard) -> None:
    """Have ``guard(site)`` refuse (by raising) the removal of a caravan's site."""
    _register(app, SITE_GUARDS, guard)


# Other domains' work when a caravan's status moves on (volunteers: pledges become enrollments
# when it starts); registered at app setup, like the day guards.
StatusHook = Callable[[Caravan, str, str, Principal], None]
STATUS_HOOKS = "fieldsvc.caravan_status_hooks"


def register_status_hook(app: Flask, hook: StatusHook) -> None:
    """Have ``hook(caravan, old, new, principal)`` run when a caravan's status changes."""
    _register(app, STATUS_HOOKS, hook)


def update_caravan(caravan: Caravan, data: CaravanChanges, principal: Principal) -> CaravanView:
    """Change a caravan's title, days, specialties, sites or status; say what to check."""
    require_scope(caravan, principal)
    changed = sorted(data.sent)
    frozen = sorted(data.sent & {"first_day", "last_day", "specialties", "sites", "status"})
    if caravan.status == "closed" and frozen and not (
        frozen == ["status"] and data.status == "closed"
    ):
        raise Conflict(
            _("Caravan %(id)s is closed; only its title can still change.", id=caravan.id),
            errors={name: [_("The caravan is closed.")] for name in frozen},
        )
    warnings: list[str] = []
    if data.title is not None:
        caravan.title = data.title.strip()
    if data.first_day is not None or data.last_day is not None:
        first = data.first_day or caravan.first_day
        last = data.last_day or caravan.last_day
        if last < first or (last - first).days + 1 > MAX_CARAVAN_DAYS:
            message = (_("The last day cannot come before the first day.") if last < first
                       else _("A caravan lasts at most %(days)s days.", days=MAX_CARAVAN_DAYS))
            raise ValidationFailed(message, errors={"last_day": [message]})
        for guard in current_app.extensions.get(DAY_GUARDS, []):
            guard(caravan, first, last)
        caravan.first_day, caravan.last_day = first, last
        warnings += _past_warning(last)
    if data.specialties is not None:
        wanted = _check_specialties(data.specialties)
        db.session.execute(
            delete(CaravanSpecialty).where(CaravanSpecialty.caravan_id == caravan.id))
        for code in wanted:
            db.session.add(CaravanSpecialty(caravan_id=caravan.id, specialty_code=code))
    if data.organizers is not None:
        caravan.organizers = _organizations(data.organizers, principal)
    if data.sites:
        _add_sites(caravan, check_sites(data.sites, caravan.commune))
        warnings += _no_point_warning(caravan.commune)
    if data.status is not None and data.status != caravan.status:
        new, old = data.status, caravan.status
        if STATUS_ORDER[new] != STATUS_ORDER[old] + 1:
            raise Conflict(
                _("A caravan goes planned → active → closed; this one is %(old)s, so it cannot "
                  "become %(new)s.", old=old, new=new),
                errors={"status": [_("%(old)s cannot become %(new)s", old=old, new=new)]},
            )
        caravan.status = new
        if new == "closed":
            caravan.closed_at = utcnow()
        for hook in current_app.extensions.get(STATUS_HOOKS, []):
            hook(caravan, old, new, principal)
    db.session.flush()
    db.session.expire(caravan, ["specialty_rows", "sites"])
    audit("caravan.update", object_type="caravan", object_id=caravan.id,
          region_code=caravan.region_code, principal=principal, changed=changed,
          status=caravan.status)
    return caravan_view(caravan, principal, warnings)


@dataclass
class SiteChanges:
    """A PATCH of one site: its name, its point (as typed), or both."""

    name: str | None = None
    location: str | None = None


def site_to_change(caravan: Caravan, site_id: int, principal: Principal) -> Site:
    """One site of a caravan the caller runs, while the caravan is still open."""
    require_scope(caravan, principal)
    site = db.session.get(Site, site_id)
    if site is None or site.caravan_id != caravan.id:
        raise NotFound(_("Caravan %(caravan)s has no site %(id)s.", caravan=caravan.id,
                         id=site_id))
    if caravan.status == "closed":
        raise Conflict(_("Caravan %(id)s is closed; its sites can no longer change.",
                         id=caravan.id), errors={"sites": [_("The caravan is closed.")]})
    return site


def remove_site(caravan: Caravan, site_id: int, principal: Principal) -> None:
    """Remove a mistyped site; refused once tallies name it (correct it instead)."""
    site = site_to_change(caravan, site_id, principal)
    for guard in current_app.extensions.get(SITE_GUARDS, []):
        guard(site)
    name, lat, lon = site.name, site.lat, site.lon
    try:
        with db.session.begin_nested():
            db.session.delete(site)
    except IntegrityError:
        # A tally naming it arrived after the guards looked: it stays, as they would have said.
        raise Conflict(_("Site %(id)s (%(name)s) stays: tallies already name it. If its name or "
                         "point is wrong, correct them instead.", id=site_id, name=name),
                       errors={"site": [_("tallies name this site")]}) from None
    db.session.expire(caravan, ["sites"])
    audit("caravan.site_remove", object_type="caravan", object_id=caravan.id,
          region_code=caravan.region_code, principal=principal, site_id=site_id, name=name,
          lat=lat, lon=lon)


def update_site(caravan: Caravan, site_id: int, data: SiteChanges,
                principal: Principal) -> Site:
    """Correct a site's name or point (read and checked as when it was added)."""
    site = site_to_change(caravan, site_id, principal)
    before = {"name": site.name, "lat": site.lat, "lon": site.lon}
    if data.location is not None:
        try:
            [checked] = check_sites(
                [SiteInput(name=data.name or site.name, location=data.location)],
                caravan.commune)
        except ValidationFailed as error:
            error.errors = {"location": [message for messages in (error.errors or {}).values()
                                         for message in messages]}
            raise
        site.lat, site.lon = checked.lat, checked.lon
    if data.name is not None:
        site.name = data.name.strip()
    db.session.flush()
    db.session.expire(caravan, ["sites"])
    audit("caravan.site_update", object_type="caravan", object_id=caravan.id,
          region_code=caravan.region_code, principal=principal, site_id=site.id,
          before=before, after={"name": site.name, "lat": site.lat, "lon": site.lon})
    return site


def list_caravans(filters: CaravanFilter, principal: Principal) -> Page[CaravanView]:
    """Caravans, newest first; caravan metadata is not health data, so staff see all of them."""
    query = select(Caravan)
    if filters.status is not None:
        query = query.where(Caravan.status == filters.status)
    if filters.region is not None:
        query = query.where(Caravan.region_code == filters.region)
    if filters.commune is not None:
        query = query.where(Caravan.commune_code == filters.commune)
    page = paginate(query.order_by(Caravan.first_day.desc(), Caravan.id.desc()),
                    filters.limit, filters.offset)
    # Load the communes in one query; each caravan then finds its own in the identity map.
    list(db.session.scalars(
        select(Area).where(Area.code.in_({c.commune_code for c in page.items}))))
    return Page(items=[_view(caravan, principal) for caravan in page.items],
                total=page.total, limit=page.limit, offset=page.offset)


def caravan_view(caravan: Caravan, principal: Principal,
                 warnings: list[str] | None = None) -> CaravanView:
    """One caravan as the caller may see it, with what deserves a look (clashes included)."""
    warnings = list(warnings or [])
    clashes = clash_warnings(caravan, warnings)
    view = _view(caravan, principal, warnings)
    view.clashes = clashes
    return view


def _view(caravan: Caravan, principal: Principal,
          warnings: list[str] | None = None) -> CaravanView:
    # The join code only for those who run it.
    if not principal.in_region(caravan.region_code):
        return CaravanView(caravan, warnings=warnings)
    return CaravanView(caravan, display_join_code(caravan.join_code), join_url(caravan), warnings)


def qr_code(caravan: Caravan, principal: Principal, kind: str) -> bytes:
    """The caravan's join link as a QR code (svg or png)."""
    import io

    import segno

    require_scope(caravan, principal)
    qr = segno.make(join_url(caravan), error="m")
    buffer = io.BytesIO()
    if kind == "svg":
        qr.save(buffer, kind="svg", scale=8, border=4, xmldecl=True, title=caravan.title)
    else:
        qr.save(buffer, kind="png", scale=10, border=4)
    return buffer.getvalue()


# --- enrollments ----------------------------------------------------------------------------


def _throttle(client: str, now: dt.datetime) -> None:
    """Refuse a client that failed too many join codes recently (successes never count)."""
    since = now - FAILURE_WINDOW
    recent = db.session.execute(
        select(func.count(), func.min(EnrollmentFailure.at))
        .where(EnrollmentFailure.client == client, EnrollmentFailure.at > since)
    ).one()
    count, oldest = recent
    if count >= MAX_FAILED_ENROLLMENTS:
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        retry = max(1, int((oldest + FAILURE_WINDOW - now).total_seconds()) + 1)
        raise TooManyRequests(
            _("Too many wrong join codes from this connection; try again in %(seconds)s "
              "seconds.", seconds=retry),
            headers={"Retry-After": str(retry)},
            retry_after=retry,
        )


class UnknownJoinCode(NotFound):
    """A join code that matches no caravan; the failure must be committed before answering."""


def caravan_by_join_code(join_code: str, client: str) -> Caravan:
    """The caravan a join code opens; a wrong code counts towards the client's throttle."""
    now = utcnow()
    _throttle(client, now)
    code = normalise_join_code(join_code)
    caravan = db.session.scalar(select(Caravan).where(Caravan.join_code == code)) if code else None
    if caravan is None:
        # Forget old failures as new ones come: the table stays a few rows long.
        db.session.execute(
            delete(EnrollmentFailure).where(EnrollmentFailure.at < now - FAILURE_WINDOW))
        db.session.add(EnrollmentFailure(client=client[:64], at=now))
        db.session.flush()
        raise UnknownJoinCode(
            _("No caravan has this join code; check it with your coordinator."),
            errors={"join_code": [_("unknown join code")]},
        )
    return caravan


def enroll(data: EnrollmentInput, client: str) -> Enrolled:
    """Turn a join code into a device token for that caravan (and optionally a profile)."""
    caravan = caravan_by_join_code(data.join_code, client)
    if morocco_today() > sync_deadline(caravan):
        # A token made now would be dead on arrival: it lives only as long as the window.
        days = current_app.config["LATE_SYNC_DAYS"]
        if _counts_from_closing(caravan):
            message = _("This caravan closed more than %(days)s days ago; it takes no new "
                        "devices.", days=days)
        else:
            message = _("This caravan ended more than %(days)s days ago; it takes no new "
                        "devices.", days=days)
        raise DomainError(message, status=410, title="Gone",
                          errors={"join_code": [_("late-sync window over")]})
    specialty = data.specialty
    if specialty is not None and specialty not in specialty_codes():
        raise ValidationFailed(_("Unknown specialty %(code)s.", code=specialty),
                               errors={"specialty": [_("unknown specialty %(code)s", code=specialty)]})
    volunteer: Volunteer | None = None
    profile_key: str | None = None
    if data.profile_key:
        volunteer = db.session.scalar(
            select(Volunteer).where(Volunteer.profile_key_hash == token_digest(data.profile_key))
        )
        if volunteer is None:
            raise ValidationFailed(
                _("This profile key is not known; join without it, or create a new profile."),
                errors={"profile_key": [_("unknown profile key")]},
            )
        revoked = db.session.scalar(select(Enrollment.id).where(
            Enrollment.volunteer_id == volunteer.id, Enrollment.caravan_id == caravan.id,
            Enrollment.revoked_at.is_not(None)).limit(1))
        if revoked is not None:
            # The join code is shared by the whole team: with it and the saved key, a revoked
            # device would get its old tallies back. Only the coordinator can let it in again.
            raise Forbidden(
                _("The coordinator revoked this profile's device for this caravan; ask them to "
                  "let you join again."),
                errors={"profile_key": [_("revoked for this caravan")]})
    elif data.create_profile:
        volunteer, profile_key = create_volunteer(data.display_name, specialty,
                                                  data.public_consent)
    token = secrets.token_urlsafe(32)
    enrollment = Enrollment(
        caravan=caravan,
        volunteer=volunteer,
        display_name=data.display_name,
        specialty_code=specialty,
        token_hash=token_digest(token),
    )
    db.session.add(enrollment)
    db.session.flush()
    audit("enrollment.create", object_type="enrollment", object_id=enrollment.id,
          region_code=caravan.region_code,
          principal=Principal(role=VOLUNTEER, enrollment=enrollment),
          caravan_id=caravan.id, volunteer_id=enrollment.volunteer_id,
          profile="created" if profile_key else ("reattached" if volunteer else None))
    return Enrolled(enrollment, token, profile_key)


def create_volunteer(display_name: str, specialty: str | None,
                     public_consent: bool) -> tuple[Volunteer, str]:
    """Make a profile; return it with the key the phone must keep (only its hash is stored)."""
    key = "pk_" + secrets.token_urlsafe(24)
    volunteer = Volunteer(display_name=display_name, specialty_code=specialty,
                          public_consent=public_consent, profile_key_hash=token_digest(key))
    db.session.add(volunteer)
    db.session.flush()
    return volunteer, key


def list_enrollments(caravan: Caravan, principal: Principal) -> list[DeviceStatus]:
    """The devices enrolled in a caravan, newest first, with whether each token still works."""
    require_scope(caravan, principal)
    today = morocco_today()
    rows = db.session.scalars(
        select(Enrollment).where(Enrollment.caravan_id == caravan.id)
        .order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
    )
    return [DeviceStatus(e, enrollment_is_live(e.revoked_at, caravan, today)) for e in rows]


def revoke_enrollment(enrollment_id: int, principal: Principal) -> Enrollment:
    """Revoke a device token (idempotent); its next call gets 401."""
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise NotFound(_("No enrollment has id %(id)s.", id=enrollment_id))
    require_scope(enrollment.caravan, principal)
    if enrollment.revoked_at is None:
        enrollment.revoked_at = utcnow()
        enrollment.revoked_by_id = principal.user.id if principal.user is not None else None
        db.session.flush()
        audit("device.revoke", object_type="enrollment", object_id=enrollment.id,
              region_code=enrollment.caravan.region_code, principal=principal,
              caravan_id=enrollment.caravan_id)
    return enrollment


def readmit_device(enrollment_id: int, principal: Principal) -> Enrolled:
    """Give a revoked (or lost) device's enrollment a fresh token, for the coordinator to hand
    over: the old token stays dead, and the volunteer's tallies and profile come back with it."""
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise NotFound(_("No enrollment has id %(id)s.", id=enrollment_id))
    require_scope(enrollment.caravan, principal)
    token = secrets.token_urlsafe(32)
    enrollment.token_hash = token_digest(token)
    enrollment.revoked_at = None
    enrollment.revoked_by_id = None
    db.session.flush()
    audit("device.readmit", object_type="enrollment", object_id=enrollment.id,
          region_code=enrollment.caravan.region_code, principal=principal,
          caravan_id=enrollment.caravan_id)
    return Enrolled(enrollment, token)


# --- volunteer profiles ---------------------------------------------------------------------


def my_profile(principal: Principal) -> VolunteerProfile:
    """The profile the calling device's enrollment points to, with its caravans."""
    volunteer = principal.enrollment.volunteer
    if volunteer is None:
        raise NotFound(_("This device joined without a volunteer profile; create one first."))
    return _profile(volunteer)


def _profile(volunteer: Volunteer, profile_key: str | None = None) -> VolunteerProfile:
    caravans = db.session.scalars(
        select(Caravan).join(Enrollment, Enrollment.caravan_id == Caravan.id)
        .where(Enrollment.volunteer_id == volunteer.id)
        .distinct().order_by(Caravan.first_day.desc())
    )
    return VolunteerProfile(volunteer, list(caravans), profile_key)


def create_my_profile(data: ProfileChanges, principal: Principal) -> VolunteerProfile:
    """Give a device that joined without a profile one, and return its key once."""
    enrollment = principal.enrollment
    if enrollment.volunteer_id is not None:
        raise Conflict(_("This device already has a volunteer profile."))
    specialty = data.specialty if "specialty" in data.sent else enrollment.specialty_code
    if specialty is not None and specialty not in specialty_codes():
        raise ValidationFailed(_("Unknown specialty %(code)s.", code=specialty),
                               errors={"specialty": [_("unknown specialty %(code)s", code=specialty)]})
    volunteer, key = create_volunteer(
        (data.display_name or enrollment.display_name).strip(), specialty, data.public_consent)
    enrollment.volunteer_id = volunteer.id
    db.session.flush()
    db.session.expire(enrollment, ["volunteer"])
    audit("volunteer.create", object_type="volunteer", object_id=volunteer.id,
          region_code=enrollment.caravan.region_code, principal=principal)
    return _profile(volunteer, key)


def update_my_profile(data: ProfileChanges, principal: Principal) -> VolunteerProfile:
    """Change the calling volunteer's name, specialty or public consent."""
    volunteer = principal.enrollment.volunteer
    if volunteer is None:
        raise NotFound(_("This device joined without a volunteer profile; create one first."))
    if "display_name" in data.sent:
        name = (data.display_name or "").strip()
        if not name:
            raise ValidationFailed(_("The name cannot be empty."),
                                   errors={"display_name": [_("The name cannot be empty.")]})
        volunteer.display_name = name
    if "specialty" in data.sent:
        if data.specialty is not None and data.specialty not in specialty_codes():
            raise ValidationFailed(_("Unknown specialty %(code)s.", code=data.specialty),
                                   errors={"specialty": [_("unknown specialty %(code)s",
                                                           code=data.specialty)]})
        volunteer.specialty_code = data.specialty
    if "public_consent" in data.sent:
        volunteer.public_consent = data.public_consent
    db.session.flush()
    audit("volunteer.update", object_type="volunteer", object_id=volunteer.id,
          region_code=principal.enrollment.caravan.region_code, principal=principal,
          changed=sorted(data.sent))
    return _profile(volunteer)
