"""Nothing acknowledged is ever lost: SIGKILL a whole real gunicorn while 32 phones send.

On PostgreSQL (gunicorn with two workers, as in production) and on SQLite (one worker with
threads, as `make run`): a fresh, migrated database; 32 threads send submissions with random
lines; once some are acknowledged, the whole server — master and workers, not only a worker —
is killed with SIGKILL (no graceful shutdown), then gunicorn is started again. Every
submission that was not acknowledged is sent again, and so are some that were. Then:

* every acknowledged submission (201, or 200 for a replay) is stored with exactly its lines;
* each submission has one version and the sum of all counts is what was sent (nothing doubled);
* a retry after the crash answers 200 with the same body as the first answer.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bench.gunicorn import Gunicorn, free_port
from tests.conftest import throwaway_postgres

SUBMISSIONS = 240
SENDERS = 32
KILL_AFTER_ACKS = 60


@pytest.fixture(params=["postgresql", "sqlite"])
def crash_database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A throw-away database of its own (the server writes to it from outside)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crash.sqlite3'}"
    else:
        yield from throwaway_postgres("fieldsvc_crash")


def _prepare(url: str) -> tuple[int, dict[str, str], dt.date]:
    """Migrate, then a caravan in Zagora and an enrolled volunteer: (caravan id, header, day)."""
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db
    from fieldsvc.tallies.services import morocco_today
    from tests.factories import make_areas, make_caravan, make_enrollment

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "crash", "TESTING": True})
    day = morocco_today() - dt.timedelta(days=1)
    with app.app_context():
        upgrade()
        ensure_catalog()
        make_areas()
        caravan = make_caravan(first_day=day, last_day=day + dt.timedelta(days=1),
                               join_code="CRASH234")
        _, header = make_enrollment(caravan)
        db.session.commit()
        caravan_id = caravan.id
        db.session.remove()
        db.engine.dispose()
    return caravan_id, header, day


def _server(url: str, log: Path) -> Gunicorn:
    """gunicorn with two workers as in production (one on SQLite, whatever WEB_CONCURRENCY
    says: gunicorn.conf.py); `timeout` ends it should this test die."""
    return Gunicorn("wsgi:app", url, free_port(), log, lifetime=120, SECRET_KEY="crash",
                    WEB_CONCURRENCY="2", GUNICORN_THREADS="4", GUNICORN_TIMEOUT="30")


def _tally(rng: random.Random, caravan_id: int, day: dt.date) -> dict[str, Any]:
    keys = [(m, s, b, c) for m in ("consultations", "procedures", "referrals")
            for s in ("F", "M") for b in ("0-4", "15-24", "50-64", "65+") for c in (None, "VII")]
    lines = [{"measure": m, "sex": s, "age_band": b, "condition": c, "count": rng.randint(0, 40)}
             for m, s, b, c in rng.sample(keys, rng.randint(1, 24))]
    return {"id": str(uuid.uuid4()), "caravan_id": caravan_id, "day": day.isoformat(),
            "specialty": rng.choice(["OPH", "GEN", "PED"]), "lines": lines}


def _connect(url: str) -> Any:
    """A plain DB-API connection to the test's database (closed on leaving the with block)."""
    from contextlib import closing

    if url.startswith("sqlite:///"):
        import sqlite3

        return closing(sqlite3.connect(url[len("sqlite:///"):]))
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


def _line_set(lines: list[dict[str, Any]]) -> set[tuple]:
    return {(line["measure"], line["sex"], line["age_band"], line.get("condition"),
             line["count"]) for line in lines}


def test_nothing_acknowledged_is_lost_when_gunicorn_is_killed(
    crash_database: str, tmp_path: Path
) -> None:
    caravan_id, header, day = _prepare(crash_database)
    rng = random.Random(20261128)
    tallies = [_tally(rng, caravan_id, day) for _ in range(SUBMISSIONS)]
    headers = {**header, "Content-Type": "application/json", "Accept-Language": "en"}
    server = _server(crash_database, tmp_path / "gunicorn.log")
    acked: dict[str, tuple[int, dict[str, Any]]] = {}
    lock = threading.Lock()
    enough = threading.Event()

    def send(tally: dict[str, Any]) -> None:
        try:
            status, data = server.request("POST", "/api/v1/submissions",
                                          json.dumps(tally).encode(), headers, timeout=10)
        except (OSError, http.client.HTTPException):
            return  # not acknowledged: the phone will send it again
        assert status in (200, 201), (status, data[:500])
        with lock:
            acked[tally["id"]] = (status, json.loads(data))
            if len(acked) >= KILL_AFTER_ACKS:
                enough.set()

    try:
        server.start()
        with ThreadPoolExecutor(SENDERS) as pool:
            futures = [pool.submit(send, tally) for tally in tallies]
            assert enough.wait(timeout=60), server.log.read_text()[-3000:]
            server.kill()  # mid-stream: requests are in flight and more are queued
            for future in futures:
                future.result(timeout=60)
        before_crash = dict(acked)
        assert KILL_AFTER_ACKS <= len(before_crash) < SUBMISSIONS, len(before_crash)

        server.start()
        # The phones send again everything they have no answer for, and some they have.
        unanswered = [t for t in tallies if t["id"] not in before_crash]
        again = rng.sample([t for t in tallies if t["id"] in before_crash], 20)
        after: dict[str, tuple[int, dict[str, Any]]] = {}
        for tally in unanswered + again:
            status, data = server.request("POST", "/api/v1/submissions",
                                          json.dumps(tally).encode(), headers)
            assert status in (200, 201), (status, data[:500])
            after[tally["id"]] = (status, json.loads(data))
        for tally in again:
            status, body = after[tally["id"]]
            assert status == 200, (tally["id"], status)
            assert body == before_crash[tally["id"]][1], "a retry must get the same body"
        # Some requests in flight at the kill were committed but never answered: now a 200.
        replayed_unanswered = sum(1 for t in unanswered if after[t["id"]][0] == 200)
    finally:
        server.kill()

    with _connect(crash_database) as conn:
        stored_lines: dict[str, set[tuple]] = {}
        for sid, measure, sex, band, condition, count in conn.execute(
            "SELECT s.id, l.measure_code, l.sex, l.age_band, l.condition, l.count "
            "FROM submission s JOIN tally_line l ON l.version_id = s.current_version_id"
        ):
            stored_lines.setdefault(sid, set()).add((measure, sex, band, condition, count))
        versions = dict(conn.execute(
            "SELECT submission_id, count(*) FROM submission_version GROUP BY submission_id"))
        total = conn.execute("SELECT coalesce(sum(count), 0) FROM tally_line").fetchone()[0]
        submissions = conn.execute("SELECT count(*) FROM submission").fetchone()[0]

    for tally in tallies:  # every one was acknowledged, before or after the crash
        assert tally["id"] in before_crash or tally["id"] in after
        assert stored_lines.get(tally["id"]) == _line_set(tally["lines"]), tally["id"]
        assert versions.get(tally["id"]) == 1, tally["id"]
    assert submissions == SUBMISSIONS
    assert total == sum(line["count"] for tally in tallies for line in tally["lines"])
    print(f"crash ({crash_database.split(':')[0]}, {SENDERS} senders): "
          f"{len(before_crash)} acknowledged before SIGKILL, {len(unanswered)} resent "
          f"({replayed_unanswered} had been stored unanswered), 20 acknowledged ones resent")
