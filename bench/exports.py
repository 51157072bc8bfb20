"""Full-detail export: the detail CSV of N tally lines against PostgreSQL's own COPY, as a ratio.

    FIELDSVC_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.exports [--lines 1000000]

Target: 1 M lines to CSV at >= 0.5 x `COPY (the same SELECT) TO STDOUT`, peak memory <= 150 MB.
In one run it creates a throw-away database, writes N lines (25 a submission) with one SQL
statement, times COPY of the export's own SELECT read to the end (the baseline), then times
`GET /api/v1/exports/detail.csv` read to the end through the app in this process, and prints both,
the ratio and the peak memory the export added. Not a test: it prints figures.

    .venv/bin/python -m bench.exports --xlsx [--lines 200000]

With ``--xlsx`` it seeds N lines that group into N summary rows (every submission on its own day
and specialty) and measures, with tracemalloc, the peak Python memory of a full-detail
`summary.xlsx` by day, specialty, measure, sex and age band: built whole in memory from the
summary service (openpyxl, as before) and streamed from the cursor (XlsxWriter, the route).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time
import tracemalloc
import uuid

from sqlalchemy import text


def _seed(lines: int, spread: bool = False) -> None:
    from fieldsvc.extensions import db
    from tests.factories import make_areas, make_caravan

    make_areas()
    caravan = make_caravan(first_day=dt.date(2026, 10, 1), last_day=dt.date(2026, 10, 3))
    db.session.commit()
    submissions = lines // 25
    db.session.execute(text(
        "INSERT INTO submission (id, caravan_id, review_status, created_at, updated_at) "
        "SELECT md5(g::text || :salt), :caravan, 'approved', now(), now() "
        "FROM generate_series(1, :n) g"), {"caravan": caravan.id, "n": submissions,
                                            "salt": uuid.uuid4().hex})
    db.session.execute(text(
        "INSERT INTO submission_version (submission_id, number, caravan_id, day, specialty_code, "
        "content_hash, created_at) SELECT id, 1, caravan_id, DATE '2026-10-01' + (abs(hashtext(id)) "
        "% 3), (ARRAY['GEN','OPH','PED','GYN'])[1 + abs(hashtext(id)) % 4], id, now() "
        "FROM submission") if not spread else text(
        "INSERT INTO submission_version (submission_id, number, caravan_id, day, specialty_code, "
        "content_hash, created_at) SELECT id, 1, caravan_id, DATE '2020-01-01' + (n % 2000), "
        "(ARRAY['GEN','OPH','PED','GYN','DEN'])[1 + (n / 2000) % 5], id, now() "
        "FROM (SELECT id, caravan_id, (row_number() OVER (ORDER BY id) - 1)::int AS n FROM submission) s"))
    db.session.execute(text(
        "UPDATE submission s SET current_version_id = v.id FROM submission_version v "
        "WHERE v.submission_id = s.id"))
    db.session.execute(text(
        "INSERT INTO tally_line (version_id, measure_code, sex, age_band, condition, count) "
        "SELECT v.id, (ARRAY['consultations','referrals','procedures','glasses','medicines'])"
        "[1 + g % 5], (ARRAY['F','M'])[1 + g % 2], "
        "(ARRAY['0-4','5-14','15-24','25-49','50-64','65+'])[1 + g % 6], NULL, 1 + g % 40 "
        "FROM submission_version v, generate_series(0, 24) g"))
    db.session.commit()


XLSX_QUERY = "by=day,specialty,measure,sex,age_band"


def _xlsx_peaks(app, headers: dict[str, str]) -> None:
    from fieldsvc.exports import formats, routes, services
    from fieldsvc.insights import services as insights
    from fieldsvc.insights.queries import SummaryQuery
    from fieldsvc.security import Principal

    query = SummaryQuery(by=XLSX_QUERY[3:].split(","))
    with app.test_request_context():
        admin = Principal(role="admin")
        tracemalloc.start()
        started = time.perf_counter()
        result = insights.summary(query, admin)  # what the route did before: a list, then a file
        export = services.SummaryExport(
            query=query, columns=services.summary_columns(query), rows=result.rows,
            row_count=result.row_count, full_detail=True, filename="x.xlsx", result=result)
        size = len(formats.xlsx_bytes(export.columns, list(export.rows), routes._about(export)))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"in memory (before): {result.row_count:,} rows, {size / 1e6:.1f} MB of XLSX in "
          f"{elapsed:.1f} s, peak Python memory {peak / 2**20:.0f} MiB")
    client = app.test_client()
    tracemalloc.start()
    started = time.perf_counter()
    size = 0
    with client:
        response = client.get(f"/api/v1/exports/summary.xlsx?{XLSX_QUERY}", headers=headers,
                              buffered=False)
        assert response.status_code == 200 and response.is_streamed, response.status_code
        for chunk in response.response:
            size += len(chunk)
        response.close()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"streamed (after): GET /api/v1/exports/summary.xlsx?{XLSX_QUERY}: {size / 1e6:.1f} MB "
          f"in {elapsed:.1f} s, peak Python memory {peak / 2**20:.0f} MiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=None)
    parser.add_argument("--xlsx", action="store_true",
                        help="peak memory of a full-detail summary.xlsx, before and after")
    args = parser.parse_args(argv)
    if args.lines is None:
        args.lines = 200_000 if args.xlsx else 1_000_000
    if os.environ.get("BENCH_SMOKE"):  # make bench-smoke: the same run, small
        args.lines = min(args.lines, 20_000)
    server = os.environ.get("FIELDSVC_BENCH_POSTGRES_URL") or os.environ.get(
        "FIELDSVC_TEST_POSTGRES_URL")
    if not server:
        print("exports: set FIELDSVC_TEST_POSTGRES_URL (or FIELDSVC_BENCH_POSTGRES_URL)")
        return
    os.environ["FIELDSVC_TEST_POSTGRES_URL"] = server
    from tests.conftest import throwaway_postgres

    databases = throwaway_postgres("fieldsvc_bench_exports")
    url = next(databases)
    try:
        from fieldsvc import create_app
        from fieldsvc.exports.services import DetailQuery, detail_statement
        from fieldsvc.extensions import db
        from tests.factories import auth, make_user

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
        with app.app_context():
            from flask_migrate import upgrade

            from fieldsvc.catalog.services import ensure_catalog

            upgrade()
            ensure_catalog()
            db.session.commit()
            started = time.perf_counter()
            _seed(args.lines, spread=args.xlsx)
            print(f"seeded {args.lines:,} lines in {time.perf_counter() - started:.1f} s")
            headers = auth(make_user("admin"))
            db.session.commit()
        if args.xlsx:
            _xlsx_peaks(app, headers)
            with app.app_context():
                db.engine.dispose()
            return
        with app.app_context():
            connection = db.session.connection()
            sql = str(detail_statement(DetailQuery(), None).compile(
                dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
            driver = connection.connection.driver_connection
            started = time.perf_counter()
            size = 0
            with driver.cursor() as cursor, cursor.copy(
                    f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    size += len(block)
            baseline = time.perf_counter() - started
            db.session.commit()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        client = app.test_client()
        started = time.perf_counter()
        exported = 0
        with client:
            response = client.get("/api/v1/exports/detail.csv", headers=headers, buffered=False)
            for chunk in response.response:
                exported += len(chunk)
            response.close()
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"COPY of the export's SELECT: {baseline:.2f} s ({size / 1e6:.0f} MB)")
        print(f"GET /api/v1/exports/detail.csv: {elapsed:.2f} s ({exported / 1e6:.0f} MB), "
              f"peak memory {peak / 1024:.0f} MB (+{(peak - before) / 1024:.0f} MB during export)")
        print(f"ratio {baseline / elapsed:.2f} x COPY (target >= 0.5)")
        with app.app_context():
            db.engine.dispose()
    finally:
        databases.close()


if __name__ == "__main__":
    main()
