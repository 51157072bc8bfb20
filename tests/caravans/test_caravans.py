"""Caravans: creation within scope, sites and their points, changes, join codes, QR codes."""

from __future__ import annotations

import datetime as dt
import json

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.caravans.models import Caravan
from fieldsvc.caravans.services import JOIN_CODE_ALPHABET
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user

BODY = {
    "title": "Caravane médicale de Zagora",
    "commune": "08.587.01.13",
    "sites": [{"name": "École Al Amal", "location": "30.33, -5.84"}],
    "first_day": "2026-11-27",
    "last_day": "2026-11-28",
    "specialties": ["OPH", "GEN", "PED"],
}


def _coordinator(db, regions=("08",), **kwargs):
    make_areas()
    user = make_user("coordinator", regions=list(regions), **kwargs)
    db.session.commit()
    return user, auth(user)


def test_coordinator_creates_caravan_with_join_code_and_link(app, client, db):
    _, headers = _coordinator(db, organization="Wahat Al-Khair")
    response = client.post("/api/v1/caravans", json=BODY, headers=headers)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "planned"
    assert body["specialties"] == ["GEN", "OPH", "PED"]
    assert body["region"] == "08"
    assert [org["name"] for org in body["organizers"]] == ["Wahat Al-Khair"]
    site = body["sites"][0]
    assert site["id"] and (site["lat"], site["lon"]) == (30.33, -5.84)
    assert site["km_from_commune"] == 0.0
    code = body["join_code"].replace("-", "")
    assert len(code) == 8 and set(code) <= set(JOIN_CODE_ALPHABET)
    assert not set(code) & set("0O1IL")
    assert body["join_url"] == f"http://localhost/join/{body['join_code']}"
    assert db.session.get(Caravan, body["id"]).join_code == code
    event = db.session.query(AuditEvent).filter_by(action="caravan.create").one()
    assert event.region_code == "08" and event.object_id == str(body["id"])


def test_big_city_communes_from_the_areas_api_are_accepted(app, client, db):
    from fieldsvc.areas.models import Area
    from fieldsvc.areas.points import read_gz_csv
    from fieldsvc.areas.schemas import COMMUNE_CODE

    _, headers = _coordinator(db, regions=("07",), organization="Wahat Al-Khair")
    db.session.add(Area(code="07.351.01.0", level="commune", parent_code="07.351",
                        region_code="07", province_code="07.351", name_fr="Marrakech",
                        name_ar="مراكش", search_text="marrakech", lat=31.63, lon=-8.0,
                        point_source="geonames"))
    db.session.commit()
    listed = client.get("/api/v1/areas?parent=07.351&level=commune", headers=headers).json
    assert "07.351.01.0" in [area["code"] for area in listed["items"]]
    response = client.post("/api/v1/caravans", headers=headers, json={
        **BODY, "commune": "07.351.01.0", "sites": [{"name": "Bab Doukkala", "location": "31.63, -8.0"}]})
    assert response.status_code == 201, response.json
    assert response.json["commune"] == "07.351.01.0"
    listed = client.get("/api/v1/caravans?commune=07.351.01.0", headers=headers)
    assert listed.status_code == 200
    assert [c["commune"] for c in listed.json["items"]] == ["07.351.01.0"]
    # Every commune code the areas data holds (all 1,503, the six big cities included) passes.
    codes = [row["code"] for row in read_gz_csv("attributes", "communes.csv.gz")]
    refused = []
    for code in codes:
        try:
            COMMUNE_CODE(code)
        except Exception:  # noqa: BLE001 - collect every refusal
            refused.append(code)
    assert len(codes) == 1503 and not refused
    assert client.post("/api/v1/caravans", headers=headers,
                       json={**BODY, "commune": "07.351.1.0"}).status_code == 422


def test_warnings_for_a_caravan_in_the_past_and_without_organizers(app, client, db):
    from fieldsvc.caravans.services import morocco_today

    _, headers = _coordinator(db)
    past = morocco_today() - dt.timedelta(days=60)
    response = client.post("/api/v1/caravans", headers={**headers, "Accept-Language": "fr"},
                           json={**BODY, "first_day": past.isoformat(),
                                 "last_day": (past + dt.timedelta(days=1)).isoformat()})
    assert response.status_code == 201, response.json
    warnings = " ".join(response.json["warnings"])
    assert "passé" in warnings and (past + dt.timedelta(days=1)).isoformat() in warnings
    assert "organisat" in warnings
    # With organizers and days to come: no warning.
    from fieldsvc.accounts.services import get_or_create_organization

    org = get_or_create_organization("Wahat Al-Khair")
    db.session.commit()
    soon = morocco_today() + dt.timedelta(days=10)
    response = client.post("/api/v1/caravans", headers=headers, json={
        **BODY, "organizers": [org.id], "first_day": soon.isoformat(),
        "last_day": soon.isoformat()})
    assert response.status_code == 201, response.json
    assert not response.json.get("warnings")


def test_organizers_by_id_and_unknown_ones_refused(app, client, db):
    from fieldsvc.accounts.services import get_or_create_organization

    _, headers = _coordinator(db)
    one = get_or_create_organization("Union de l'Action Féminine")
    two = get_or_create_organization("Conseil communal de Zagora", kind="commune_council")
    db.session.commit()
    response = client.post("/api/v1/caravans", json={**BODY, "organizers": [one.id, two.id]},
                           headers=headers)
    assert response.status_code == 201
    assert sorted(o["id"] for o in response.json["organizers"]) == sorted([one.id, two.id])
    response = client.post("/api/v1/caravans", json={**BODY, "organizers": [9999]},
                           headers=headers)
    assert response.status_code == 422
    assert "organizers" in response.json["errors"]


def test_coordinator_outside_region_gets_403_and_nothing_is_stored(app, client, db):
    _, headers = _coordinator(db, regions=("07",))
    response = client.post("/api/v1/caravans", json=BODY, headers=headers)
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
    assert db.session.query(Caravan).count() == 0


def test_admin_creates_anywhere_planner_and_volunteer_cannot(app, client, db):
    make_areas()
    admin = make_user("admin")
    planner = make_user("planner")
    db.session.commit()
    body = {**BODY, "commune": "01.511.01.01", "sites": []}
    assert client.post("/api/v1/caravans", json=body, headers=auth(admin)).status_code == 201
    assert client.post("/api/v1/caravans", json=body, headers=auth(planner)).status_code == 403
    assert client.post("/api/v1/caravans", json=body).status_code == 401


def test_validation_errors_name_the_field(app, client, db):
    _, headers = _coordinator(db)
    cases = [
        ({**BODY, "last_day": "2026-11-20"}, "last_day"),
        ({**BODY, "commune": "08.587.99.99"}, "commune"),
        ({**BODY, "commune": "Zagora"}, "commune"),
        ({**BODY, "specialties": ["XYZ"]}, "specialties"),
        ({**BODY, "specialties": []}, "specialties"),
        ({k: v for k, v in BODY.items() if k != "title"}, "title"),
        ({**BODY, "first_day": "27/11/2026"}, "first_day"),
        ({**BODY, "sites": [{"name": "École", "location": "somewhere"}]}, "sites[0].location"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/caravans", json=body, headers=headers)
        assert response.status_code == 422, (field, response.json)
        assert response.content_type == "application/problem+json"
        assert field in response.json["errors"], (field, response.json)
    assert db.session.query(Caravan).count() == 0


def test_dms_sites_are_read_right(app, client, db):
    _, headers = _coordinator(db)
    sites = [
        {"name": "A", "location": "30°19'48\"N 5°50'24\"W"},
        # geopy alone reads this as 50°N 24°W; it must be understood as 30.33, -5.84.
        {"name": "B", "location": "30 19 48 N, 5 50 24 W"},
        {"name": "C", "location": "30.33N 5.84W"},
    ]
    response = client.post("/api/v1/caravans", json={**BODY, "sites": sites}, headers=headers)
    assert response.status_code == 201, response.json
    assert [(s["lat"], s["lon"]) for s in response.json["sites"]] == [(30.33, -5.84)] * 3


def test_geopy_misreads_spaced_dms_which_is_why_it_is_rewritten():
    from geopy.point import Point

    from fieldsvc.areas.points import parse_point

    assert tuple(Point("30 19 48 N, 5 50 24 W"))[:2] == (50.0, -24.0)
    assert parse_point("30 19 48 N, 5 50 24 W") == (30.33, -5.84)
    assert parse_point("31 30 N 5 32 W") == (31.5, -5.533333)


def test_point_outside_morocco_refused_with_what_was_understood(app, client, db):
    _, headers = _coordinator(db)
    for location, lat, lon in [("-5.84, 30.33", -5.84, 30.33),   # longitude first
                               ("30.33, 5.84", 30.33, 5.84),    # forgot the minus: Algeria
                               ("50 24 N 5 50 W", 50.4, -5.833333)]:
        body = {**BODY, "sites": [{"name": "École", "location": location}]}
        response = client.post("/api/v1/caravans", json=body, headers={**headers, "Accept-Language": "en"})
        assert response.status_code == 422, location
        problem = response.json
        assert problem["understood"]["lat"] == lat and problem["understood"]["lon"] == lon
        assert "outside Morocco" in problem["errors"]["sites[0].location"][0]
    assert db.session.query(Caravan).count() == 0


def test_point_far_from_commune_refused(app, client, db):
    _, headers = _coordinator(db)
    # Tinghir is in Morocco, but ~130 km from Zagora.
    body = {**BODY, "sites": [{"name": "Ok", "location": "30.33, -5.84"},
                              {"name": "Far", "location": "31.51, -5.53"}]}
    response = client.post("/api/v1/caravans", json=body, headers={**headers, "Accept-Language": "en"})
    assert response.status_code == 422
    assert response.json["understood"]["lat"] == 31.51
    assert response.json["understood"]["km_from_commune"] > 50
    assert list(response.json["errors"]) == ["sites[1].location"]
    assert "km from Zagora" in response.json["errors"]["sites[1].location"][0]


def test_commune_without_point_accepts_sites_and_says_so(app, client, db):
    from fieldsvc.areas.models import Area

    _, headers = _coordinator(db)
    commune = db.session.get(Area, "08.587.09.23")
    commune.lat = commune.lon = None
    commune.point_source = None
    db.session.commit()
    body = {**BODY, "commune": "08.587.09.23",
            "sites": [{"name": "Douar", "location": "29.82, -5.72"}]}
    response = client.post("/api/v1/caravans", json=body,
                           headers={**headers, "Accept-Language": "en"})
    assert response.status_code == 201
    assert response.json["sites"][0]["km_from_commune"] is None
    assert "no known point" in response.json["warnings"][0]
    # Morocco's borders are still checked.
    body["sites"] = [{"name": "Far", "location": "48.85, 2.35"}]
    assert client.post("/api/v1/caravans", json=body, headers=headers).status_code == 422


def test_get_and_list_show_join_code_only_in_scope(app, client, db):
    _, headers = _coordinator(db)
    outsider = make_user("coordinator", regions=["07"])
    planner = make_user("planner")
    zagora = make_caravan()
    marrakech = make_caravan("07.351.02.07", title="Caravane de Ouahat Sidi Brahim",
                             sites=(), status="planned")
    db.session.commit()
    body = client.get(f"/api/v1/caravans/{zagora.id}", headers=headers).json
    assert body["join_code"] and body["title"] == "Caravane médicale de Zagora"
    other = client.get(f"/api/v1/caravans/{zagora.id}", headers=auth(outsider))
    assert other.status_code == 200 and "join_code" not in other.json
    assert "join_code" not in client.get(f"/api/v1/caravans/{zagora.id}",
                                         headers=auth(planner)).json
    listed = client.get("/api/v1/caravans", headers=headers).json
    assert {c["id"] for c in listed["items"]} == {marrakech.id, zagora.id}
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 50, 0)
    second = client.get("/api/v1/caravans?limit=1&offset=1", headers=headers).json
    assert second["total"] == 2 and [c["id"] for c in second["items"]] == [listed["items"][1]["id"]]
    assert client.get("/api/v1/caravans?limit=201", headers=headers).status_code == 422
    assert client.get("/api/v1/caravans?offset=99999999999", headers=headers).status_code == 422
    assert client.get("/api/v1/caravans?region=07",
                      headers=headers).json["items"][0]["id"] == marrakech.id
    assert [c["id"] for c in client.get("/api/v1/caravans?status=active",
                                        headers=headers).json["items"]] == [zagora.id]
    assert client.get("/api/v1/caravans?status=open", headers=headers).status_code == 422
    assert client.get("/api/v1/caravans/999", headers=headers).status_code == 404
    assert client.get("/api/v1/caravans").status_code == 401


def test_patch_changes_and_status_only_moves_forward(app, client, db):
    _, headers = _coordinator(db)
    created = client.post("/api/v1/caravans", json=BODY, headers=headers).json
    url = f"/api/v1/caravans/{created['id']}"
    response = client.patch(url, headers=headers, json={
        "title": "Caravane ophtalmologique de Zagora", "last_day": "2026-11-29",
        "specialties": ["OPH"], "sites": [{"name": "Amezrou", "location": "30 18 36 N, 5 50 W"}]})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["title"] == "Caravane ophtalmologique de Zagora"
    assert body["last_day"] == "2026-11-29" and body["specialties"] == ["OPH"]
    assert [s["name"] for s in body["sites"]] == ["École Al Amal", "Amezrou"]
    assert client.patch(url, headers=headers, json={"status": "closed"}).status_code == 409
    assert client.patch(url, headers=headers, json={"last_day": "2026-11-01"}).status_code == 422
    assert client.patch(url, headers=headers, json={"status": "active"}).json["status"] == "active"
    assert client.patch(url, headers=headers, json={"status": "planned"}).status_code == 409
    closed = client.patch(url, headers=headers, json={"status": "closed"}).json
    assert closed["status"] == "closed" and closed["closed_at"]
    assert client.patch(url, headers=headers, json={"last_day": "2026-11-30"}).status_code == 409
    assert client.patch(url, headers=headers, json={"title": "Zagora 2026"}).status_code == 200
    actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions.count("caravan.update") == 4


def test_patch_out_of_scope_is_forbidden(app, client, db):
    _, headers = _coordinator(db, regions=("07",))
    caravan = make_caravan()
    db.session.commit()
    url = f"/api/v1/caravans/{caravan.id}"
    assert client.patch(url, headers=headers, json={"title": "Nope nope"}).status_code == 403
    assert client.post(f"{url}/join-code", headers=headers).status_code == 403
    assert client.get(f"{url}/qr.svg", headers=headers).status_code == 403
    db.session.expire_all()
    assert db.session.get(Caravan, caravan.id).title == "Caravane médicale de Zagora"


def test_days_cannot_shrink_away_from_submissions(app, client, db):
    from fieldsvc.tallies.models import Submission, SubmissionVersion

    _, headers = _coordinator(db)
    caravan = make_caravan()
    submission = Submission(id="7b0c5a52-3c79-4f53-9d4b-1a1c0b1f4e11", caravan_id=caravan.id)
    db.session.add(submission)
    db.session.flush()
    version = SubmissionVersion(submission_id=submission.id, number=1, caravan_id=caravan.id,
                                day=dt.date(2026, 11, 28), specialty_code="OPH",
                                content_hash="0" * 64)
    db.session.add(version)
    db.session.flush()
    submission.current_version_id = version.id
    db.session.commit()
    url = f"/api/v1/caravans/{caravan.id}"
    response = client.patch(url, headers=headers, json={"last_day": "2026-11-27"})
    assert response.status_code == 409
    assert client.patch(url, headers=headers, json={"last_day": "2026-11-29"}).status_code == 200


def test_join_code_rotation_and_qr_codes(app, client, db):
    _, headers = _coordinator(db)
    created = client.post("/api/v1/caravans", json=BODY, headers=headers).json
    url = f"/api/v1/caravans/{created['id']}"
    rotated = client.post(f"{url}/join-code", headers=headers).json
    assert rotated["join_code"] != created["join_code"]
    assert rotated["join_url"].endswith(rotated["join_code"])
    old = client.post("/api/v1/enrollments", json={"join_code": created["join_code"],
                                                   "display_name": "Dr A"})
    assert old.status_code == 404
    new = client.post("/api/v1/enrollments", json={"join_code": rotated["join_code"],
                                                   "display_name": "Dr A"})
    assert new.status_code == 201
    svg = client.get(f"{url}/qr.svg", headers=headers)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert b"<svg" in svg.data and "no-store" in svg.headers["Cache-Control"]
    png = client.get(f"{url}/qr.png", headers=headers)
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG")
    assert client.get(f"{url}/qr.png").status_code == 401


def test_qr_code_encodes_the_join_url(app, client, db):
    import segno

    _, headers = _coordinator(db)
    created = client.post("/api/v1/caravans", json=BODY, headers=headers).json
    svg = client.get(f"/api/v1/caravans/{created['id']}/qr.svg", headers=headers).data
    import io

    expected = io.BytesIO()
    segno.make(created["join_url"], error="m").save(
        expected, kind="svg", scale=8, border=4, xmldecl=True, title=created["title"])
    assert svg == expected.getvalue()


def test_point_reader_never_raises():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from fieldsvc.areas.points import parse_point

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=40) | st.from_regex(
        r"-?\d{1,3}([.,]\d{1,6})?[ ,;]+-?\d{1,3}([.,]\d{1,6})?", fullmatch=True))
    def check(text):
        point = parse_point(text)
        assert point is None or all(isinstance(v, float) for v in point)

    check()


def test_odd_locations_get_422_never_500(app, client, db):
    _, headers = _coordinator(db)
    for location in ["30,33 -5,84", "30.33", "N 30 W 5", "999, 999", "30°N", "٣٠٫٣٣، -٥٫٨٤",
                     "30.33, -5.84, 1200", "91 0 0 N, 5 0 0 W", "nan, nan", "inf, -inf"]:
        body = {**BODY, "sites": [{"name": "École", "location": location}]}
        response = client.post("/api/v1/caravans", json=body, headers=headers)
        assert response.status_code in (201, 422), (location, response.status_code)
        assert "NaN" not in response.get_data(as_text=True)
        assert "Infinity" not in response.get_data(as_text=True)
        if response.status_code == 201:
            site = response.json["sites"][0]
            assert (site["lat"], site["lon"]) == (30.33, -5.84), location


def test_every_json_route_refuses_other_bodies_with_415(app, client, db):
    # As submissions do: a form or text body is refused for its type, not as invalid fields.
    _, header = _coordinator(db)
    caravan = make_caravan(join_code="K7QX4MZP")
    _, device = make_enrollment(caravan)
    db.session.commit()
    enrollment = {"join_code": "K7QX4MZP", "display_name": "Dr Amina"}
    for method, url, headers, body in [
        ("POST", "/api/v1/caravans", header, BODY),
        ("PATCH", f"/api/v1/caravans/{caravan.id}", header, {"title": "Caravane de Zagora"}),
        ("POST", "/api/v1/enrollments", {}, enrollment),
        ("POST", "/api/v1/volunteers/me", device, {}),
        ("PATCH", "/api/v1/volunteers/me", device, {"public_consent": True}),
    ]:
        response = client.open(url, method=method, headers=headers, data=json.dumps(body),
                               content_type="text/plain")
        assert response.status_code == 415, (method, url, response.json)
        assert response.content_type == "application/problem+json"
        assert "Content-Type" in response.json["errors"]
    assert db.session.query(Caravan).count() == 1
