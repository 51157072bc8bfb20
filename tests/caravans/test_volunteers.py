"""Volunteer profiles follow a doctor across caravans through a key the phone keeps."""

from __future__ import annotations

from fieldsvc.caravans.models import Enrollment, Volunteer
from tests.factories import make_areas, make_caravan, make_enrollment


def _two_caravans(db):
    make_areas()
    first = make_caravan(join_code="AAAA2222")
    second = make_caravan("08.577.01.11", title="Caravane de Tinghir", join_code="BBBB3333",
                          sites=(("Lycée", 31.51, -5.53),))
    db.session.commit()
    return first, second


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_profile_key_reattaches_the_same_volunteer(app, client, db):
    first, second = _two_caravans(db)
    joined = client.post("/api/v1/enrollments", json={
        "join_code": "AAAA-2222", "display_name": "Dr Amina", "specialty": "OPH",
        "create_profile": True, "public_consent": True})
    assert joined.status_code == 201
    key = joined.json["profile_key"]
    assert joined.json["volunteer"]["display_name"] == "Dr Amina"
    assert joined.json["volunteer"]["public_consent"] is True
    again = client.post("/api/v1/enrollments", json={
        "join_code": "bbbb3333", "display_name": "Amina B.", "specialty": "OPH",
        "profile_key": key})
    assert again.status_code == 201
    assert again.json["volunteer"]["id"] == joined.json["volunteer"]["id"]
    assert "profile_key" not in again.json
    assert db.session.query(Volunteer).count() == 1
    volunteer_ids = {e.volunteer_id for e in db.session.query(Enrollment)}
    assert volunteer_ids == {joined.json["volunteer"]["id"]}
    assert db.session.query(Volunteer).one().profile_key_hash != key
    me = client.get("/api/v1/volunteers/me", headers=_bearer(again.json["token"]))
    assert me.status_code == 200
    assert {c["id"] for c in me.json["caravans"]} == {first.id, second.id}


def test_unknown_profile_key_is_refused(app, client, db):
    _two_caravans(db)
    response = client.post("/api/v1/enrollments", json={
        "join_code": "AAAA2222", "display_name": "Dr A", "profile_key": "pk_not-a-real-key"})
    assert response.status_code == 422
    assert "profile_key" in response.json["errors"]
    both = client.post("/api/v1/enrollments", json={
        "join_code": "AAAA2222", "display_name": "Dr A", "profile_key": "pk_not-a-real-key",
        "create_profile": True})
    assert both.status_code == 422


def test_volunteer_reads_and_changes_own_profile(app, client, db):
    _two_caravans(db)
    token = client.post("/api/v1/enrollments", json={
        "join_code": "AAAA2222", "display_name": "Dr Amina", "create_profile": True}).json["token"]
    headers = _bearer(token)
    profile = client.get("/api/v1/volunteers/me", headers=headers).json
    assert profile["public_consent"] is False and profile["specialty"] is None
    changed = client.patch("/api/v1/volunteers/me", headers=headers,
                           json={"public_consent": True, "specialty": "OPH",
                                 "display_name": "Dr Amina Bennani"})
    assert changed.status_code == 200
    assert changed.json["public_consent"] is True
    assert changed.json["display_name"] == "Dr Amina Bennani"
    assert client.patch("/api/v1/volunteers/me", headers=headers,
                        json={"specialty": "XYZ"}).status_code == 422
    assert client.patch("/api/v1/volunteers/me", headers=headers,
                        json={"display_name": " "}).status_code == 422
    assert client.get("/api/v1/volunteers/me").status_code == 401


def test_device_without_profile_can_create_one_later(app, client, db):
    first, _ = _two_caravans(db)
    _, headers = make_enrollment(first, display_name="Dr Youssef", specialty="GEN")
    db.session.commit()
    assert client.get("/api/v1/volunteers/me", headers=headers).status_code == 404
    assert client.patch("/api/v1/volunteers/me", headers=headers, json={}).status_code == 404
    created = client.post("/api/v1/volunteers/me", headers=headers, json={})
    assert created.status_code == 201
    assert created.json["display_name"] == "Dr Youssef" and created.json["specialty"] == "GEN"
    assert created.json["profile_key"].startswith("pk_")
    assert client.get("/api/v1/volunteers/me", headers=headers).json["id"] == created.json["id"]
    assert client.post("/api/v1/volunteers/me", headers=headers, json={}).status_code == 409


def test_staff_have_no_volunteer_profile(app, client, db):
    from tests.factories import auth, make_user

    make_areas()
    user = make_user("admin")
    db.session.commit()
    assert client.get("/api/v1/volunteers/me", headers=auth(user)).status_code == 403
