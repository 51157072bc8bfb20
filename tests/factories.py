"""Build test data: a small real slice of Morocco's areas, staff users, tokens."""

from __future__ import annotations

from typing import Any

from fieldsvc.accounts.models import Organization, User
from fieldsvc.accounts.services import create_user, get_or_create_organization, issue_token
from fieldsvc.areas.models import Area
from fieldsvc.extensions import db

# code, level, parent, name_fr, name_ar, population_legal, lat, lon
AREAS: list[tuple[str, str, str | None, str, str, int | None, float | None, float | None]] = [
    ("07", "region", None, "Marrakech-Safi", "مراكش آسفي", 4892393, 31.63, -8.0),
    ("07.351", "province", "07", "Marrakech", "مراكش", 1537636, 31.63, -8.0),
    ("07.351.02.07", "commune", "07.351", "Ouahat Sidi Brahim", "واحة سيدي ابراهيم", 36493, 31.70, -7.95),
    ("08", "region", None, "Drâa-Tafilalet", "درعة تافيلالت", 1655623, 31.0, -5.5),
    ("08.587", "province", "08", "Zagora", "زاكورة", 321325, 30.33, -5.84),
    ("08.587.01.13", "commune", "08.587", "Zagora", "زاكورة", 40069, 30.33, -5.84),
    ("08.587.09.23", "commune", "08.587", "M'Hamid El Ghizlane", "امحاميد الغزلان", 9456, 29.82, -5.72),
    ("08.577", "province", "08", "Tinghir", "تنغير", 331411, 31.51, -5.53),
    ("08.577.01.11", "commune", "08.577", "Tinghir", "تنغير", 44312, 31.51, -5.53),
    ("01", "region", None, "Tanger-Tétouan-Al Hoceïma", "طنجة تطوان الحسيمة", 4030222, 35.76, -5.83),
    ("01.511", "province", "01", "Tanger-Assilah", "طنجة أصيلة", 1275428, 35.76, -5.83),
    ("01.511.01.01", "commune", "01.511", "Assilah", "أصيلة", 36039, 35.46, -6.03),
]


def make_areas() -> dict[str, Area]:
    """Insert a small slice of the HCP hierarchy: real codes and names, rounded figures and points."""
    from fieldsvc.areas.services import search_key

    rows: dict[str, Area] = {}
    for code, level, parent, fr, ar, pop, lat, lon in AREAS:
        region = code[:2]
        province = code[:6] if level != "region" else None
        area = Area(
            code=code, level=level, parent_code=parent, region_code=region,
            province_code=province, name_fr=fr, name_ar=ar, search_text=search_key(fr, ar),
            population_legal=pop, population_municipal=pop, lat=lat, lon=lon,
            point_source="geonames" if lat is not None else None,
        )
        db.session.add(area)
        rows[code] = area
    db.session.flush()
    return rows


def make_user(role: str = "coordinator", *, regions: list[str] | None = None,
              organization: Organization | str | None = None, username: str | None = None,
              password: str = "correct horse battery") -> User:
    if isinstance(organization, str):
        organization = get_or_create_organization(organization)
    if role == "coordinator" and regions is None:
        regions = ["08"]
    return create_user(username or f"{role}-{_next()}", password, role,
                       region_codes=regions, organization=organization)


def auth(user: User) -> dict[str, str]:
    """Authorization header with a fresh bearer token for a staff user."""
    token, _ = issue_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


_counter = [0]


def _next() -> int:
    _counter[0] += 1
    return _counter[0]


def commit(*objects: Any) -> None:
    db.session.commit()


def make_caravan(
    commune: str = "08.587.01.13",
    *,
    title: str = "Caravane médicale de Zagora",
    first_day: Any = None,
    last_day: Any = None,
    specialties: tuple[str, ...] = ("GEN", "OPH", "PED"),
    organizers: tuple[str, ...] = ("Wahat Al-Khair",),
    status: str = "active",
    join_code: str | None = None,
    sites: tuple[tuple[str, float, float], ...] = (("École Al Amal", 30.33, -5.84),),
):
    """A caravan in a commune of make_areas(), with sites and planned specialties."""
    import datetime as dt

    from fieldsvc.caravans.models import Caravan, CaravanSpecialty, Site

    area = db.session.get(Area, commune)
    first_day = first_day or dt.date(2026, 11, 27)
    last_day = last_day or first_day + dt.timedelta(days=1)
    caravan = Caravan(
        title=title, commune_code=commune, region_code=area.region_code,
        first_day=first_day, last_day=last_day, status=status,
        join_code=join_code or f"T{_next():05d}",
    )
    caravan.organizers = [get_or_create_organization(name) for name in organizers]
    db.session.add(caravan)
    db.session.flush()
    for code in specialties:
        db.session.add(CaravanSpecialty(caravan_id=caravan.id, specialty_code=code))
    for name, lat, lon in sites:
        db.session.add(Site(caravan_id=caravan.id, name=name, commune_code=commune, lat=lat, lon=lon))
    db.session.flush()
    db.session.expire(caravan, ["specialty_rows", "sites"])
    return caravan


def make_enrollment(caravan, *, display_name: str = "Dr Amina", specialty: str | None = "OPH"):
    """A device enrollment for a caravan; returns (enrollment, Authorization header)."""
    import secrets

    from fieldsvc.caravans.models import Enrollment
    from fieldsvc.security import token_digest

    token = secrets.token_urlsafe(24)
    enrollment = Enrollment(caravan_id=caravan.id, display_name=display_name,
                            specialty_code=specialty, token_hash=token_digest(token))
    db.session.add(enrollment)
    db.session.flush()
    return enrollment, {"Authorization": f"Bearer {token}"}


def make_tally(caravan, *, day: Any = None, specialty: str = "OPH",
               lines: list[tuple[str, str, str, str | None, int]] = (),
               status: str = "received", site_id: int | None = None,
               submission_id: str | None = None):
    """A submission with one current version and its lines, built with the ORM (insights tests).

    ``lines`` are (measure, sex, age_band, condition, count).
    """
    import datetime as dt
    import hashlib
    import uuid

    from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine

    submission = Submission(id=submission_id or str(uuid.uuid4()), caravan_id=caravan.id,
                            review_status=status)
    db.session.add(submission)
    db.session.flush()
    version = SubmissionVersion(
        submission_id=submission.id, number=1, caravan_id=caravan.id, site_id=site_id,
        day=day or dt.date(2026, 11, 27), specialty_code=specialty,
        content_hash=hashlib.sha256(submission.id.encode()).hexdigest(),
    )
    db.session.add(version)
    db.session.flush()
    for measure, sex, band, condition, count in lines:
        db.session.add(TallyLine(version_id=version.id, measure_code=measure, sex=sex,
                                 age_band=band, condition=condition, count=count))
    submission.current_version_id = version.id
    db.session.flush()
    return submission


def publish(today: Any = None):
    """Build the protected release from what is stored now (what the background refresh does)."""
    from fieldsvc.insights.release import build_release

    release = build_release(today, force=True)
    db.session.commit()
    return release
