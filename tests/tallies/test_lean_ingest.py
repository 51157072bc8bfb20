"""The lean handler of POST /api/v1/submissions (tallies/lean.py) answers as the route does.

On PostgreSQL a device's usual tally is served without the framework's layers; everything else
is declined to the whole application. These tests send the same tallies both ways (the lean
handler, then the application with the handler declining everything) and require the same
status, headers, body and stored rows; and they check that each unusual request is declined,
answered by the application as before, and that a broken connection loses nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.extensions import db
from fieldsvc.tallies import lean
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine
from tests.factories import auth, make_enrollment, make_user
from tests.tallies.helpers import field_setup, lines, payload

# What differs between two submissions sent a moment apart.
VARYING = {"id", "created_at", "updated_at", "enrollment_id"}


@pytest.fixture
def served(pg_app, monkeypatch) -> list[str]:
    """Which path served each POST: "lean", or "app" when the handler declined."""
    paths: list[str] = []
    serve = lean.serve

    def spy(app: Any, environ: dict[str, Any]) -> Any:
        response = serve(app, environ)
        paths.append("app" if response is None else "lean")
        return response

    monkeypatch.setattr(lean, "serve", spy)
    return paths


def _stored(submission_id: str) -> dict[str, Any]:
    db.session.rollback()
    submission = db.session.get(Submission, submission_id)
    version = db.session.get(SubmissionVersion, submission.current_version_id)
    stored_lines = sorted(
        (line.measure_code, line.sex, line.age_band, line.condition, line.count)
        for line in db.session.scalars(select(TallyLine).where(TallyLine.version_id == version.id)))
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "submission.create", AuditEvent.object_id == submission_id)).one()
    return {
        "submission": (submission.caravan_id, submission.review_status, submission.rolled_version_id),
        "version": (version.number, version.site_id, version.day, version.specialty_code,
                    version.content_hash, version.note, version.flags, version.entered_by_id),
        "lines": stored_lines,
        "audit": (event.actor_kind, event.object_type, event.region_code,
                  {key: value for key, value in event.detail.items()}),
    }


@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("case", ["plain", "flags", "site and note"])
def test_the_lean_answer_and_rows_are_the_routes(pg_app, served, monkeypatch, case, language):
    client = pg_app.test_client()
    caravan, _, lean_header = field_setup(specialties=("OPH",))
    _, app_header = make_enrollment(caravan, display_name="Dr Karim")
    db.session.commit()
    overrides: dict[str, Any] = {}
    if case == "plain":
        overrides = {"site_id": None}
    elif case == "flags":  # more procedures than consultations, and a specialty not planned
        overrides = {"specialty": "GEN", "lines": lines(consultations=2, procedures=9)}
    elif case == "site and note":
        overrides = {"site_id": caravan.sites[0].id, "note": "Groupe scolaire — جماعة"}
    headers = {"Accept-Language": language}

    first = client.post("/api/v1/submissions", json=payload(caravan, **overrides),
                        headers={**lean_header, **headers})
    monkeypatch.setattr(lean, "serve", lambda app, environ: served.append("app"))
    second = client.post("/api/v1/submissions", json=payload(caravan, **overrides),
                         headers={**app_header, **headers})
    assert served == ["lean", "app"]
    assert first.status_code == second.status_code == 201, (first.get_json(), second.get_json())

    def same(answer: Any) -> dict[str, Any]:
        return {key: value for key, value in answer.get_json().items() if key not in VARYING}

    assert same(first) == same(second)
    if case == "flags":
        assert {flag["code"] for flag in first.get_json()["flags"]} >= {
            "specialty_not_planned", "procedures_above_consultations"}
    # Every header the route sends, with the same value (the date aside).
    assert {key: value for key, value in first.headers.items() if key != "Date"} == {
        key: value for key, value in second.headers.items() if key != "Date"}

    lean_rows, app_rows = _stored(first.get_json()["id"]), _stored(second.get_json()["id"])
    assert lean_rows == app_rows
    assert lean_rows["audit"][3]["ip"] == "127.0.0.1"


def test_a_retry_of_a_lean_tally_answers_200_with_the_same_body(pg_app, served):
    client = pg_app.test_client()
    caravan, _, header = field_setup()
    body = payload(caravan)
    first = client.post("/api/v1/submissions", json=body, headers=header)
    again = client.post("/api/v1/submissions", json=body, headers=header)
    other = client.post("/api/v1/submissions", json={**body, "lines": lines(consultations=3)},
                        headers=header)
    # The retry and the conflict are declined by the handler (the id exists): the application
    # answers them as before.
    assert served == ["lean", "app", "app"]
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.get_json() == first.get_json()
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 1
    assert db.session.scalar(select(func.count()).select_from(TallyLine)) == len(body["lines"])


def test_what_the_handler_declines_the_application_answers(pg_app, served):
    client = pg_app.test_client()
    caravan, enrollment, header = field_setup()
    coordinator = auth(make_user("coordinator", regions=["08"]))
    _, revoked_header = make_enrollment(caravan, display_name="Dr Revoked")
    db.session.execute(text("UPDATE enrollment SET revoked_at = now() WHERE token_hash <> :h"),
                       {"h": enrollment.token_hash})
    db.session.commit()
    post = client.post
    answers = [
        # a coordinator's paper sheet: the route's own one-statement insert
        post("/api/v1/submissions", json=payload(caravan), headers=coordinator).status_code,
        # a query string (?lang=) changes the language of what the application says
        post("/api/v1/submissions?lang=fr", json=payload(caravan), headers=header).status_code,
        # a body the fast validator refuses: the schema's own messages
        post("/api/v1/submissions", json={**payload(caravan), "day": "2026-02-30"},
             headers=header).status_code,
        # not JSON
        post("/api/v1/submissions", data="caravan=1", headers={
            **header, "Content-Type": "application/x-www-form-urlencoded"}).status_code,
        # an unknown token, and a revoked one
        post("/api/v1/submissions", json=payload(caravan),
             headers={"Authorization": f"Bearer {uuid.uuid4().hex}"}).status_code,
        post("/api/v1/submissions", json=payload(caravan), headers=revoked_header).status_code,
        # a caravan that does not exist, and a site that is not this caravan's
        post("/api/v1/submissions", json={**payload(caravan), "caravan_id": caravan.id + 1},
             headers=header).status_code,
        post("/api/v1/submissions", json={**payload(caravan), "site_id": 999_999},
             headers=header).status_code,
    ]
    assert answers == [201, 201, 422, 415, 401, 401, 422, 422]
    assert served == ["app"] * len(answers)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 2


def test_a_broken_connection_loses_nothing_and_counts_nothing_twice(pg_app, served):
    client = pg_app.test_client()
    caravan, _, header = field_setup()
    warm = client.post("/api/v1/submissions", json=payload(caravan), headers=header)
    assert warm.status_code == 201
    # The server ends the handler's pooled connection (a restart, a proxy's timeout): its next
    # statement fails, and the application, whose pool pings first, stores the tally.
    engine = pg_app.extensions["fieldsvc.lean_engine"]
    pids = [connection.info.backend_pid for connection in _pooled(engine)]
    assert pids
    db.session.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[]))"
                            " AS pid"), {"pids": pids})
    db.session.commit()
    body = payload(caravan, specialty="GEN")
    answer = client.post("/api/v1/submissions", json=body, headers=header)
    assert answer.status_code == 201, answer.get_json()
    assert served == ["lean", "app"]
    # The broken connection was dropped: the next tally takes the lean path again.
    assert client.post("/api/v1/submissions", json=payload(caravan, specialty="PED"),
                       headers=header).status_code == 201
    assert served[-1] == "lean"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 3
    assert db.session.scalar(select(func.count()).select_from(TallyLine).join(
        SubmissionVersion, SubmissionVersion.id == TallyLine.version_id).where(
        SubmissionVersion.submission_id == body["id"])) == len(body["lines"])


def _pooled(engine: Any) -> list[Any]:
    """The driver connections idle in a pool (checked out and given back at once)."""
    connection = engine.raw_connection()
    try:
        return [connection.dbapi_connection]
    finally:
        connection.close()


@pytest.mark.parametrize("settings", [
    {"SQLALCHEMY_DATABASE_URI": "sqlite://"},
    {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none", "LEAN_INGEST": False},
], ids=["sqlite", "lean ingest off"])
def test_sqlite_and_lean_ingest_off_have_no_lean_handler(settings):
    from fieldsvc import create_app
    from fieldsvc.http import FAST_ROUTES

    app = create_app({"SECRET_KEY": "test-secret", "TESTING": True, **settings})
    assert not app.extensions.get(FAST_ROUTES)
    on = create_app({"SECRET_KEY": "test-secret", "TESTING": True,
                     "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert list(on.extensions[FAST_ROUTES]) == [("POST", "/api/v1/submissions")]
