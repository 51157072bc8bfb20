"""Ingest: 24-line submissions per second through gunicorn on PostgreSQL, as a ratio.

    FIELDSVC_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.ingest [--seconds 10] [--connections 32]

ingest >= 0.35 x the same gunicorn answering a trivial endpoint with the same
body, PostgreSQL with synchronous commit, 32 connections, p99 <= 50 ms. In one run it:

1. creates a throw-away PostgreSQL database (from FIELDSVC_BENCH_POSTGRES_URL, else
   FIELDSVC_TEST_POSTGRES_URL), migrates it and adds a caravan in Zagora with many enrolled
   volunteers (each request uses the next device token, as a field of phones would: one
   volunteer sending thousands of tallies a day is not what the service is built for);
2. starts ``gunicorn -c gunicorn.conf.py bench.trivial:app`` (the baseline: parse the JSON body,
   answer 201) and measures it; then ``gunicorn -c gunicorn.conf.py wsgi:app`` (fieldsvc) with the
   same settings and the same bodies (each with a new UUID) and measures it;
3. prints throughput, p50 and p99 latency of both, the ratio, and checks that every 201 is stored.

The load generator is ``wrk`` with a Lua script when it is installed (``apt-get install wrk``:
light enough to leave the server its cores), else Python processes with keep-alive
``http.client`` connections (which take CPU from the server on a small machine: the ratio is
still meaningful, the absolute figures are lower). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from bench.figures import figure
from bench.gunicorn import Gunicorn, free_port

PATH = "/api/v1/submissions"
VOLUNTEERS = 2000
TARGET_RATIO = 0.35


# --- the data ---------------------------------------------------------------------------------

def lines24() -> list[dict[str, Any]]:
    """An ophthalmology day: consultations and procedures for each sex and age band (24 lines)."""
    bands = ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")
    return [{"measure": measure, "sex": sex, "age_band": band, "count": 3 + index % 9}
            for index, (measure, sex, band) in enumerate(
                (m, s, b) for m in ("consultations", "procedures") for s in ("F", "M")
                for b in bands)]


def prepare(url: str) -> tuple[int, list[str], dt.date]:
    """Migrate; a caravan in Zagora and VOLUNTEERS enrolled devices: (caravan id, tokens, day)."""
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from fieldsvc import create_app
    from fieldsvc.areas.models import Area
    from fieldsvc.caravans.models import Caravan, CaravanSpecialty, Enrollment
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db
    from fieldsvc.security import token_digest
    from fieldsvc.tallies.services import morocco_today

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})
    day = morocco_today() - dt.timedelta(days=1)
    with app.app_context():
        upgrade()
        ensure_catalog()
        db.session.execute(insert(Area), [
            {"code": "08", "level": "region", "parent_code": None, "region_code": "08",
             "province_code": None, "name_fr": "Drâa-Tafilalet", "name_ar": "درعة تافيلالت",
             "search_text": "draa tafilalet", "population_legal": 1655623, "lat": 31.0,
             "lon": -5.5},
            {"code": "08.587", "level": "province", "parent_code": "08", "region_code": "08",
             "province_code": "08.587", "name_fr": "Zagora", "name_ar": "زاكورة",
             "search_text": "zagora", "population_legal": 321325, "lat": 30.33, "lon": -5.84},
            {"code": "08.587.01.13", "level": "commune", "parent_code": "08.587",
             "region_code": "08", "province_code": "08.587", "name_fr": "Zagora",
             "name_ar": "زاكورة", "search_text": "zagora", "population_legal": 40069,
             "lat": 30.33, "lon": -5.84},
        ])
        caravan = Caravan(title="Caravane de Zagora (bench)", commune_code="08.587.01.13",
                          region_code="08", first_day=day, last_day=day + dt.timedelta(days=1),
                          status="active", join_code="BENCH234")
        db.session.add(caravan)
        db.session.flush()
        db.session.add(CaravanSpecialty(caravan_id=caravan.id, specialty_code="OPH"))
        tokens = [secrets.token_urlsafe(24) for _ in range(VOLUNTEERS)]
        db.session.execute(insert(Enrollment), [
            {"caravan_id": caravan.id, "display_name": f"Dr {n}", "specialty_code": "OPH",
             "token_hash": token_digest(token)} for n, token in enumerate(tokens)])
        db.session.commit()
        caravan_id = caravan.id
        db.session.remove()
        db.engine.dispose()
    return caravan_id, tokens, day


def body_template(caravan_id: int, day: dt.date) -> str:
    """The JSON body with ``@ID@`` where each request puts a fresh UUID."""
    return json.dumps({"id": "@ID@", "caravan_id": caravan_id, "day": day.isoformat(),
                       "specialty": "OPH", "lines": lines24()}, separators=(",", ":"))


# --- the server -------------------------------------------------------------------------------

# The launcher is bench.gunicorn's, shared with tests/test_crash.py.


# --- load with wrk ------------------------------------------------------------------------------

WRK_SCRIPT = """
local template = [[@TEMPLATE@]]
local tokens = {@TOKENS@}
local nonce = "@NONCE@"
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
end

function request()
  counter = counter + 1
  local id = string.format("%s-%04x-4000-8000-%012x", nonce, tid, counter)
  local body = string.gsub(template, "@ID@", id)
  local token = tokens[((tid * 7919 + counter) % #tokens) + 1]
  return wrk.format("POST", "@PATH@", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    "RESULT {\\"requests\\": %d, \\"duration_us\\": %d, \\"non2xx\\": %d, " ..
    "\\"socket_errors\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d}\\n",
    summary.requests, summary.duration, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(port: int, template: str, tokens: list[str], seconds: float, connections: int,
            folder: Path) -> dict[str, float]:
    script = folder / f"ingest-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(
        WRK_SCRIPT.replace("@TEMPLATE@", template).replace("@PATH@", PATH)
        .replace("@NONCE@", uuid.uuid4().hex[:8])
        .replace("@TOKENS@", ",".join(f'"{token}"' for token in tokens)))
    threads = max(1, min(2, connections))
    output = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
         "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    line = next(text for text in output.splitlines() if text.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    duration = result["duration_us"] / 1e6
    return {"requests": result["requests"], "ok": result["requests"] - result["non2xx"],
            "errors": result["non2xx"] + result["socket_errors"], "seconds": duration,
            "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000}


# --- load with Python (when wrk is missing) -----------------------------------------------------

def _python_worker(args: tuple[int, str, list[str], float, int, int]) -> tuple[int, int, list]:
    import threading

    port, template, tokens, seconds, threads, seed = args
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: list[float] = []
        counter = 0
        while time.monotonic() < stop:
            counter += 1
            token = tokens[(seed * 7919 + number * 104729 + counter) % len(tokens)]
            body = template.replace("@ID@", str(uuid.uuid4())).encode()
            started = time.perf_counter()
            try:
                connection.request("POST", PATH, body=body, headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
                response = connection.getresponse()
                response.read()
                ok = response.status in (200, 201)
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                ok = False
            mine.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(latencies), errors[0], latencies


def run_python(port: int, template: str, tokens: list[str], seconds: float, connections: int,
               folder: Path) -> dict[str, float]:
    processes = max(1, min(4, connections))
    per = [connections // processes + (1 if n < connections % processes else 0)
           for n in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_python_worker, [(port, template, tokens, seconds, threads, n)
                                            for n, threads in enumerate(per)])
    latencies = sorted(value for _, _, values in results for value in values)
    requests = sum(count for count, _, _ in results)
    errors = sum(error for _, error, _ in results)
    return {"requests": requests, "ok": requests - errors, "errors": errors,
            "seconds": seconds,  # each thread sends until its deadline
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}


# --- the run ------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _process_tree(root: int) -> list[int]:
    """A process and its descendants (gunicorn's master and workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


class CpuMeter:
    """CPU seconds spent by the server's processes and by the PostgreSQL backends of the
    benchmark's database over a window: on a shared machine, a cost per submission that other
    work moves much less than the rate (Linux only; zeros elsewhere)."""

    def __init__(self, server: Gunicorn, plain_url: str | None) -> None:
        self.server, self.plain_url = server, plain_url
        self.start: dict[str, dict[int, float]] = {}

    def _backends(self) -> list[int]:
        if self.plain_url is None:
            return []
        import psycopg

        with psycopg.connect(self.plain_url, autocommit=True) as conn:
            return [pid for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")]

    def _sample(self) -> dict[str, dict[int, float]]:
        root = self.server.process.pid if self.server.process is not None else 0
        return {"app": {pid: _cpu_seconds(pid) for pid in _process_tree(root)},
                "database": {pid: _cpu_seconds(pid) for pid in self._backends()}}

    def __enter__(self) -> CpuMeter:
        self.start = self._sample()
        return self

    def __exit__(self, *exc: Any) -> None:
        end = self._sample()
        # A backend or worker that started during the window counts from zero.
        self.used = {side: sum(max(0.0, value - self.start[side].get(pid, 0.0))
                               for pid, value in end[side].items()) for side in end}


def measure(server: Gunicorn, template: str, tokens: list[str], seconds: float,
            connections: int, folder: Path, load: Any,
            plain_url: str | None = None) -> dict[str, float]:
    warm = load(server.port, template, tokens, min(3.0, seconds), connections, folder)
    with CpuMeter(server, plain_url) as cpu:
        result = load(server.port, template, tokens, seconds, connections, folder)
    result["per_second"] = result["ok"] / result["seconds"]
    result["acknowledged"] = warm["ok"] + result["ok"]
    done = max(1, result["requests"])
    result["app_cpu_ms"] = cpu.used["app"] * 1000 / done
    result["db_cpu_ms"] = cpu.used["database"] * 1000 / done
    return result


def report(label: str, result: dict[str, float]) -> None:
    print(f"  {label:<32} {result['per_second']:8.0f} /s   p50 {result['p50_ms']:6.1f} ms   "
          f"p99 {result['p99_ms']:6.1f} ms   ({result['ok']:.0f} ok, {result['errors']:.0f} "
          f"errors in {result['seconds']:.1f} s)", flush=True)
    print(f"  {'':<32} CPU per request: {result['app_cpu_ms']:.2f} ms gunicorn + "
          f"{result['db_cpu_ms']:.2f} ms PostgreSQL", flush=True)


def run(url: str, seconds: float, connections: int) -> dict[str, Any]:
    import psycopg

    caravan_id, tokens, day = prepare(url)
    template = body_template(caravan_id, day)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        synchronous = conn.execute("SHOW synchronous_commit").fetchone()[0]
    use_wrk = shutil.which("wrk") is not None and not os.environ.get("BENCH_PYTHON_LOAD")
    load = run_wrk if use_wrk else run_python
    print(f"ingest: 24-line submissions, {connections} connections, {seconds:.0f} s each, "
          f"load from {'wrk' if use_wrk else 'Python http.client'}, PostgreSQL "
          f"synchronous_commit={synchronous}, {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Gunicorn("bench.trivial:app", url, free_port(), folder / "trivial.log") as server:
            baseline = measure(server, template, tokens, seconds, connections, folder, load)
            workers = server.workers()
        report(f"baseline (trivial, {workers})", baseline)
        with Gunicorn("wsgi:app", url, free_port(), folder / "fieldsvc.log") as server:
            ingest = measure(server, template, tokens, seconds, connections, folder, load,
                             plain)
        report("fieldsvc POST /api/v1/submissions", ingest)
        if ingest["errors"]:
            log = (folder / "fieldsvc.log").read_text(errors="replace")
            errors = [line for line in log.splitlines() if '" 2' not in line][-5:]
            print("  some requests failed; last log lines:\n    " + "\n    ".join(errors))
    with psycopg.connect(plain) as conn:
        stored = conn.execute("SELECT count(*) FROM submission").fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM tally_line").fetchone()[0]
    ratio = ingest["per_second"] / baseline["per_second"]
    cost = ingest["app_cpu_ms"] + ingest["db_cpu_ms"]
    if cost and baseline["app_cpu_ms"]:
        # What the ratio would be if both sides were bound by these CPU costs alone.
        print(f"  CPU cost ratio (baseline's CPU per request / fieldsvc's): "
              f"{baseline['app_cpu_ms'] / cost:.2f}")
    verdict = "meets" if ratio >= TARGET_RATIO and ingest["p99_ms"] <= 50 else "misses"
    print(f"  ratio fieldsvc / baseline: {ratio:.2f} (target >= {TARGET_RATIO}, p99 <= 50 ms: "
          f"{verdict} the target)")
    # Requests still in flight when the load generator stops are stored but not counted.
    lost = "" if stored >= ingest["acknowledged"] else "  FEWER THAN ACKNOWLEDGED"
    print(f"  stored: {stored} submissions ({lines} tally lines) for "
          f"{ingest['acknowledged']:.0f} acknowledged, warm-up included{lost}")
    figure(f"ingest: 24-line submissions, {connections} connections",
           f"{ingest['per_second']:.0f} /s  p99 {ingest['p99_ms']:.0f} ms",
           baseline=f"trivial endpoint {baseline['per_second']:.0f} /s", ratio=ratio,
           target=f"ratio >= {TARGET_RATIO} and p99 <= 50 ms", meets=verdict == "meets")
    figure("ingest: stored >= acknowledged", f"{stored} stored",
           baseline=f"{ingest['acknowledged']:.0f} acknowledged",
           target="stored >= acknowledged", meets=not lost)
    return {"baseline": baseline, "ingest": ingest, "ratio": ratio, "stored": stored,
            "cpu_ratio": baseline["app_cpu_ms"] / cost if cost else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv if argv is not None else [])
    if os.environ.get("BENCH_SMOKE"):  # make bench-smoke: the same run, briefly
        args.seconds = min(args.seconds, 2)
    admin = (os.environ.get("FIELDSVC_BENCH_POSTGRES_URL")
             or os.environ.get("FIELDSVC_TEST_POSTGRES_URL"))
    if not admin:
        print(textwrap.dedent("""\
            ingest: skipped (PostgreSQL only): set FIELDSVC_BENCH_POSTGRES_URL or
            FIELDSVC_TEST_POSTGRES_URL to a URL that may create databases."""))
        return
    import psycopg

    plain = admin.replace("postgresql+psycopg://", "postgresql://")
    name = f"fieldsvc_bench_ingest_{os.getpid()}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base, _, _ = plain.rpartition("/")
        run(f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}", args.seconds,
            args.connections)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(sys.argv[1:])
