"""Building the protected release: time against a plain GROUP BY of the same atoms, one run.

    .venv/bin/python -m bench.release              # PostgreSQL when FIELDSVC_TEST_POSTGRES_URL
    BENCH_RELEASE_CARAVANS=150,600 .venv/bin/python -m bench.release   # smaller seasons
    BENCH_DATABASE=name .venv/bin/python -m bench.release  # a season bench.summary loaded, kept

Loads the real areas and seasons of N caravans (two days, five specialties, 24 lines a tally,
spread over the last two years; see ``bench.needs``), then times ``build_release`` — the grouping
into atoms plus the per-table suppression, the linking and the LP audit of every region and
measure — against its own first step alone: the GROUP BY of the counted lines by commune,
quarter, specialty, measure, sex and age band. Not a timed test: it prints figures. The release
is built in the background (``RELEASE_REFRESH_SECONDS``), never on a request.

With ``BENCH_DATABASE`` (see ``bench.summary``: the ``make bench`` season, 1 M or 10 M lines), the
release is built once on that database as it is (migrated, rollups rebuilt if emptied) and the
database is kept.
"""

from __future__ import annotations

import os
import tempfile
import time

from bench.figures import figure
from bench.needs import _load_areas, _season


def _time_build(label: str, scale: str) -> None:
    from fieldsvc.extensions import db
    from fieldsvc.insights import release

    start = time.perf_counter()
    atoms = release._atoms()  # noqa: SLF001 - the baseline is the build's own first step
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    built = release.build_release(force=True)
    seconds = time.perf_counter() - start
    db.session.commit()
    assert built is not None
    print(f"{label}: {scale}, {len(atoms):,} atoms")
    print(f"  build_release: {seconds:.2f} s ({built.cell_count:,} cells, "
          f"{built.hidden_count:,} hidden)")
    print(f"  baseline GROUP BY into atoms: {baseline:.2f} s")
    print(f"  ratio build / baseline: {seconds / baseline:.1f}", flush=True)
    figure(f"release: build_release, {label}, {scale}", f"{seconds:.2f} s",
           baseline=f"GROUP BY into atoms {baseline:.2f} s", ratio=seconds / baseline)


def run_loaded(name: str) -> None:
    from bench.load import kept_database, loaded_season
    from fieldsvc import create_app
    from fieldsvc.extensions import db

    with kept_database(name) as url:
        season = loaded_season(url)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
                          "TESTING": True})
        with app.app_context():
            _time_build("PostgreSQL", f"the loaded season {name}: {season.caravans:,} caravans, "
                        f"{season.counted_lines:,} counted tally lines")
            db.session.remove()
            db.engine.dispose()


def run(url: str, label: str, caravans: int) -> None:
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})
    with app.app_context():
        upgrade()
        ensure_catalog()
        db.session.commit()
        _load_areas()
        lines = _season(caravans)
        _time_build(label, f"{caravans} caravans, {lines:,} tally lines")
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    if os.environ.get("BENCH_DATABASE"):
        run_loaded(os.environ["BENCH_DATABASE"])
        return
    default = "20" if os.environ.get("BENCH_SMOKE") else "150,600,1500"
    sizes = [int(n) for n in os.environ.get("BENCH_RELEASE_CARAVANS", default).split(",")]
    admin = os.environ.get("FIELDSVC_BENCH_POSTGRES_URL") or os.environ.get(
        "FIELDSVC_TEST_POSTGRES_URL")
    if not admin:
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{os.path.join(folder, 'bench.sqlite3')}", "SQLite", sizes[0])
        return
    import psycopg

    plain = admin.replace("postgresql+psycopg://", "postgresql://")
    base, _, _ = plain.rpartition("/")
    for caravans in sizes:
        name = f"fieldsvc_bench_release_{os.getpid()}_{caravans}"
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            run(f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}", "PostgreSQL", caravans)
        finally:
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
