"""Amendments, what counts, review, plausibility flags, lists and completeness."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.extensions import db
from fieldsvc.tallies.models import Submission, SubmissionVersion
from fieldsvc.tallies.services import counted_lines
from tests.factories import auth, make_caravan, make_enrollment, make_user
from tests.tallies.helpers import DAY, field_setup, lines, payload


def _counted(measure: str = "consultations") -> int:
    db.session.rollback()
    rows = counted_lines()
    return db.session.scalar(
        select(func.coalesce(func.sum(rows.c.count), 0)).where(rows.c.measure_code == measure))


def _submit(client, header, body):
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 201, response.json
    return response.json


def test_amendment_makes_a_new_version_and_only_the_latest_counts(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    _submit(client, header, body)
    assert _counted() == 16
    amended = {k: v for k, v in body.items() if k != "id"}
    amended["lines"] = lines(consultations=20)
    response = client.put(f"/api/v1/submissions/{body['id']}", json=amended, headers=header)
    assert response.status_code == 200, response.json
    assert response.json["version"] == 2 and response.json["version_count"] == 2
    assert _counted() == 24
    # The same content again changes nothing (even with its id in the body, and a new note).
    again = dict(amended, id=body["id"], note="relu")
    response = client.put(f"/api/v1/submissions/{body['id']}", json=again, headers=header)
    assert response.status_code == 200
    assert response.json["version"] == 2
    assert db.session.scalar(select(func.count()).select_from(SubmissionVersion)) == 2
    detail = client.get(f"/api/v1/submissions/{body['id']}", headers=header).json
    assert [v["number"] for v in detail["versions"]] == [1, 2]
    assert sum(line["count"] for line in detail["versions"][0]["lines"]) == 16
    assert sum(line["count"] for line in detail["versions"][1]["lines"]) == 24
    assert detail["lines"] == detail["versions"][1]["lines"]
    # Replaying the first POST after the amendment is a stale retry, not a conflict.
    replay = client.post("/api/v1/submissions", json=body, headers=header)
    assert replay.status_code == 200
    assert replay.json["version"] == 2
    actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["submission.create", "submission.amend"]


def test_amendment_rules(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    _submit(client, header, body)
    url = f"/api/v1/submissions/{body['id']}"
    response = client.put(url, json=dict(body, id="0b6f2c9e-3f1c-4b8e-9a51-6f0d2f4a7c11"),
                          headers=header)
    assert response.status_code == 422
    assert "must be the id in the address" in response.json["errors"]["id"][0]
    other = make_caravan(first_day=DAY, title="Autre caravane")
    db.session.commit()
    response = client.put(url, json=dict(body, caravan_id=other.id), headers=header)
    assert response.status_code == 422
    assert "stays with its caravan" in response.json["errors"]["caravan_id"][0]
    response = client.put(url, json=dict(body, lines=[dict(body["lines"][0], count="5")]),
                          headers=header)
    assert response.status_code == 422
    assert "lines[0].count" in response.json["errors"]
    response = client.put("/api/v1/submissions/5a3c1f6e-0000-4000-8000-000000000000",
                          json=body, headers=header)
    assert response.status_code == 404
    assert "POST /api/v1/submissions" in response.json["detail"]
    response = client.put(url, data="x", content_type="text/csv", headers=header)
    assert response.status_code == 415
    # Another volunteer of the same caravan cannot see or amend it.
    _, stranger = make_enrollment(caravan, display_name="Dr Karim")
    db.session.commit()
    assert client.put(url, json=dict(body, lines=lines(3)), headers=stranger).status_code == 404
    assert client.get(url, headers=stranger).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(SubmissionVersion)) == 1


def test_review_and_what_summaries_count(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    _submit(client, header, body)
    coordinator = make_user("coordinator", regions=["08"])
    staff = auth(coordinator)
    url = f"/api/v1/submissions/{body['id']}/review"
    response = client.post(url, json={"status": "rejected", "version": 1}, headers=staff)
    assert response.status_code == 422
    assert "Say why" in response.json["errors"]["reason"][0]
    response = client.post(url, json={"status": "done", "reason": "x", "version": 1},
                           headers=staff)
    assert response.status_code == 422
    assert "approved, flagged or rejected" in response.json["errors"]["status"][0]
    assert client.post(url, json={"status": "approved", "version": 1},
                       headers=header).status_code == 403
    outsider = auth(make_user("coordinator", regions=["07"]))
    assert client.post(url, json={"status": "approved", "version": 1},
                       headers=outsider).status_code == 403
    assert client.get(f"/api/v1/submissions/{body['id']}", headers=outsider).status_code == 403

    response = client.post(url, json={"status": "rejected", "reason": "Compté deux fois",
                                      "version": 1}, headers=staff)
    assert response.status_code == 200, response.json
    assert response.json["review_status"] == "rejected"
    assert _counted() == 0
    mine = client.get(f"/api/v1/submissions/{body['id']}", headers=header).json
    assert mine["review_status"] == "rejected"
    assert mine["review_reason"] == "Compté deux fois"

    # Amending puts the review back to received, and it counts again.
    amended = dict(body, lines=lines(consultations=10))
    response = client.put(f"/api/v1/submissions/{body['id']}", json=amended, headers=header)
    assert response.json["review_status"] == "received"
    assert response.json["review_reason"] is None
    assert _counted() == 14
    # A review of the version the coordinator saw before the amendment is refused.
    stale = client.post(url, json={"status": "rejected", "reason": "Compté deux fois",
                                   "version": 1}, headers=staff)
    assert stale.status_code == 409, stale.json
    assert stale.json["current_version"] == 2 and "version" in stale.json["errors"]
    assert client.get(f"/api/v1/submissions/{body['id']}",
                      headers=header).json["review_status"] == "received"
    response = client.post(url, json={"status": "approved", "version": 2}, headers=staff)
    assert response.json["review_status"] == "approved"
    assert _counted() == 14
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "submission.review")
                               .order_by(AuditEvent.id)).first()
    assert event.detail["status"] == "rejected" and event.region_code == "08"


def test_coordinator_amends_a_paper_sheet(client):
    caravan, enrollment, header = field_setup()
    body = payload(caravan)
    _submit(client, header, body)
    coordinator = make_user("coordinator", regions=["08"])
    response = client.put(f"/api/v1/submissions/{body['id']}",
                          json=dict(body, lines=lines(consultations=30)), headers=auth(coordinator))
    assert response.status_code == 200
    assert response.json["entered_by_id"] == coordinator.id
    assert response.json["enrollment_id"] == enrollment.id
    outsider = auth(make_user("coordinator", regions=["07"]))
    response = client.put(f"/api/v1/submissions/{body['id']}",
                          json=dict(body, lines=lines(consultations=31)), headers=outsider)
    assert response.status_code == 403


def test_counted_lines_columns(client):
    caravan, _, header = field_setup()
    body = payload(caravan, lines=[
        {"measure": "consultations", "sex": "F", "age_band": "25-49", "condition": "XV",
         "count": 7}])
    _submit(client, header, body)
    rows = counted_lines()
    row = db.session.execute(select(rows)).mappings().one()
    assert dict(row) == {
        "caravan_id": caravan.id, "site_id": caravan.sites[0].id, "day": DAY,
        "specialty_code": "OPH", "measure_code": "consultations", "sex": "F",
        "age_band": "25-49", "condition": "XV", "count": 7, "submission_id": body["id"],
        "review_status": "received"}


def _flag_codes(response) -> list[str]:
    return [flag["code"] for flag in response["flags"]]


def test_plausibility_flags(client):
    caravan, _, header = field_setup(specialties=("GEN", "OPH", "PED"))
    first = _submit(client, header, payload(caravan, lines=lines(consultations=100)))
    assert first["flags"] == []
    # 104 + 60 consultations the same day by the same volunteer: over 150.
    second = _submit(client, header, payload(caravan, specialty="GEN",
                                             lines=lines(consultations=56)))
    assert _flag_codes(second) == ["over_150_consultations"]
    assert "164 consultations" in second["flags"][0]["message"]
    odd = _submit(client, header, payload(
        caravan, day=(DAY + dt.timedelta(days=1)).isoformat(), specialty="DER",
        lines=lines(consultations=1, procedures=30, referrals=20, glasses=2)))
    assert sorted(_flag_codes(odd)) == sorted([
        "procedures_above_consultations", "referrals_above_consultations",
        "glasses_outside_ophthalmology", "specialty_not_planned"])
    messages = {flag["code"]: flag["message"] for flag in odd["flags"]}
    assert messages["glasses_outside_ophthalmology"] == (
        "2 pairs of glasses counted under DER, not ophthalmology.")
    assert messages["specialty_not_planned"] == "DER was not planned for this caravan."
    # Flags are not rejections: it is stored and counts.
    assert odd["review_status"] == "received"
    # Fixing the tally recomputes the flags.
    fixed = client.put(f"/api/v1/submissions/{odd['id']}", headers=header, json=dict(
        payload(caravan, day=odd["day"], specialty="OPH", lines=lines(consultations=30,
                                                                        glasses=2)),
        id=odd["id"])).json
    assert fixed["flags"] == []


def test_lists_for_coordinators_and_volunteers(client):
    caravan, _, header = field_setup()
    _, other_header = make_enrollment(caravan, display_name="Dr Karim")
    db.session.commit()
    mine = _submit(client, header, payload(caravan))
    theirs = _submit(client, other_header, payload(caravan, specialty="GEN"))
    coordinator = auth(make_user("coordinator", regions=["08"]))
    listing = client.get(f"/api/v1/submissions?caravan_id={caravan.id}", headers=coordinator).json
    assert {item["id"] for item in listing["items"]} == {mine["id"], theirs["id"]}
    assert listing["total"] == 2
    own = client.get("/api/v1/submissions", headers=header).json
    assert [item["id"] for item in own["items"]] == [mine["id"]]
    assert own["items"][0] == mine
    day = client.get(f"/api/v1/submissions?day={DAY.isoformat()}&status=received",
                     headers=coordinator).json
    assert day["total"] == 2
    assert client.get("/api/v1/submissions?status=approved", headers=coordinator).json["total"] == 0
    outsider = auth(make_user("coordinator", regions=["07"]))
    assert client.get(f"/api/v1/submissions?caravan_id={caravan.id}",
                      headers=outsider).status_code == 403
    assert client.get("/api/v1/submissions", headers=outsider).json["total"] == 0
    admin = auth(make_user("admin"))
    assert client.get("/api/v1/submissions", headers=admin).json["total"] == 2
    assert client.get("/api/v1/submissions?status=nope", headers=admin).status_code == 422


def test_completeness(client):
    caravan, _, header = field_setup(specialties=("GEN", "OPH"))
    _submit(client, header, payload(caravan, specialty="OPH"))
    rejected = _submit(client, header, payload(caravan, specialty="GEN"))
    _submit(client, header, payload(caravan, specialty="DEN",
                                    day=(DAY + dt.timedelta(days=1)).isoformat()))
    coordinator = auth(make_user("coordinator", regions=["08"]))
    client.post(f"/api/v1/submissions/{rejected['id']}/review", headers=coordinator,
                json={"status": "rejected", "reason": "test", "version": 1})
    response = client.get(f"/api/v1/caravans/{caravan.id}/completeness", headers=coordinator)
    assert response.status_code == 200
    cells = {(c["day"], c["specialty"]): (c["status"], c["planned"])
             for c in response.json["cells"]}
    day1, day2 = DAY.isoformat(), (DAY + dt.timedelta(days=1)).isoformat()
    assert cells == {
        (day1, "GEN"): ("missing", True), (day1, "OPH"): ("received", True),
        (day2, "GEN"): ("missing", True), (day2, "OPH"): ("missing", True),
        (day2, "DEN"): ("received", False),
    }
    assert response.json["received"] == 1 and response.json["missing"] == 3
    assert client.get(f"/api/v1/caravans/{caravan.id}/completeness",
                      headers=header).status_code == 200
    outsider = auth(make_user("coordinator", regions=["07"]))
    assert client.get(f"/api/v1/caravans/{caravan.id}/completeness",
                      headers=outsider).status_code == 403
    organizer = auth(make_user("planner", organization="Wahat Al-Khair"))
    assert client.get(f"/api/v1/caravans/{caravan.id}/completeness",
                      headers=organizer).status_code == 200
    stranger = auth(make_user("planner", organization="Union de l'Action Féminine"))
    assert client.get(f"/api/v1/caravans/{caravan.id}/completeness",
                      headers=stranger).status_code == 403
    assert client.get("/api/v1/caravans/99999/completeness",
                      headers=coordinator).status_code == 404
    assert client.get(f"/api/v1/caravans/{caravan.id}/completeness").status_code == 401


def test_nothing_stored_on_refusal(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    body["lines"][1]["count"] = 1.5
    client.post("/api/v1/submissions", json=body, headers=header)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0
