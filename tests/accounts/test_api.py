"""Staff tokens by basic auth, the caller, organizations and users over the API."""

from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy import select

from fieldsvc.accounts.models import AuditEvent, Organization
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user

PASSWORD = "correct horse battery"


def basic(username: str, password: str) -> dict[str, str]:
    raw = f"{username}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_token_by_basic_auth_opens_the_api(client, db):
    make_areas()
    make_user("coordinator", regions=["08", "07"], username="amina")
    db.session.commit()

    response = client.post("/api/v1/tokens", headers=basic("amina", PASSWORD))

    assert response.status_code == 201
    body = response.json
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=11) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json["username"] == "amina"
    assert me.json["role"] == "coordinator"
    assert me.json["regions"] == ["07", "08"]


def test_token_login_is_audited(client, db):
    user = make_user("admin", username="root")
    db.session.commit()

    client.post("/api/v1/tokens", headers=basic("root", PASSWORD))

    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login.success")).all()
    assert [(e.actor_kind, e.actor_id, e.detail["method"]) for e in events] == [
        ("user", str(user.id), "token")
    ]


def test_wrong_password_is_401_problem_and_audited(client, db):
    make_user("admin", username="root")
    db.session.commit()

    response = client.post("/api/v1/tokens", headers={**basic("root", "not the password"),
                                                      "Accept-Language": "en"})

    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert response.json["detail"] == "Wrong username or password."
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    failures = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "login.fail")).all()
    assert [(f.object_id, f.actor_id) for f in failures] == [("root", "127.0.0.1")]


def test_unknown_user_and_missing_credentials_are_401(client, db):
    assert client.post("/api/v1/tokens", headers=basic("nobody", "whatever1")).status_code == 401
    response = client.post("/api/v1/tokens", headers={"Accept-Language": "en"})
    assert response.status_code == 401
    assert "basic auth" in response.json["detail"]
    bearer = client.post("/api/v1/tokens", headers={"Authorization": "Basic !!!not-base64"})
    assert bearer.status_code == 401


def test_inactive_user_cannot_get_a_token(client, db):
    user = make_user("planner", username="gone")
    user.active = False
    db.session.commit()
    assert client.post("/api/v1/tokens", headers=basic("gone", PASSWORD)).status_code == 401


def test_repeated_failures_for_a_username_are_throttled(client, db):
    make_user("admin", username="root")
    db.session.commit()

    statuses = [client.post("/api/v1/tokens", headers=basic("root", f"guess-{i}")).status_code
                for i in range(6)]
    assert statuses == [401] * 5 + [429]

    # Even the right password waits: the attacker must not learn when they guessed it.
    response = client.post("/api/v1/tokens", headers=basic("root", PASSWORD))
    assert response.status_code == 429
    assert response.content_type == "application/problem+json"
    assert 55 <= int(response.headers["Retry-After"]) <= 60
    # Another user is not locked out by someone guessing root's password.
    make_user("planner", username="fatima")
    db.session.commit()
    assert client.post("/api/v1/tokens", headers=basic("fatima", PASSWORD)).status_code == 201


def test_one_address_guessing_many_usernames_is_throttled(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_IP", 4)  # 20 by default
    make_user("admin", username="root")
    db.session.commit()

    statuses = [client.post("/api/v1/tokens", headers=basic(f"user{i}", "guess")).status_code
                for i in range(5)]
    assert statuses == [401] * 4 + [429]
    other = client.post("/api/v1/tokens", headers=basic("root", PASSWORD),
                        environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 201


def test_old_failures_do_not_count(client, db):
    make_user("admin", username="root")
    db.session.commit()
    for _ in range(5):
        client.post("/api/v1/tokens", headers=basic("root", "guess"))
    for event in db.session.scalars(select(AuditEvent)):
        event.at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
    db.session.commit()
    assert client.post("/api/v1/tokens", headers=basic("root", PASSWORD)).status_code == 201


def test_me_needs_a_caller(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"


def test_me_for_a_planner_names_the_organization(client, db):
    make_areas()
    planner = make_user("planner", organization="Wahat Al-Khair")
    db.session.commit()
    body = client.get("/api/v1/me", headers=auth(planner)).json
    assert body["role"] == "planner"
    assert body["organization"]["name"] == "Wahat Al-Khair"
    assert body["regions"] == []


def test_me_for_a_volunteer_names_the_caravan(client, db):
    make_areas()
    caravan = make_caravan()
    _, header = make_enrollment(caravan, display_name="Dr Youssef", specialty="OPH")
    db.session.commit()
    body = client.get("/api/v1/me", headers=header).json
    assert body["role"] == "volunteer"
    assert body["caravan_id"] == caravan.id
    assert body["display_name"] == "Dr Youssef"
    assert body["specialty"] == "OPH"


def test_staff_list_organizations(client, db):
    make_areas()
    coordinator = make_user("coordinator")
    make_user("planner", organization="Zuhur Al-Waha pour le développement social")
    db.session.commit()

    response = client.get("/api/v1/organizations", headers=auth(coordinator))

    assert response.status_code == 200
    assert [o["name"] for o in response.json["items"]] == [
        "Zuhur Al-Waha pour le développement social"]


def test_volunteers_and_anonymous_cannot_list_organizations(client, db):
    make_areas()
    _, header = make_enrollment(make_caravan())
    db.session.commit()
    assert client.get("/api/v1/organizations").status_code == 401
    assert client.get("/api/v1/organizations", headers=header).status_code == 403


def test_admin_creates_an_organization(client, db):
    admin = make_user("admin")
    db.session.commit()
    headers = auth(admin)

    response = client.post("/api/v1/organizations", headers=headers, json={
        "name": "Conseil communal de Zagora", "name_ar": "المجلس الجماعي لزاكورة",
        "kind": "commune_council"})

    assert response.status_code == 201
    assert response.json["kind"] == "commune_council"
    stored = db.session.get(Organization, response.json["id"])
    assert stored.name_ar == "المجلس الجماعي لزاكورة"
    again = client.post("/api/v1/organizations", headers={**headers, "Accept-Language": "ar"},
                        json={"name": "Conseil communal de Zagora"})
    assert again.status_code == 409
    assert again.json["errors"] == {"name": ["موجود بالفعل"]}  # in the caller's language


def test_organization_input_is_validated(client, db):
    admin = make_user("admin")
    db.session.commit()
    headers = auth(admin)
    bad_kind = client.post("/api/v1/organizations", headers=headers,
                           json={"name": "X", "kind": "company"})
    assert bad_kind.status_code == 422
    assert "kind" in bad_kind.json["errors"]
    blank = client.post("/api/v1/organizations", headers=headers, json={"name": "   "})
    assert blank.status_code == 422
    assert "name" in blank.json["errors"]
    assert db.session.scalars(select(Organization)).all() == []


def test_only_admins_create_organizations(client, db):
    make_areas()
    coordinator = make_user("coordinator")
    db.session.commit()
    response = client.post("/api/v1/organizations", headers=auth(coordinator),
                           json={"name": "Nouvelle association"})
    assert response.status_code == 403


def test_admin_lists_users(client, db):
    make_areas()
    admin = make_user("admin", username="root")
    make_user("coordinator", regions=["08"], username="amina")
    db.session.commit()

    response = client.get("/api/v1/users", headers=auth(admin))

    assert [(u["username"], u["role"], u["regions"]) for u in response.json["items"]] == [
        ("amina", "coordinator", ["08"]), ("root", "admin", [])]
    assert "password_hash" not in response.json["items"][0]
    # One page at a time, like every list.
    second = client.get("/api/v1/users?limit=1&offset=1", headers=auth(admin)).json
    assert [u["username"] for u in second["items"]] == ["root"]
    assert (second["total"], second["limit"], second["offset"]) == (2, 1, 1)
    planner = make_user("planner")
    db.session.commit()
    assert client.get("/api/v1/users", headers=auth(planner)).status_code == 403
