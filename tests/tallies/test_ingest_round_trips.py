"""On PostgreSQL a device's new tally costs two statements and no transaction round trips.

POST /api/v1/submissions runs on a connection in autocommit mode (tallies/lean.py for a device,
tallies/routes.py for the rest): the token's SELECT, then the one statement that writes the
submission, committed before the answer. These
tests watch the statements the driver is asked to run, and check that the connection goes back
to the pool in its usual mode, that a replay and a refusal still answer as before, and that a
request through the layered path keeps its transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from fieldsvc.extensions import db
from fieldsvc.tallies.models import Submission, TallyLine
from tests.tallies.helpers import field_setup, payload


@pytest.fixture
def statements(pg_app, monkeypatch) -> Iterator[list[tuple[str, bool]]]:
    """Each statement the driver is asked to run, through the ORM or on a raw connection (the
    lean handler's): (its first word, whether in autocommit)."""
    import psycopg

    seen: list[tuple[str, bool]] = []
    execute = psycopg.Cursor.execute

    def record(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else str(query)
        seen.append((text.split(None, 1)[0].upper(), cursor.connection.autocommit))
        return execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", record)
    yield seen


def test_a_new_tally_is_two_statements_in_autocommit(pg_app, statements):
    client = pg_app.test_client()
    caravan, _, header = field_setup()
    # The first request of a process reads the catalog's codes once (they are cached).
    assert client.post("/api/v1/submissions", json=payload(caravan),
                       headers=header).status_code == 201
    body = payload(caravan, specialty="GEN")
    statements.clear()
    answer = client.post("/api/v1/submissions", json=body, headers=header)
    assert answer.status_code == 201, answer.get_json()
    # The token, then the submission with its version, lines, flags and audit event, both in
    # autocommit (no BEGIN, no COMMIT), and no ping before them (tallies/lean.py's own pool).
    assert statements == [("SELECT", True), ("WITH", True)]
    # Committed: another connection sees all of it.
    db.session.rollback()
    assert db.session.get(Submission, body["id"]) is not None
    assert db.session.scalar(select(func.count()).select_from(TallyLine)) == 2 * len(body["lines"])

    # The connection went back to the pool in its usual mode: other routes keep transactions.
    statements.clear()
    listed = client.get("/api/v1/submissions", headers=header)
    assert listed.status_code == 200
    # (The pool's ping, ";", always runs in autocommit.)
    assert statements and all(not autocommit for word, autocommit in statements if word != ";")

    # The same id and content again: 200 with the same answer, nothing written twice.
    again = client.post("/api/v1/submissions", json=body, headers=header)
    assert again.status_code == 200
    assert again.get_json() == answer.get_json()
    # Other content under that id: 409, as before.
    other = client.post("/api/v1/submissions", json={**body, "specialty": "OPH"},
                        headers=header)
    assert other.status_code == 409
    assert other.headers["Content-Type"] == "application/problem+json"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 2
    assert db.session.scalar(select(func.count()).select_from(TallyLine)) == 2 * len(body["lines"])


def test_the_layered_path_keeps_its_transaction(pg_app, statements, monkeypatch):
    from fieldsvc.tallies import services

    monkeypatch.setattr(services, "one_statement_insert", lambda: False)
    client = pg_app.test_client()
    caravan, _, header = field_setup()
    statements.clear()
    answer = client.post("/api/v1/submissions", json=payload(caravan), headers=header)
    assert answer.status_code == 201, answer.get_json()
    assert len(statements) > 2
    assert all(not autocommit for word, autocommit in statements if word != ";")
