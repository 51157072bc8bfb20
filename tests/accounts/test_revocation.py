"""Revocation: logout ends the session on the server; an admin's deactivation, password reset
or change of rights ends every session and token of the user (API and CLI); a revoked device
cannot come back with the join code and its saved profile key."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from fieldsvc.accounts.models import AuditEvent
from tests.factories import auth, make_areas, make_caravan, make_user
from tests.web.test_pages import HTML, PASSWORD, csrf_token, log_in


def _session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_a_replayed_session_cookie_after_logout_gets_401(client, db):
    make_user("admin", username="root")
    db.session.commit()
    assert log_in(client, "root").status_code == 302
    assert client.get("/api/v1/me").status_code == 200
    stolen = _session_cookie(client)

    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}, headers=HTML).status_code == 302
    client.set_cookie("session", stolen)  # the cookie someone copied before the logout

    assert client.get("/api/v1/me").status_code == 401
    assert "root" not in client.get("/", headers=HTML).get_data(as_text=True)


def test_logging_out_ends_only_that_session(app, client, db):
    make_user("admin", username="root")
    db.session.commit()
    other = app.test_client()
    log_in(client, "root")
    log_in(other, "root")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")}, headers=HTML)
    assert client.get("/api/v1/me").status_code == 401
    assert other.get("/api/v1/me").status_code == 200


def _logged_in_everywhere(app, client, username: str):
    """A browser session and a bearer token of one user."""
    browser = app.test_client()
    assert log_in(browser, username).status_code == 302
    token = client.post("/api/v1/tokens", auth=(username, PASSWORD)).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert browser.get("/api/v1/me").status_code == 200
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    return browser, bearer


def test_admin_deactivation_ends_sessions_and_tokens_at_once(app, client, db):
    admin = auth(make_user("admin"))
    planner = make_user("planner", organization="Wahat Al-Khair", username="fatima")
    db.session.commit()
    browser, bearer = _logged_in_everywhere(app, client, "fatima")

    response = client.patch(f"/api/v1/users/{planner.id}", json={"active": False}, headers=admin)

    assert response.status_code == 200 and response.json["active"] is False
    assert browser.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    assert client.post("/api/v1/tokens", auth=("fatima", PASSWORD)).status_code == 401
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.update"))
    assert event.detail["changed"] == ["active"] and event.detail["access_ended"] == 2
    # Reactivated, the old token stays dead; a new login works.
    client.patch(f"/api/v1/users/{planner.id}", json={"active": True}, headers=admin)
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    assert client.post("/api/v1/tokens", auth=("fatima", PASSWORD)).status_code == 201


def test_admin_changes_role_and_regions_and_old_credentials_stop(app, client, db):
    make_areas()
    admin = auth(make_user("admin"))
    amina = make_user("coordinator", regions=["08"], username="amina")
    db.session.commit()
    browser, bearer = _logged_in_everywhere(app, client, "amina")

    refused = client.patch(f"/api/v1/users/{amina.id}", json={"regions": ["99"]}, headers=admin)
    assert refused.status_code == 422 and "regions" in refused.json["errors"]
    assert client.get("/api/v1/me", headers=bearer).status_code == 200  # nothing changed

    moved = client.patch(f"/api/v1/users/{amina.id}", json={"regions": ["07"]}, headers=admin)
    assert moved.status_code == 200 and moved.json["regions"] == ["07"]
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    assert browser.get("/api/v1/me").status_code == 401
    fresh = {"Authorization": "Bearer " + client.post(
        "/api/v1/tokens", auth=("amina", PASSWORD)).json["token"]}
    assert client.get("/api/v1/me", headers=fresh).json["regions"] == ["07"]

    planner = client.patch(f"/api/v1/users/{amina.id}", json={"role": "planner"}, headers=admin)
    assert planner.status_code == 200 and planner.json["role"] == "planner"
    assert planner.json["regions"] == []
    assert client.get("/api/v1/me", headers=fresh).status_code == 401
    # Only admins may do this.
    assert client.patch(f"/api/v1/users/{amina.id}", json={"active": False},
                        headers=auth(make_user("coordinator"))).status_code == 403
    assert client.patch("/api/v1/users/999999", json={"active": False},
                        headers=admin).status_code == 404


def test_admin_password_reset_ends_access_and_follows_the_policy(app, client, db):
    admin = auth(make_user("admin"))
    root = make_user("admin", username="root")
    db.session.commit()
    browser, bearer = _logged_in_everywhere(app, client, "root")
    url = f"/api/v1/users/{root.id}/password"

    weak = client.post(url, json={"password": "root-root-root"}, headers=admin)
    assert weak.status_code == 422 and "password" in weak.json["errors"]
    assert client.get("/api/v1/me", headers=bearer).status_code == 200

    assert client.post(url, json={"password": "palmiers-de-skoura"}, headers=admin).status_code \
        == 204
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    assert browser.get("/api/v1/me").status_code == 401
    assert client.post("/api/v1/tokens", auth=("root", PASSWORD)).status_code == 401
    assert client.post("/api/v1/tokens", auth=("root", "palmiers-de-skoura")).status_code == 201
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "user.password_reset")).detail["access_ended"] == 2


def test_cli_deactivate_reset_and_update_end_access(app, client, runner, db):
    make_areas()
    amina = make_user("coordinator", regions=["08"], username="amina")
    db.session.commit()

    _, bearer = _logged_in_everywhere(app, client, "amina")
    result = runner.invoke(args=["users", "update", "amina", "--region", "07", "--region", "08"])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    db.session.expire_all()
    assert amina.region_codes == ["07", "08"]

    _, bearer = _logged_in_everywhere(app, client, "amina")
    result = runner.invoke(args=["users", "reset-password", "amina", "--password",
                                 "oasis-de-skoura-2026"])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    weak = runner.invoke(args=["users", "reset-password", "amina", "--password", "short"])
    assert weak.exit_code == 1 and "12" in weak.output

    token = client.post("/api/v1/tokens", auth=("amina", "oasis-de-skoura-2026")).json["token"]
    result = runner.invoke(args=["users", "deactivate", "amina"])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code \
        == 401
    assert runner.invoke(args=["users", "deactivate", "nobody"]).exit_code == 1
    assert "(inactive)" in runner.invoke(args=["users", "list"]).output
    assert client.post("/api/v1/tokens", auth=("amina", "oasis-de-skoura-2026")).status_code == 401

    result = runner.invoke(args=["users", "activate", "amina"])
    assert result.exit_code == 0, result.output
    assert "(inactive)" not in runner.invoke(args=["users", "list"]).output
    token = client.post("/api/v1/tokens", auth=("amina", "oasis-de-skoura-2026")).json["token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code \
        == 200


def test_a_revoked_device_cannot_come_back_with_the_code_and_its_profile_key(client, db):
    make_areas()
    today = dt.date.today()
    caravan = make_caravan(join_code="K7QX4MZP", first_day=today - dt.timedelta(days=1),
                           last_day=today)
    coordinator = auth(make_user("coordinator", regions=["08"]))
    db.session.commit()
    joined = client.post("/api/v1/enrollments", json={
        "join_code": "K7QX-4MZP", "display_name": "Dr Amina", "specialty": "OPH",
        "create_profile": True}).json
    device = {"Authorization": f"Bearer {joined['token']}"}
    tally = {"id": str(uuid.uuid4()), "caravan_id": caravan.id, "day": today.isoformat(),
             "specialty": "OPH", "lines": [{"measure": "consultations", "sex": "F",
                                            "age_band": "50-64", "count": 9}]}
    assert client.post("/api/v1/submissions", json=tally, headers=device).status_code == 201

    assert client.delete(f"/api/v1/enrollments/{joined['enrollment_id']}",
                         headers=coordinator).status_code == 204
    assert client.get("/api/v1/me", headers=device).status_code == 401

    back = client.post("/api/v1/enrollments", json={
        "join_code": "K7QX-4MZP", "display_name": "Dr Amina", "profile_key": joined["profile_key"]})
    assert back.status_code == 403, back.json
    assert "coordinateur" in back.json["detail"] and "profile_key" in back.json["errors"]
    # Joining again without the key gives a device that does not own the old tally.
    stranger = client.post("/api/v1/enrollments", json={
        "join_code": "K7QX-4MZP", "display_name": "Dr Amina"}).json
    other = {"Authorization": f"Bearer {stranger['token']}"}
    amended = {key: value for key, value in tally.items() if key != "id"}
    amended["lines"] = [dict(amended["lines"][0], count=90)]
    assert client.put(f"/api/v1/submissions/{tally['id']}", json=amended,
                      headers=other).status_code == 404

    # The coordinator lets the volunteer back in with a fresh token; the old one stays dead.
    readmitted = client.post(f"/api/v1/enrollments/{joined['enrollment_id']}/token",
                             headers=coordinator)
    assert readmitted.status_code == 201, readmitted.json
    assert client.get("/api/v1/me", headers=device).status_code == 401
    fresh = {"Authorization": f"Bearer {readmitted.json['token']}"}
    assert client.put(f"/api/v1/submissions/{tally['id']}", json=amended,
                      headers=fresh).status_code == 200
    assert client.post(f"/api/v1/enrollments/{joined['enrollment_id']}/token",
                       headers=other).status_code == 403


def test_a_device_token_that_starts_like_a_staff_token_is_still_the_devices(client, db):
    """Staff tokens are looked up first when prefixed; a device token may start so by chance."""
    from fieldsvc.security import STAFF_TOKEN_PREFIX, token_digest
    from tests.factories import make_enrollment

    make_areas()
    caravan = make_caravan()
    enrollment, _ = make_enrollment(caravan)
    token = STAFF_TOKEN_PREFIX + "a-device-token-by-chance"
    enrollment.token_hash = token_digest(token)
    db.session.commit()
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.json
    assert response.json["role"] == "volunteer"
    coordinator = auth(make_user("coordinator", regions=["08"]))
    response = client.get("/api/v1/me", headers=coordinator)
    assert response.json["role"] == "coordinator" and response.json["regions"] == ["08"]
