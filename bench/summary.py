"""Summaries, needs and plans at scale through the API, against a plain GROUP BY in the same run.

    .venv/bin/python -m bench.summary                      # 1 M tally lines (BENCH_LINES)
    .venv/bin/python -m bench.run_all summary              # 1 M, then 10 M (as `make bench`)
    BENCH_LINES=10000000 .venv/bin/python -m bench.summary # 10 M (long: about 20 min to load)
    BENCH_SMOKE=1 .venv/bin/python -m bench.summary        # 20,000 lines, seconds
    BENCH_DATABASE=name .venv/bin/python -m bench.summary  # reuse a loaded database, kept

``BENCH_DATABASE`` names a database on the benchmark server that ``bench.load.load_season`` loaded
earlier (e.g. by ``BENCH_KEEP=1``, which keeps the one this run loads and prints its name): it is
migrated to head, its rollups rebuilt if a migration emptied them, and it is not dropped.

Loads a season with COPY (``bench.load``: ~3,000 caravans over three years in every region, ~2 %
rejected, some amended), rebuilds the summary rollup, serves it with gunicorn (``wsgi:app``),
then times each request `BENCH_REPEAT` times (p50, p95) against the same answer written by hand
as one GROUP BY over the counted raw lines (current version, not rejected), run through psycopg:

- ``summary?by=province,specialty`` for the last full year (an admin);
- ``summary?by=region,sex,age_band`` (an admin);
- a coordinator's ``summary?by=region,commune,month&region=R``;
- a planner's view of its organization's caravans, ``by=region,specialty&organization=O``
  (the day rollup, through its caravans);
- ``needs?specialty=OPH`` for all communes and ``POST plans`` (caravan-days from the day rollup);
- the same from a second server with ``SUMMARY_ROLLUP=0`` (the raw lines, as before); not at
  10 M lines unless ``BENCH_RAW_REPEAT`` says how many requests (each takes 12–53 s there).

Under ``bench.run_all`` (``make bench``) without ``BENCH_LINES`` it loads and measures 1 M lines,
then 10 M lines (the 10 M load takes several minutes). Each rollup summary, needs and plans print
a ``FIGURE`` line (``bench.figures``).

Each answer's total is checked against its baseline's. Target (DESIGN.md): summary p95 ≤ 150 ms at
10 M lines, faster than the plain GROUP BY.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.figures import figure, scale
from bench.gunicorn import Gunicorn, free_port
from bench.load import bench_database, kept_database, load_season, loaded_season

TARGET_P95_MS = 150.0

COUNTED = """
FROM tally_line tl
JOIN submission_version sv ON sv.id = tl.version_id
JOIN submission s ON s.current_version_id = sv.id AND s.review_status <> 'rejected'
JOIN caravan c ON c.id = sv.caravan_id
LEFT JOIN site ON site.id = sv.site_id
"""
COMMUNE = "coalesce(site.commune_code, c.commune_code)"


def smoke() -> bool:
    return bool(os.environ.get("BENCH_SMOKE"))


def _percentiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _time(function: Any, repeat: int) -> tuple[float, float, Any]:
    result = function()  # warm
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - start)
    p50, p95 = _percentiles(timings)
    return p50, p95, result


def _users(url: str) -> dict[str, Any]:
    """An admin, a coordinator of the busiest region and a planner of the busiest organization."""
    from sqlalchemy import func, select

    from fieldsvc import create_app
    from fieldsvc.accounts.models import Organization
    from fieldsvc.accounts.services import create_user, issue_token
    from fieldsvc.caravans.models import Caravan, caravan_organizer
    from fieldsvc.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})
    with app.app_context():
        region = db.session.execute(select(Caravan.region_code).group_by(Caravan.region_code)
                                    .order_by(func.count().desc()).limit(1)).scalar_one()
        organization = db.session.execute(
            select(caravan_organizer.c.organization_id).group_by(caravan_organizer.c.organization_id)
            .order_by(func.count().desc()).limit(1)).scalar_one()
        run = os.getpid()  # a reused database keeps earlier runs' users
        admin = create_user(f"bench-admin-{run}", "bench password 1", "admin")
        # Plans are limited per user and minute: the raw-lines server's needs and plans get their
        # own admin.
        raw_admin = create_user(f"bench-admin-raw-{run}", "bench password 1", "admin")
        coordinator = create_user(f"bench-coordinator-{run}", "bench password 1", "coordinator",
                                  region_codes=[region])
        planner = create_user(f"bench-planner-{run}", "bench password 1", "planner",
                              organization=db.session.get(Organization, organization))
        headers = {name: {"Authorization": f"Bearer {issue_token(user)[0]}"}
                   for name, user in (("admin", admin), ("raw admin", raw_admin),
                                      ("coordinator", coordinator),
                                      ("planner", planner))}
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"region": region, "organization": organization, "headers": headers}


def _get(server: Gunicorn, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
    status, body = server.request("GET", f"{path}?{urlencode(params)}", None, headers, timeout=300)
    if status != 200:
        raise RuntimeError(f"{path} {params}: {status} {body[:300]!r}")
    return json.loads(body)


def _needs_and_plans(server: Gunicorn, headers: dict[str, str], repeat: int, source: str,
                     size: str | None) -> None:
    """Time needs and plans; `size` (rollup server only) makes each a figure."""
    p50, p95, body = _time(lambda: _get(server, "/api/v1/needs", {"specialty": "OPH"}, headers),
                           max(3, repeat // 4))
    print(f"  needs?specialty=OPH, {len(body['rows']):,} communes [{source}]: p50 {p50:.0f} ms, "
          f"p95 {p95:.0f} ms (no target in DESIGN.md)", flush=True)
    if size:
        figure(f"summary {size}: needs?specialty=OPH, {len(body['rows']):,} communes",
               f"p50 {p50:.0f} ms  p95 {p95:.0f} ms")
    plan = json.dumps({"base": body["rows"][0]["code"], "radius_km": 150, "days": 3,
                       "team": {"OPH": 2, "GEN": 2, "PED": 1}}).encode()

    def plans() -> None:
        status, answer = server.request("POST", "/api/v1/plans", plan,
                                        {**headers, "Content-Type": "application/json"},
                                        timeout=300)
        if status != 200:
            raise RuntimeError(f"plans: {status} {answer[:300]!r}")

    p50, p95, _ = _time(plans, max(3, repeat // 4))
    print(f"  POST plans (150 km, 3 days, from the neediest commune) [{source}]: p50 {p50:.0f} "
          f"ms, p95 {p95:.0f} ms (no target in DESIGN.md)", flush=True)
    if size:
        figure(f"summary {size}: POST plans, 150 km, 3 days", f"p50 {p50:.0f} ms  p95 {p95:.0f} ms")


def run(lines: int, repeat: int) -> None:
    import psycopg

    reuse = os.environ.get("BENCH_DATABASE")
    database = kept_database(reuse) if reuse else bench_database(
        "summary", keep=bool(os.environ.get("BENCH_KEEP")))
    with database as url:
        if reuse:
            print(f"summary: reusing the loaded database {reuse}", flush=True)
            season = loaded_season(url)
        else:
            print(f"summary: loading about {lines:,} tally lines with COPY into "
                  f"{url.rpartition('/')[2]}", flush=True)
            season = load_season(url, lines=lines, caravans=min(3000, max(100, lines // 200)))
        people = _users(url)
        year = season.last_day.year - 1
        start, end = f"{year}-01-01", f"{year}-12-31"
        region, organization = people["region"], people["organization"]
        cases = [
            ("province × specialty, one year", "admin",
             {"by": "province,specialty", "from": start, "to": end},
             f"SELECT substr({COMMUNE}, 1, 6), sv.specialty_code, sum(tl.count) {COUNTED} "
             f"WHERE tl.measure_code = 'consultations' AND sv.day BETWEEN '{start}' AND '{end}' "
             "GROUP BY 1, 2"),
            ("region × sex × age band", "admin", {"by": "region,sex,age_band"},
             f"SELECT substr({COMMUNE}, 1, 2), tl.sex, tl.age_band, sum(tl.count) {COUNTED} "
             "WHERE tl.measure_code = 'consultations' GROUP BY 1, 2, 3"),
            ("coordinator: region × commune × month", "coordinator",
             {"by": "region,commune,month", "region": region},
             f"SELECT substr({COMMUNE}, 1, 2), {COMMUNE}, to_char(sv.day, 'YYYY-MM'), "
             f"sum(tl.count) {COUNTED} WHERE tl.measure_code = 'consultations' "
             f"AND substr({COMMUNE}, 1, 2) = '{region}' GROUP BY 1, 2, 3"),
            ("planner: own organization, region × specialty", "planner",
             {"by": "region,specialty", "organization": str(organization)},
             f"SELECT substr({COMMUNE}, 1, 2), sv.specialty_code, sum(tl.count) {COUNTED} "
             "WHERE tl.measure_code = 'consultations' AND EXISTS (SELECT 1 FROM "
             f"caravan_organizer co WHERE co.caravan_id = c.id AND co.organization_id = "
             f"{organization}) GROUP BY 1, 2"),
        ]
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        baselines = {}
        with psycopg.connect(plain) as conn:
            for label, _, _, sql in cases:
                p50, p95, rows = _time(lambda sql=sql: conn.execute(sql).fetchall(), repeat)
                baselines[label] = (p50, p95, sum(row[-1] for row in rows))
            conn.rollback()
        size = scale(season.lines if reuse else lines)  # as asked: "1 M lines", "10 M lines"
        counted = f"{season.counted_lines:,} counted of {season.lines:,} stored lines"
        print(f"  season: {season.caravans:,} caravans, {season.submissions:,} submissions, "
              f"{counted}; rollups {season.rollup_rows:,} rows by day, {season.month_rows:,} by month",
              flush=True)
        # BENCH_RAW_REPEAT: requests to the raw-lines server (seconds each at 10 M; 0: none, e.g.
        # to rerun the rollups only). By default as many as the rollups', none from 10 M lines.
        raw_repeat = int(os.environ.get("BENCH_RAW_REPEAT",
                                        0 if smoke() or season.lines >= 10_000_000 else repeat))
        with tempfile.TemporaryDirectory() as tmp:
            for rollup_on in (True, False) if raw_repeat else (True,):
                env = {"RELEASE_REFRESH_SECONDS": "0", "ROLLUP_FOLD_SECONDS": "0",
                       "WEB_CONCURRENCY": "2",
                       "SUMMARY_ROLLUP": "1" if rollup_on else "0"}
                log = Path(tmp) / f"fieldsvc-{rollup_on}.log"
                times = repeat if rollup_on else raw_repeat
                with Gunicorn("wsgi:app", url, free_port(), log, **env) as server:
                    source = "rollup" if rollup_on else "raw lines (SUMMARY_ROLLUP=0)"
                    for label, who, params, _ in cases:
                        headers = people["headers"][who]
                        p50, p95, body = _time(lambda params=params, headers=headers: _get(
                            server, "/api/v1/summary", params, headers), times)
                        b50, b95, expected = baselines[label]
                        exact = "equal" if body["total"] == expected else (
                            f"DIFFERENT ({body['total']} vs {expected})")
                        meets = p95 <= TARGET_P95_MS and p95 < b95 and body["total"] == expected
                        verdict = "meets" if meets else "misses"
                        print(f"  summary {label} [{source}]: p50 {p50:.0f} ms, p95 {p95:.0f} ms;"
                              f" GROUP BY p50 {b50:.0f} ms, p95 {b95:.0f} ms; ratio p95 "
                              f"{p95 / b95:.2f} (target p95 <= {TARGET_P95_MS:.0f} ms and < GROUP "
                              f"BY: {verdict}); total {exact}", flush=True)
                        if rollup_on:
                            figure(f"summary {size}: {label}",
                                   f"p50 {p50:.0f} ms  p95 {p95:.0f} ms  total {exact}",
                                   baseline=f"GROUP BY p95 {b95:.0f} ms", ratio=p95 / b95,
                                   target=f"p95 <= {TARGET_P95_MS:.0f} ms and < GROUP BY",
                                   meets=meets)
                    admin = people["headers"]["admin" if rollup_on else "raw admin"]
                    _needs_and_plans(server, admin, times, source,
                                     size if rollup_on else None)
        print(f"  scale: {counted}, PostgreSQL, {os.cpu_count()} CPUs, "
              f"{dt.date.today().isoformat()}", flush=True)


def main(alone: bool = False) -> None:
    """Run at each size: BENCH_LINES, else 1 M alone and 1 M then 10 M under run_all."""
    if smoke():
        sizes = [20_000]
    elif os.environ.get("BENCH_LINES") or os.environ.get("BENCH_DATABASE"):
        sizes = [int(os.environ.get("BENCH_LINES", "1000000"))]
    else:
        sizes = [1_000_000] if alone else [1_000_000, 10_000_000]
    repeat = 5 if smoke() else int(os.environ.get("BENCH_REPEAT", "20"))
    for lines in sizes:
        run(lines, repeat)


if __name__ == "__main__":
    main(alone=True)
