"""Coordination: pledges against a caravan's planned specialties, gaps, and enrollments at start."""

from __future__ import annotations

import datetime as dt
import re

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.caravans.models import Enrollment
from fieldsvc.caravans.services import MAX_FAILED_ENROLLMENTS
from fieldsvc.volunteers.models import Pledge
from tests.factories import auth, make_areas, make_caravan, make_user


def _planned(db):
    make_areas()
    first = dt.date.today() + dt.timedelta(days=20)
    caravan = make_caravan(status="planned", first_day=first, join_code="PLDG2345",
                           specialties=("GEN", "OPH", "PED"))
    coordinator = make_user("coordinator", regions=["08"])
    db.session.commit()
    return caravan, {**auth(coordinator), "Accept-Language": "en"}


def test_pledges_fill_gaps_and_become_enrollments_when_the_caravan_starts(app, client, db):
    caravan, headers = _planned(db)
    staffing = client.get(f"/api/v1/caravans/{caravan.id}/staffing", headers=headers).json
    assert staffing["gaps"] == ["GEN", "OPH", "PED"]
    assert staffing["pledge_url"].endswith("/pledge/PLDG-2345")
    sent = client.post("/api/v1/pledges", json={"join_code": "pldg-2345",
                                                "display_name": "Dr Amina", "specialty": "OPH"})
    assert sent.status_code == 201, sent.json
    token = sent.json["token"]
    assert sent.json["pledge"]["enrollment_id"] is None
    staffing = client.get(f"/api/v1/caravans/{caravan.id}/staffing", headers=headers).json
    assert staffing["gaps"] == ["GEN", "PED"]
    assert {r["specialty"]: r["pledged"] for r in staffing["specialties"]}["OPH"] == 1
    # Before the caravan starts, the pledge key opens nothing.
    assert client.get(f"/api/v1/caravans/{caravan.id}",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401

    started = client.patch(f"/api/v1/caravans/{caravan.id}", json={"status": "active"},
                           headers=headers)
    assert started.status_code == 200
    enrollment = db.session.query(Enrollment).filter_by(caravan_id=caravan.id).one()
    assert (enrollment.display_name, enrollment.specialty_code) == ("Dr Amina", "OPH")
    assert db.session.query(Pledge).one().enrollment_id == enrollment.id
    own = client.get(f"/api/v1/caravans/{caravan.id}", headers={"Authorization": f"Bearer {token}"})
    assert own.status_code == 200
    staffing = client.get(f"/api/v1/caravans/{caravan.id}/staffing", headers=headers).json
    assert {r["specialty"]: (r["pledged"], r["enrolled"]) for r in staffing["specialties"]}[
        "OPH"] == (0, 1)
    assert db.session.query(AuditEvent).filter_by(action="pledge.create").count() == 1


def test_pledge_refusals_say_what_to_fix_and_store_nothing(app, client, db):
    caravan, headers = _planned(db)
    unplanned = client.post("/api/v1/pledges", headers={"Accept-Language": "en"},
                            json={"join_code": "PLDG2345", "display_name": "Dr B",
                                  "specialty": "DEN"})
    assert unplanned.status_code == 422 and "GEN, OPH, PED" in unplanned.json["detail"]
    unknown = client.post("/api/v1/pledges", json={"join_code": "ZZZZ9999",
                                                   "display_name": "Dr B", "specialty": "OPH"})
    assert unknown.status_code == 404
    blank = client.post("/api/v1/pledges", json={"join_code": "PLDG2345", "display_name": "  ",
                                                 "specialty": "OPH"})
    assert blank.status_code == 422
    assert db.session.query(Pledge).count() == 0
    client.patch(f"/api/v1/caravans/{caravan.id}", json={"status": "active"}, headers=headers)
    late = client.post("/api/v1/pledges", json={"join_code": "PLDG2345", "display_name": "Dr B",
                                                "specialty": "OPH"})
    assert late.status_code == 409


def test_pledge_page_shows_gaps_and_records_a_pledge(app, client, db):
    caravan, headers = _planned(db)
    page = client.get("/pledge/PLDG-2345?lang=en")
    assert page.status_code == 200
    assert page.get_data(as_text=True).count("nobody yet") == 3
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True))[1]
    refused = client.post("/pledge/PLDG-2345?lang=en",
                          data={"display_name": "Dr Amina", "specialty": "PED"})
    assert refused.status_code in (400, 422) and "your pledge is recorded" not in refused.get_data(
        as_text=True)
    sent = client.post("/pledge/PLDG-2345?lang=en",
                       data={"display_name": "Dr Amina", "specialty": "PED", "csrf_token": token})
    assert sent.status_code == 200
    assert "your pledge is recorded" in sent.get_data(as_text=True)
    assert sent.get_data(as_text=True).count("nobody yet") == 2
    wrong = client.post("/pledge/PLDG-2345?lang=en",
                        data={"display_name": "", "specialty": "PED", "csrf_token": token})
    assert wrong.status_code == 422 and "Write your name." in wrong.get_data(as_text=True)
    assert client.get("/pledge/NOPE-NOPE").status_code == 404
    gaps = client.get(f"/caravans/{caravan.id}/staffing?lang=en", headers=headers)
    assert gaps.status_code == 200
    text = gaps.get_data(as_text=True)
    assert "Dr Amina" in text and "/pledge/PLDG-2345" in text


def test_wrong_codes_on_pledges_count_towards_the_join_code_throttle(app, client, db):
    _planned(db)
    wrong = {"join_code": "ZZZZ9999", "display_name": "Dr B", "specialty": "OPH"}
    for _ in range(MAX_FAILED_ENROLLMENTS):
        assert client.post("/api/v1/pledges", json=wrong).status_code == 404
    # The failures were kept although each request failed: the next attempt waits, right or not.
    blocked = client.post("/api/v1/pledges", json={**wrong, "join_code": "PLDG2345"})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    assert db.session.query(Pledge).count() == 0
