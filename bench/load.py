"""A national-scale synthetic season, loaded with COPY (PostgreSQL), shared by the benchmarks.

    from bench.load import bench_database, load_season
    with bench_database("summary") as url:          # a throw-away database, dropped at the end
        facts = load_season(url, lines=1_000_000)

What it loads (deterministic for a given size): the areas (real HCP areas, or 1,503 synthetic
communes), ~3,000 caravans over the last three years spread over every region (2–3 days, 3–5
specialties, one or two sites, one or two organizing associations), and enough 24-line tallies to
reach ``lines``: 12 consultation lines by sex × age band without condition, 6 with an ICD-10
chapter, 6 of turned away or referrals. About 2 % of submissions are rejected, 3 % amended (their
first version's lines are stored and must not count), the rest received, approved or flagged.
Then the summary rollup is rebuilt (what the background fold keeps up to date) and the tables
analyzed. Not a benchmark itself (no ``main``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SPECIALTIES = ("GEN", "OPH", "PED", "GYN", "DEN")
SEXES = ("F", "M")
BANDS = ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")
CHAPTERS = ("I", "IV", "VII", "IX", "X", "XI", "XIII", "XIV")
LINES_PER_TALLY = 24


def admin_url() -> str | None:
    return os.environ.get("FIELDSVC_BENCH_POSTGRES_URL") or os.environ.get(
        "FIELDSVC_TEST_POSTGRES_URL")


@contextlib.contextmanager
def bench_database(label: str, *, keep: bool = False) -> Iterator[str]:
    """A new PostgreSQL database (SQLAlchemy URL), dropped on the way out unless `keep`."""
    import psycopg

    admin = admin_url()
    if not admin:
        raise RuntimeError("set FIELDSVC_TEST_POSTGRES_URL (or FIELDSVC_BENCH_POSTGRES_URL)")
    plain = admin.replace("postgresql+psycopg://", "postgresql://")
    name = f"fieldsvc_bench_{label}_{os.getpid()}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = plain.rpartition("/")[0].split("://", 1)[1]
    try:
        yield f"postgresql+psycopg://{base}/{name}"
    finally:
        if keep:
            print(f"  kept the database {name} (BENCH_DATABASE={name} reuses it; drop it after)")
        else:
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def kept_database(name: str) -> Iterator[str]:
    """An existing database `name` on the benchmark server (SQLAlchemy URL), kept on the way out."""
    admin = admin_url()
    if not admin:
        raise RuntimeError("set FIELDSVC_TEST_POSTGRES_URL (or FIELDSVC_BENCH_POSTGRES_URL)")
    base = admin.replace("postgresql+psycopg://", "postgresql://").rpartition("/")[0]
    yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"


@dataclass
class Season:
    caravans: int
    submissions: int
    versions: int
    lines: int  # stored, amended-away versions included
    counted_lines: int
    first_day: dt.date
    last_day: dt.date
    seconds: float
    rollup_seconds: float
    rollup_rows: int
    month_rows: int


def _tally(rng: random.Random) -> list[tuple[str, str, str, str | None, int]]:
    rows: list[tuple[str, str, str, str | None, int]] = [
        ("consultations", sex, band, None, rng.randint(0, 25)) for sex in SEXES for band in BANDS]
    chapter = rng.sample(CHAPTERS, 3)
    rows += [("consultations", sex, rng.choice(("25-49", "50-64", "65+")), chapter[n], rng.randint(1, 12))
             for n, sex in enumerate(SEXES)] + [
        ("consultations", sex, "65+", chapter[2], rng.randint(1, 8)) for sex in SEXES]
    rows += [("consultations", sex, "15-24", chapter[2], rng.randint(0, 5)) for sex in SEXES]
    measure = rng.choice(("turned_away", "referrals"))
    rows += [(measure, sex, band, None, rng.randint(0, 6))
             for sex in SEXES for band in ("0-4", "25-49", "65+")]
    # Lines are disjoint keys: keep the first of any repeated (measure, sex, band, condition).
    seen: set[tuple] = set()
    unique = []
    for row in rows:
        if row[:4] not in seen:
            seen.add(row[:4])
            unique.append(row)
    return unique


def load_season(url: str, lines: int = 1_000_000, caravans: int = 3000, *,
                today: dt.date | None = None, echo=print) -> Season:  # noqa: ANN001
    """Migrate `url`, load the areas and a season of about `lines` tally lines; return its facts."""
    import psycopg
    from flask_migrate import upgrade
    from sqlalchemy import select

    from bench.needs import _load_areas
    from fieldsvc import create_app
    from fieldsvc.accounts.services import get_or_create_organization
    from fieldsvc.areas.models import Area
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db

    started = time.perf_counter()
    today = today or dt.date.today()
    rng = random.Random(lines)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})
    with app.app_context():
        upgrade()
        ensure_catalog()
        db.session.commit()
        _load_areas()
        organizations = [get_or_create_organization(f"Association {n}").id for n in range(40)]
        db.session.commit()
        communes = [tuple(row) for row in db.session.execute(
            select(Area.code, Area.region_code, Area.lat, Area.lon).where(Area.level == "commune")
            .order_by(Area.code))]
        db.session.remove()
        db.engine.dispose()
    by_region: dict[str, list[tuple]] = {}
    for commune in communes:
        by_region.setdefault(commune[1], []).append(commune)
    regions = sorted(by_region)
    per_caravan = max(1, round(lines / LINES_PER_TALLY / caravans))
    first_day = today - dt.timedelta(days=3 * 365)

    caravan_rows, organizer_rows, specialty_rows, site_rows = io.StringIO(), io.StringIO(), \
        io.StringIO(), io.StringIO()
    plans = []
    site_id = 0
    for number in range(1, caravans + 1):
        region = regions[number % len(regions)]
        code, _, lat, lon = rng.choice(by_region[region])
        start = first_day + dt.timedelta(days=rng.randint(0, 3 * 365 - 3))
        days = [start + dt.timedelta(days=n) for n in range(rng.randint(2, 3))]
        specialties = rng.sample(SPECIALTIES, rng.randint(3, 5))
        caravan_rows.write(
            f"{number}\tCaravane {number}\t{code}\t{region}\t{days[0]}\t{days[-1]}\tclosed"
            f"\tB{number:07d}\t{start}T08:00:00+00\n")
        for organization in rng.sample(organizations, rng.choice((1, 1, 1, 2))):
            organizer_rows.write(f"{number}\t{organization}\n")
        for specialty in specialties:
            specialty_rows.write(f"{number}\t{specialty}\n")
        sites = []
        for _ in range(rng.choice((1, 1, 2))):
            site_id += 1
            sites.append(site_id)
            site_rows.write(f"{site_id}\t{number}\tSite {site_id}\t{code}\t{lat or 31.0}"
                            f"\t{lon or -7.0}\n")
        plans.append((number, days, specialties, sites))

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    submissions = versions = stored_lines = counted = 0
    with psycopg.connect(plain) as conn:
        with conn.cursor() as cursor:
            for table, columns, data in (
                ("caravan", "id, title, commune_code, region_code, first_day, last_day, status, "
                 "join_code, created_at", caravan_rows),
                ("caravan_organizer", "caravan_id, organization_id", organizer_rows),
                ("caravan_specialty", "caravan_id, specialty_code", specialty_rows),
                ("site", "id, caravan_id, name, commune_code, lat, lon", site_rows),
            ):
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write(data.getvalue())
            version_id = 0
            chunk = 200
            for begin in range(0, len(plans), chunk):
                sub_text, ver_text, line_text = io.StringIO(), io.StringIO(), io.StringIO()
                for number, days, specialties, sites in plans[begin:begin + chunk]:
                    for n in range(per_caravan):
                        day = days[n % len(days)]
                        specialty = specialties[(n // len(days)) % len(specialties)]
                        site = rng.choice([*sites, "\\N"])
                        sid = uuid.UUID(int=rng.getrandbits(128), version=4)
                        roll = rng.random()
                        status = ("rejected" if roll < 0.02 else "flagged" if roll < 0.07
                                  else "received" if roll < 0.3 else "approved")
                        amended = rng.random() < 0.03
                        created = f"{day}T12:00:00+00"
                        for number_of_version in ((1, 2) if amended else (1,)):
                            version_id += 1
                            ver_text.write(
                                f"{version_id}\t{sid}\t{number_of_version}\t{number}\t{site}"
                                f"\t{day}\t{specialty}\t{'0' * 64}\t{created}\n")
                            tally = _tally(rng)
                            for measure, sex, band, condition, count in tally:
                                line_text.write(f"{version_id}\t{measure}\t{sex}\t{band}\t"
                                                f"{condition or chr(92) + 'N'}\t{count}\n")
                            stored_lines += len(tally)
                            versions += 1
                        if status != "rejected":
                            counted += len(tally)
                        sub_text.write(f"{sid}\t{number}\t{status}\t{version_id}\t{created}"
                                       f"\t{created}\n")
                        submissions += 1
                with cursor.copy("COPY submission (id, caravan_id, review_status, "
                                 "current_version_id, created_at, updated_at) FROM STDIN") as copy:
                    copy.write(sub_text.getvalue())
                with cursor.copy("COPY submission_version (id, submission_id, number, caravan_id, "
                                 "site_id, day, specialty_code, content_hash, created_at) "
                                 "FROM STDIN") as copy:
                    copy.write(ver_text.getvalue())
                with cursor.copy("COPY tally_line (version_id, measure_code, sex, age_band, "
                                 "condition, count) FROM STDIN") as copy:
                    copy.write(line_text.getvalue())
            for table in ("caravan", "site", "submission_version"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
        conn.commit()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("ANALYZE")
    loaded = time.perf_counter() - started
    echo(f"  loaded {caravans:,} caravans, {submissions:,} submissions, {stored_lines:,} tally "
         f"lines ({counted:,} counted) in {loaded:.0f} s")
    rollup_seconds, rollup_rows, month_rows = _rebuild_rollups(app, plain, echo)
    return Season(caravans, submissions, versions, stored_lines, counted, first_day, today,
                  loaded, rollup_seconds, rollup_rows, month_rows)


def _rebuild_rollups(app: Any, plain: str, echo: Any) -> tuple[float, int, int]:
    """Rebuild the summary rollups, analyze; (seconds, rows by day, rows by month)."""
    import psycopg
    from sqlalchemy import func, select

    from fieldsvc.extensions import db
    from fieldsvc.insights import rollup
    from fieldsvc.insights.models import TallyRollup, TallyRollupMonth

    started = time.perf_counter()
    with app.app_context():
        rollup.rebuild()
        rollup_rows = db.session.scalar(select(func.count()).select_from(TallyRollup))
        month_rows = db.session.scalar(select(func.count()).select_from(TallyRollupMonth))
        db.session.remove()
        db.engine.dispose()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE submission")
        conn.execute("VACUUM ANALYZE tally_rollup")
        conn.execute("VACUUM ANALYZE tally_rollup_month")
        conn.execute("VACUUM ANALYZE tally_rollup_year")
    rollup_seconds = time.perf_counter() - started
    echo(f"  rollups rebuilt: {rollup_rows:,} rows by day, {month_rows:,} by month, in "
         f"{rollup_seconds:.0f} s")
    return rollup_seconds, rollup_rows, month_rows


def loaded_season(url: str, *, echo=print) -> Season:  # noqa: ANN001
    """The facts of a season `load_season` loaded earlier into `url`: migrated to head first, its
    rollups rebuilt when some submissions are unrolled (a migration may empty them)."""
    import psycopg
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.tallies.models import UNROLLED

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})
    with app.app_context():
        upgrade()
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        unrolled = conn.execute(f"SELECT count(*) FROM submission WHERE {UNROLLED}").fetchone()[0]
    if unrolled:
        rollup_seconds, _, _ = _rebuild_rollups(app, plain, echo)
    else:
        rollup_seconds = 0.0
    with psycopg.connect(plain) as conn:
        facts = conn.execute(
            "SELECT (SELECT count(*) FROM caravan), (SELECT count(*) FROM submission), "
            "(SELECT count(*) FROM submission_version), (SELECT count(*) FROM tally_line), "
            "(SELECT count(*) FROM tally_line tl JOIN submission s ON s.current_version_id = "
            "tl.version_id AND s.review_status <> 'rejected'), (SELECT min(day) FROM "
            "submission_version), "
            "(SELECT count(*) FROM tally_rollup), (SELECT count(*) FROM tally_rollup_month)"
        ).fetchone()
    caravans, submissions, versions, lines, counted, first, rows, month = facts
    today = dt.date.today()  # the loader's "today", when loaded the same day
    echo(f"  reused {caravans:,} caravans, {submissions:,} submissions, {lines:,} tally lines "
         f"({counted:,} counted)")
    return Season(caravans, submissions, versions, lines, counted, first, today, 0.0,
                  rollup_seconds, rows, month)
