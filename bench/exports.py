"""Full-detail export: the detail CSV of N tally lines against PostgreSQL's own COPY, as a ratio.

    FIELDSVC_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.exports [--lines 1000000]

Target: 1 M lines to CSV at >= 0.5 x `COPY (the same SELECT) TO STDOUT`, peak memory <= 150 MB.
In one run it creates a throw-away database, writes N lines (25 a submission) with one SQL
statement, times COPY of the export's own SELECT read to the end (the baseline), then times
`GET /api/v1/exports/detail.csv` read to the end from gunicorn (``wsgi:app``, one worker), and
prints both, the ratio and the worker's peak memory during the export (Linux: its peak resident
set, VmHWM, reset just before the request). Then it times the workbook a coordinator asks for a
region's season, `summary.xlsx` by day, commune, specialty, measure, sex and age band for region
08 over the autumn, with the worker's peak memory the same way. Not a test: it prints figures
(``bench.figures``).

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
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from sqlalchemy import text

from bench.figures import figure, scale
from bench.gunicorn import Gunicorn, free_port

TARGET_MB = 150
REGION_XLSX = ("/api/v1/exports/summary.xlsx?by=day,commune,specialty,measure,sex,age_band"
               "&region=08&from=2026-09-01&to=2026-12-31")


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


def _memory_mb(pid: str, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024


def _copy_out(url: str, sql: str) -> tuple[float, int]:
    """Seconds and bytes of ``COPY (sql) TO STDOUT`` read to the end by psql, a C client reading
    as fast as curl reads the export (psycopg's Python loop over COPY's one message per line
    would make the baseline slower than the export); psycopg's loop when psql is missing."""
    copy = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    size = 0
    if shutil.which("psql"):
        with subprocess.Popen(["psql", plain, "-X", "-q", "-c", copy],
                              stdout=subprocess.PIPE) as process:
            while chunk := process.stdout.read(1 << 20):
                size += len(chunk)
        if process.returncode:
            raise RuntimeError(f"psql COPY failed ({process.returncode})")
        return time.perf_counter() - started, size
    import psycopg

    with psycopg.connect(plain) as connection, connection.cursor() as cursor, \
            cursor.copy(copy) as stream:
        for block in stream:
            size += len(block)
    return time.perf_counter() - started, size


def _read(server: Gunicorn, path: str, headers: dict[str, str]) -> tuple[float, int, float, float]:
    """GET `path` from the server's one worker, read to the end: (seconds, bytes, the worker's
    resident memory before and its peak during the request, in MB; Linux)."""
    master = server.process.pid
    worker = Path(f"/proc/{master}/task/{master}/children").read_text().split()[0]
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # 5: reset the peak resident set size
    before = _memory_mb(worker, "VmRSS")
    # curl, not Python, reads the answer: a light client leaves the server the 2 cores.
    command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
               *(f"-H{name}: {value}" for name, value in headers.items()),
               f"http://127.0.0.1:{server.port}{path}"]
    started = time.perf_counter()
    status, size = subprocess.run(command, capture_output=True, text=True, check=True,
                                  timeout=900).stdout.split()
    elapsed = time.perf_counter() - started
    if status != "200":
        raise RuntimeError(f"{path}: {status}")
    return elapsed, int(size), before, _memory_mb(worker, "VmHWM")


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
    args = parser.parse_args(argv if argv is not None else [])
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
            baseline, size = _copy_out(url, sql)
            db.session.commit()
        with tempfile.TemporaryDirectory() as tmp, Gunicorn(
                "wsgi:app", url, free_port(), Path(tmp) / "fieldsvc.log", WEB_CONCURRENCY="1",
                GUNICORN_TIMEOUT="900", RELEASE_REFRESH_SECONDS="0", ROLLUP_FOLD_SECONDS="0") as server:
            _read(server, "/api/v1/exports/detail.csv?from=2000-01-01&to=2000-01-01", headers)
            elapsed, exported, idle, peak = _read(server, "/api/v1/exports/detail.csv", headers)
            xlsx_seconds, xlsx_size, _, xlsx_peak = _read(server, REGION_XLSX, headers)
        print(f"COPY of the export's SELECT: {baseline:.2f} s ({size / 1e6:.0f} MB)")
        print(f"GET /api/v1/exports/detail.csv from gunicorn: {elapsed:.2f} s "
              f"({exported / 1e6:.0f} MB), the worker's peak memory during the export "
              f"{peak:.0f} MB ({idle:.0f} MB before it, after a warm-up request)")
        print(f"ratio {baseline / elapsed:.2f} x COPY (target >= 0.5)")
        seeded = scale(args.lines)
        figure(f"exports: detail.csv of {seeded}", f"{elapsed:.2f} s, {exported / 1e6:.0f} MB",
               baseline=f"COPY TO STDOUT {baseline:.2f} s", ratio=baseline / elapsed,
               target=">= 0.5 x COPY", meets=baseline / elapsed >= 0.5)
        figure(f"exports: detail.csv of {seeded}, peak memory of the gunicorn worker",
               f"{peak:.0f} MB (idle worker {idle:.0f} MB)", target=f"<= {TARGET_MB} MB",
               meets=peak <= TARGET_MB)
        print(f"GET {REGION_XLSX}: {xlsx_seconds:.2f} s ({xlsx_size / 1e3:.0f} KB), the worker's "
              f"peak memory {xlsx_peak:.0f} MB")
        figure(f"exports: summary.xlsx of region 08's autumn ({seeded} seeded)",
               f"{xlsx_seconds:.2f} s, {xlsx_size / 1e3:.0f} KB, peak memory {xlsx_peak:.0f} MB",
               target=f"peak memory <= {TARGET_MB} MB", meets=xlsx_peak <= TARGET_MB)
        with app.app_context():
            db.engine.dispose()
    finally:
        databases.close()


if __name__ == "__main__":
    main(sys.argv[1:])
