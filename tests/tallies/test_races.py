"""Phones retrying at once: the same submission racing must be stored exactly once."""

from __future__ import annotations

import gc
import json
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from bench.gunicorn import Gunicorn, free_port
from fieldsvc.extensions import db
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine
from tests.tallies.helpers import field_setup, payload

RACERS = 20


def _race(send, bodies):
    """Start every sender at the same moment; return their (status, body bytes)."""
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, bytes] | BaseException] = [None] * len(bodies)  # type: ignore[list-item]

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=20)
            results[index] = send(bodies[index])
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


def test_twenty_threads_racing_the_same_id_on_postgresql(pg_app: Flask):
    caravan, _, header = field_setup()
    body = payload(caravan)

    def send(one):
        with pg_app.test_client() as client:
            response = client.post("/api/v1/submissions", json=one, headers=header)
            return response.status_code, response.get_data()

    try:
        results = _race(send, [body] * RACERS)
    finally:
        # The racers opened extra pooled connections; close them rather than leave them to GC.
        db.session.remove()
        db.engine.dispose()
        gc.collect()
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (RACERS - 1) + [201], results[0]
    assert len({data for _, data in results}) == 1, "every answer must be the identical body"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 1
    assert db.session.scalar(select(func.count()).select_from(SubmissionVersion)) == 1
    assert db.session.scalar(select(func.count()).select_from(TallyLine)) == len(body["lines"])


def test_gunicorn_on_sqlite_races_without_database_is_locked(tmp_path: Path):
    from fieldsvc import create_app

    url = f"sqlite:///{tmp_path / 'race.sqlite3'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "race", "TESTING": True})
    with app.app_context():
        from flask_migrate import upgrade

        from fieldsvc.catalog.services import ensure_catalog

        upgrade()
        ensure_catalog()
        caravan, _, header = field_setup()
        same = payload(caravan)
        others = [payload(caravan, specialty=code) for code in ("GEN", "PED", "DEN", "DER")
                  for _ in range(4)]
        db.session.remove()

    log = tmp_path / "gunicorn.log"
    # gunicorn.conf.py on SQLite: one worker with 8 threads; `lifetime` ends it should this test
    # die first. /healthz may say 503 while migrations are regenerated: it answers, that is enough.
    with Gunicorn("wsgi:app", url, free_port(), log, lifetime=90, SECRET_KEY="race",
                  GUNICORN_THREADS="8", GUNICORN_TIMEOUT="60") as server:
        port = server.port

        def send(one):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/submissions", data=json.dumps(one).encode(),
                headers={**header, "Content-Type": "application/json",
                         "Accept-Language": "en"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()

        results = _race(send, [same] * RACERS + others)

        # A body over 256 KB is a 413 problem, with a length or chunked (no length).
        big = json.dumps(dict(payload(caravan), note="x" * 300_000)).encode()
        for data in (big, iter([big[:100_000], big[100_000:]])):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/submissions", data=data, method="POST",
                headers={**header, "Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=30)
                raise AssertionError("a 300 KB body was accepted")
            except urllib.error.HTTPError as error:
                assert error.code == 413, error.read()
                assert error.headers["Content-Type"] == "application/problem+json"
    output = log.read_text()
    assert "database is locked" not in output
    same_results = results[:RACERS]
    assert sorted(s for s, _ in same_results) == [200] * (RACERS - 1) + [201], same_results
    assert len({data for _, data in same_results}) == 1
    assert all(status == 201 for status, _ in results[RACERS:]), results[RACERS:]
    with app.app_context():
        ids = set(db.session.scalars(select(Submission.id)))
        assert ids == {str(uuid.UUID(b["id"])) for b in [same, *others]}
        assert db.session.scalar(select(func.count()).select_from(SubmissionVersion)) == 17
        db.session.remove()
        db.engine.dispose()
