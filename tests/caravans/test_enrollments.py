"""Enrollment: join codes become device tokens; guessing is throttled, teams are not."""

from __future__ import annotations

import datetime as dt

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.caravans.models import Enrollment, EnrollmentFailure
from fieldsvc.caravans.services import MAX_FAILED_ENROLLMENTS
from fieldsvc.db import utcnow
from tests.factories import auth, make_areas, make_caravan, make_user


def _caravan(db, **kwargs):
    make_areas()
    caravan = make_caravan(join_code="K7QX4MZP", **kwargs)
    db.session.commit()
    return caravan


def _enroll(client, code="K7QX-4MZP", ip="196.200.1.7", **extra):
    body = {"join_code": code, "display_name": "Dr Amina", "specialty": "OPH", **extra}
    return client.post("/api/v1/enrollments", json=body, environ_base={"REMOTE_ADDR": ip})


def test_join_code_gives_a_token_for_that_caravan(app, client, db):
    caravan = _caravan(db)
    response = _enroll(client)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["caravan"]["id"] == caravan.id
    assert body["caravan"]["specialties"] == ["GEN", "OPH", "PED"]
    assert body["caravan"]["sites"][0]["name"] == "École Al Amal"
    assert "join_code" not in body["caravan"]
    assert body["volunteer"] is None and "profile_key" not in body
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert client.get(f"/api/v1/caravans/{caravan.id}", headers=headers).status_code == 200
    enrollment = db.session.get(Enrollment, body["enrollment_id"])
    assert enrollment.token_hash != body["token"] and enrollment.display_name == "Dr Amina"
    event = db.session.query(AuditEvent).filter_by(action="enrollment.create").one()
    assert event.actor_kind == "volunteer" and event.region_code == "08"


def test_codes_ignore_case_spaces_and_dashes(app, client, db):
    _caravan(db)
    for code in ("k7qx4mzp", "K7QX 4MZP", " k7qx-4mzp ", "K7-QX-4M-ZP"):
        assert _enroll(client, code).status_code == 201, code


def test_a_device_token_opens_only_its_caravan(app, client, db):
    caravan = _caravan(db)
    other = make_caravan(title="Caravane de Tinghir", commune="08.577.01.11", sites=())
    db.session.commit()
    token = _enroll(client).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/caravans/{caravan.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/caravans/{other.id}", headers=headers).status_code == 403
    assert client.get("/api/v1/caravans", headers=headers).status_code == 403


def test_unknown_code_is_404_and_guessing_is_throttled(app, client, db):
    _caravan(db)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    for _ in range(MAX_FAILED_ENROLLMENTS):
        response = _enroll(client, "ZZZZ-ZZZZ")
        assert response.status_code == 404
        assert response.json["errors"]["join_code"] == ["unknown join code"]
    blocked = _enroll(client, "ZZZZ-ZZZZ")
    assert blocked.status_code == 429
    assert blocked.content_type == "application/problem+json"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 600
    # Even the right code waits: otherwise the throttle would tell a guesser when it hit.
    assert _enroll(client).status_code == 429
    # Another connection is not affected.
    assert _enroll(client, ip="41.248.3.9").status_code == 201
    # Failures older than the window no longer count.
    for failure in db.session.query(EnrollmentFailure):
        failure.at = utcnow() - dt.timedelta(minutes=11)
    db.session.commit()
    assert _enroll(client).status_code == 201


def test_a_whole_team_on_one_connection_is_never_blocked(app, client, db):
    caravan = _caravan(db)
    # A couple of typos in the morning rush do not add up with the successes.
    assert _enroll(client, "K7QX-4MZB").status_code == 404
    assert _enroll(client, "K7QX-4MPZ").status_code == 404
    tokens = set()
    for number in range(30):
        response = _enroll(client, display_name=f"Dr {number}")
        assert response.status_code == 201, (number, response.json)
        tokens.add(response.json["token"])
    assert len(tokens) == 30
    assert db.session.query(Enrollment).filter_by(caravan_id=caravan.id).count() == 30
    assert db.session.query(EnrollmentFailure).count() == 2


def test_enrollment_input_is_checked(app, client, db):
    _caravan(db)
    assert _enroll(client, display_name="  ").status_code == 422
    assert "specialty" in _enroll(client, specialty="XYZ").json["errors"]
    missing = client.post("/api/v1/enrollments", json={"display_name": "Dr A"})
    assert missing.status_code == 422 and "join_code" in missing.json["errors"]
    assert _enroll(client, specialty=None).status_code == 201
    assert db.session.query(EnrollmentFailure).count() == 0


def test_closed_caravans_accept_devices_for_30_days_then_stop(app, client, db):
    caravan = _caravan(db, status="closed")
    caravan.closed_at = utcnow() - dt.timedelta(days=5)
    caravan.first_day = dt.date.today() - dt.timedelta(days=7)
    caravan.last_day = dt.date.today() - dt.timedelta(days=6)
    db.session.commit()
    token = _enroll(client).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/caravans/{caravan.id}", headers=headers).status_code == 200
    caravan.closed_at = utcnow() - dt.timedelta(days=31)
    caravan.first_day = dt.date.today() - dt.timedelta(days=40)
    caravan.last_day = dt.date.today() - dt.timedelta(days=39)
    db.session.commit()
    assert _enroll(client).status_code == 410
    assert client.get(f"/api/v1/caravans/{caravan.id}", headers=headers).status_code == 401


def test_token_lives_30_days_after_close(app, db):
    from fieldsvc.caravans.services import enrollment_is_live

    caravan = _caravan(db, status="closed")
    closed = dt.datetime(2026, 12, 1, 18, tzinfo=dt.UTC)
    caravan.closed_at = closed
    assert enrollment_is_live(None, caravan, closed.date() + dt.timedelta(days=30))
    assert not enrollment_is_live(None, caravan, closed.date() + dt.timedelta(days=31))
    assert not enrollment_is_live(closed, caravan, closed.date())


def test_coordinator_lists_and_revokes_tokens(app, client, db):
    caravan = _caravan(db)
    coordinator = make_user("coordinator", regions=["08"])
    outsider = make_user("coordinator", regions=["07"])
    db.session.commit()
    headers = auth(coordinator)
    enrolled = _enroll(client).json
    volunteer = {"Authorization": f"Bearer {enrolled['token']}"}
    listed = client.get(f"/api/v1/caravans/{caravan.id}/enrollments", headers=headers)
    assert listed.status_code == 200
    assert listed.json["total"] == 1
    assert [(e["display_name"], e["live"]) for e in listed.json["items"]] == [("Dr Amina", True)]
    assert client.get(f"/api/v1/caravans/{caravan.id}/enrollments",
                      headers=auth(outsider)).status_code == 403
    assert client.get(f"/api/v1/caravans/{caravan.id}/enrollments",
                      headers=volunteer).status_code == 403
    url = f"/api/v1/enrollments/{enrolled['enrollment_id']}"
    assert client.delete(url, headers=auth(outsider)).status_code == 403
    assert client.get(f"/api/v1/caravans/{caravan.id}", headers=volunteer).status_code == 200
    assert client.delete(url, headers=headers).status_code == 204
    assert client.delete(url, headers=headers).status_code == 204  # idempotent
    revoked = client.get(f"/api/v1/caravans/{caravan.id}", headers=volunteer)
    assert revoked.status_code == 401
    assert revoked.content_type == "application/problem+json"
    assert client.get("/api/v1/volunteers/me", headers=volunteer).status_code == 401
    tally = {"id": "0b6f1d2e-8a53-4c1e-9f7a-3d2b1c0a9e87", "caravan_id": caravan.id,
             "day": caravan.first_day.isoformat(), "specialty": "OPH",
             "lines": [{"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 3}]}
    assert client.post("/api/v1/submissions", headers=volunteer, json=tally).status_code == 401
    assert client.post("/api/v1/enrollments", headers=volunteer, json={
        "join_code": "K7QX4MZP", "display_name": "x"}).status_code == 401
    listed = client.get(f"/api/v1/caravans/{caravan.id}/enrollments",
                        headers=headers).json["items"]
    assert listed[0]["live"] is False and listed[0]["revoked_at"]
    assert db.session.query(AuditEvent).filter_by(action="device.revoke").count() == 1
    assert client.delete("/api/v1/enrollments/9999", headers=headers).status_code == 404
