"""Need scores for all communes, one specialty: time and ratio to a plain SELECT of the same rows.

    .venv/bin/python -m bench.needs          # SQLite (a temporary file), then PostgreSQL when
                                             # FIELDSVC_TEST_POSTGRES_URL is set

Loads the real areas (``areas load``; synthetic 1,503 communes if the loader fails), a demo-sized
season (about 150 caravans, two days each, five specialties, 24 lines per tally), then measures
``need_rows("OPH")`` against a baseline in the same run: a plain SELECT of the commune rows and of
the season's OPH tally lines (the data the score reads). Not a timed test: it prints figures.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

from sqlalchemy import insert, select, text

from bench.figures import figure
from bench.load import admin_url, bench_database

SPECIALTIES = ("GEN", "OPH", "PED", "GYN", "DEN")
MEASURES = ("consultations", "consultations", "consultations", "turned_away", "referrals")
SEXES = ("F", "M")
BANDS = ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")


def _load_areas() -> str:
    from fieldsvc.areas.models import Area
    from fieldsvc.extensions import db

    try:
        from fieldsvc.areas.services import load_areas

        load_areas(echo=lambda *_: None)
        db.session.commit()
        return "real HCP areas"
    except Exception as error:  # noqa: BLE001 - fall back to synthetic areas
        db.session.rollback()
        print(f"  areas load failed ({error}); using synthetic communes", file=sys.stderr)
    rng = random.Random(7)
    rows = []
    for r in range(1, 13):
        region = f"{r:02d}"
        rows.append({"code": region, "level": "region", "parent_code": None, "region_code": region,
                     "province_code": None, "name_fr": f"Région {r}", "name_ar": "جهة",
                     "search_text": "", "population_legal": 0})
    for n in range(83):
        region = f"{n % 12 + 1:02d}"
        province = f"{region}.{100 + n:03d}"
        rows.append({"code": province, "level": "province", "parent_code": region,
                     "region_code": region, "province_code": province,
                     "name_fr": f"Province {n}", "name_ar": "إقليم", "search_text": "",
                     "population_legal": 0})
    for n in range(1503):
        province_index = n % 83
        region = f"{province_index % 12 + 1:02d}"
        province = f"{region}.{100 + province_index:03d}"
        code = f"{province}.{n // 83:02d}.{n % 100:02d}"
        rows.append({"code": code, "level": "commune", "parent_code": province,
                     "region_code": region, "province_code": province,
                     "name_fr": f"Commune {n}", "name_ar": "جماعة", "search_text": "",
                     "population_legal": rng.randint(2000, 80000),
                     "lat": rng.uniform(28, 35), "lon": rng.uniform(-10, -2)})
    for row in rows:
        row.setdefault("lat", None)
        row.setdefault("lon", None)
    db.session.execute(insert(Area), rows)
    db.session.commit()
    return "synthetic communes"


def _season(caravans: int = 150) -> int:
    """Insert a demo-sized season directly (bulk inserts; the submission API is not measured)."""
    from fieldsvc.accounts.services import get_or_create_organization
    from fieldsvc.areas.models import Area
    from fieldsvc.caravans.models import Caravan, caravan_specialty
    from fieldsvc.extensions import db
    from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine

    rng = random.Random(2026)
    organization = get_or_create_organization("Bench association")
    communes = list(db.session.execute(
        select(Area.code, Area.region_code).where(Area.level == "commune")
    ))
    visited = rng.sample(communes, min(caravans, len(communes)))
    lines = 0
    version_id = 0
    today = dt.date.today()
    for number, (code, region) in enumerate(visited):
        first = today - dt.timedelta(days=rng.randint(10, 700))
        caravan = Caravan(title=f"Bench {number}", commune_code=code, region_code=region,
                          first_day=first, last_day=first + dt.timedelta(days=1), status="closed",
                          join_code=f"B{number:06d}")
        caravan.organizers = [organization]
        db.session.add(caravan)
        db.session.flush()
        db.session.execute(insert(caravan_specialty), [
            {"caravan_id": caravan.id, "specialty_code": s} for s in SPECIALTIES])
        submissions, versions, tally = [], [], []
        for offset in range(2):
            for specialty in SPECIALTIES:
                version_id += 1
                sid = str(uuid.UUID(int=rng.getrandbits(128)))
                submissions.append({"id": sid, "caravan_id": caravan.id,
                                    "review_status": "approved", "current_version_id": version_id})
                versions.append({"id": version_id, "submission_id": sid, "number": 1,
                                 "caravan_id": caravan.id,
                                 "day": first + dt.timedelta(days=offset),
                                 "specialty_code": specialty, "content_hash": "0" * 64})
                for measure in ("consultations", "turned_away"):
                    for sex in SEXES:
                        for band in BANDS:
                            tally.append({"version_id": version_id, "measure_code": measure,
                                          "sex": sex, "age_band": band, "condition": None,
                                          "count": rng.randint(0, 40 if measure == "consultations"
                                                               else 6)})
        db.session.execute(insert(Submission), submissions)
        db.session.execute(insert(SubmissionVersion), versions)
        db.session.execute(insert(TallyLine), tally)
        lines += len(tally)
    db.session.commit()
    return lines


def _median_seconds(function: Any, repeat: int = 7) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def seasoned_app(url: str) -> tuple[Any, str, int]:
    """An app on ``url``, migrated, with the catalog, the areas and a demo-sized season:
    (the app, where the areas came from, the season's tally lines)."""
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})
    with app.app_context():
        upgrade()
        ensure_catalog()
        db.session.commit()
        source = _load_areas()
        lines = _season(30 if os.environ.get("BENCH_SMOKE") else 150)  # make bench-smoke: small
    return app, source, lines


def run(url: str, label: str) -> None:
    from fieldsvc.areas.models import Area
    from fieldsvc.extensions import db
    from fieldsvc.insights.needs import need_rows
    from fieldsvc.insights.queries import counted_lines

    app, source, lines = seasoned_app(url)
    with app.app_context():
        communes = db.session.scalar(
            select(text("count(*)")).select_from(Area).where(Area.level == "commune"))

        def needs() -> None:
            rows = need_rows("OPH", level="commune")["rows"]
            assert len(rows) == communes
            db.session.rollback()

        def baseline() -> None:
            lines_q = counted_lines()
            db.session.execute(select(Area.code, Area.name_fr, Area.name_ar, Area.population_legal,
                                      Area.lat, Area.lon).where(Area.level == "commune")).all()
            db.session.execute(select(lines_q).where(lines_q.c.specialty_code == "OPH")).all()
            db.session.rollback()

        needs()  # warm caches on both sides
        baseline()
        seconds = _median_seconds(needs)
        base = _median_seconds(baseline)
        print(f"{label}: {communes} communes ({source}), {lines} tally lines")
        print(f"  needs(OPH, all communes): {seconds * 1000:.1f} ms (median of 7)")
        print(f"  baseline plain SELECT of the same rows: {base * 1000:.1f} ms")
        print(f"  ratio needs / baseline: {seconds / base:.2f}")
        figure(f"needs: need_rows(OPH), {communes:,} communes, {label}, {lines:,} tally lines",
               f"{seconds * 1000:.0f} ms", baseline=f"plain SELECT {base * 1000:.0f} ms",
               ratio=seconds / base)
        db.session.remove()
        db.engine.dispose()


def on_each_engine(run_on: Any, label: str) -> None:
    """``run_on(url, engine)`` on SQLite, then on PostgreSQL when a benchmark server is set;
    ``make bench-smoke`` checks the script on PostgreSQL alone when it can."""
    if not (os.environ.get("BENCH_SMOKE") and admin_url()):
        with tempfile.TemporaryDirectory() as folder:
            run_on(f"sqlite:///{os.path.join(folder, 'bench.sqlite3')}", "SQLite")
    if admin_url():
        with bench_database(label) as url:
            run_on(url, "PostgreSQL")


def main() -> None:
    on_each_engine(run, "needs")


if __name__ == "__main__":
    main()
