"""Every problem+json answer speaks the caller's language (Accept-Language: fr, ar, en)."""

from __future__ import annotations

import re

from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user

ARABIC = re.compile("[\u0600-\u06ff]")


def _arabic(response) -> None:
    body = response.json
    assert response.content_type == "application/problem+json"
    for part in ("title", "detail"):
        assert ARABIC.search(body[part]), (part, body)
        assert not re.search(r"\b(the|is|not|your|Validation|Forbidden|Not found)\b", body[part]), body


def test_problems_answer_in_the_callers_language(app, client, db):
    make_areas()
    caravan = make_caravan()
    outsider = auth(make_user("coordinator", regions=["07"]))
    ar = {**outsider, "Accept-Language": "ar"}

    response = client.post("/api/v1/caravans", headers=ar, data="x", content_type="text/plain")
    assert response.status_code == 415
    _arabic(response)
    response = client.get("/api/v1/no-such-thing", headers=ar)
    assert response.status_code == 404
    _arabic(response)
    response = client.get(f"/api/v1/caravans/{caravan.id}/qr.svg", headers=ar)
    assert response.status_code == 403
    _arabic(response)
    response = client.get(f"/api/v1/caravans/{caravan.id}/completeness", headers=ar)
    assert response.status_code == 403
    _arabic(response)
    response = client.post("/api/v1/caravans", headers=ar, json={
        "title": "Caravane", "commune": "07.351.99.99", "first_day": "2026-11-27",
        "last_day": "2026-11-28", "specialties": ["OPH"]})
    assert response.status_code == 422
    _arabic(response)
    assert ARABIC.search(response.json["errors"]["commune"][0])
    # marshmallow's own messages too: a missing field, a wrong type, a value out of range.
    response = client.post("/api/v1/caravans", headers=ar, json={"title": "Caravane",
                                                                 "specialties": "OPH"})
    assert response.status_code == 422
    _arabic(response)
    errors = response.json["errors"]
    assert {"commune", "first_day", "specialties"} <= set(errors)
    assert all(ARABIC.search(m) for messages in errors.values() for m in messages), errors
    response = client.get("/api/v1/areas?limit=abc", headers=ar)
    assert response.status_code == 422
    assert all(ARABIC.search(m) for m in response.json["errors"]["limit"]), response.json
    response = client.get("/api/v1/areas?limit=100000",
                          headers={**outsider, "Accept-Language": "fr"})
    assert response.status_code == 422
    assert "supérieur ou égal à 1" in response.json["errors"]["limit"][0], response.json

    # The same refusal in French and in English.
    fr = client.get(f"/api/v1/caravans/{caravan.id}/qr.svg", headers={**outsider, "Accept-Language": "fr"})
    assert fr.json["title"] == "Interdit" and "hors de vos régions" in fr.json["detail"]
    en = client.get(f"/api/v1/caravans/{caravan.id}/qr.svg", headers={**outsider, "Accept-Language": "en"})
    assert en.json["title"] == "Forbidden" and "outside your regions" in en.json["detail"]


def test_a_revoked_staff_token_gets_the_staffs_wording(app, client, db):
    make_areas()
    caravan = make_caravan()
    _, device = make_enrollment(caravan)
    header = auth(make_user("coordinator", regions=["08"]))
    assert client.get("/api/v1/me", headers=header).status_code == 200
    assert client.delete("/api/v1/tokens", headers=header).status_code == 204
    response = client.get("/api/v1/me", headers={**header, "Accept-Language": "en"})
    assert response.status_code == 401
    assert "staff token is no longer valid" in response.json["detail"]
    assert "POST /api/v1/tokens" in response.json["detail"]
    assert "join" not in response.json["detail"].lower()
    response = client.get("/api/v1/me", headers={**header, "Accept-Language": "ar"})
    _arabic(response)
    # A device token the server no longer knows: the volunteers' wording, to join again.
    lost = {"Authorization": device["Authorization"] + "x", "Accept-Language": "fr"}
    response = client.get(f"/api/v1/caravans/{caravan.id}", headers=lost)
    assert response.status_code == 401
    assert "rejoignez" in response.json["detail"].lower()


def test_summary_refusals_answer_in_the_callers_language(client, db):
    make_areas()
    planner = auth(make_user("planner", organization="Wahat Al-Khair"))
    admin = auth(make_user("admin"))
    db.session.commit()
    for header, query in ((planner, "by=region,day"), (planner, "by=region&status=approved"),
                          (admin, "by=region,colour"), (admin, "specialty=XYZ")):
        arabic = client.get(f"/api/v1/summary?{query}",
                            headers={**header, "Accept-Language": "ar"})
        assert arabic.status_code == 422, (query, arabic.json)
        _arabic(arabic)
        french = client.get(f"/api/v1/summary?{query}",
                            headers={**header, "Accept-Language": "fr"}).json["detail"]
        english = client.get(f"/api/v1/summary?{query}",
                             headers={**header, "Accept-Language": "en"}).json["detail"]
        assert french != english, query
