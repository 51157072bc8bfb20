"""POST /api/v1/submissions: validation, idempotency, scope and the late-sync window."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.caravans.models import Enrollment
from fieldsvc.extensions import db
from fieldsvc.security import token_digest
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine
from tests.factories import auth, make_caravan, make_enrollment, make_user
from tests.tallies.helpers import DAY, field_setup, lines, payload


def _count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def test_volunteer_submits_and_gets_the_stored_submission(client):
    caravan, enrollment, header = field_setup()
    body = payload(caravan, note="Coupure d'électricité l'après-midi")
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 201, response.json
    stored = response.json
    assert stored["id"] == body["id"]
    assert stored["caravan_id"] == caravan.id
    assert stored["site_id"] == caravan.sites[0].id
    assert stored["day"] == DAY.isoformat()
    assert stored["specialty"] == "OPH"
    assert stored["version"] == 1 and stored["version_count"] == 1
    assert stored["review_status"] == "received"
    assert stored["flags"] == []
    assert stored["enrollment_id"] == enrollment.id
    assert stored["entered_by_id"] is None
    assert stored["note"] == "Coupure d'électricité l'après-midi"
    assert {(line["measure"], line["age_band"], line["count"]) for line in stored["lines"]} == {
        ("consultations", "50-64", 12), ("consultations", "65+", 4)}
    assert _count(TallyLine) == 2
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "submission.create")).one()
    assert event.object_id == body["id"] and event.region_code == "08"
    assert event.actor_kind == "volunteer"


def test_replay_answers_200_with_the_identical_body_and_stores_nothing(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    first = client.post("/api/v1/submissions", json=body, headers=header)
    assert first.status_code == 201
    reordered = dict(body, lines=list(reversed(body["lines"])), note="another note")
    for replay in (body, reordered, dict(body, id=body["id"].upper())):
        again = client.post("/api/v1/submissions", json=replay, headers=header)
        assert again.status_code == 200, again.json
        assert again.get_data() == first.get_data()
    assert _count(Submission) == 1
    assert _count(SubmissionVersion) == 1
    assert _count(TallyLine) == 2


def test_same_id_other_content_is_409_pointing_to_put(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    assert client.post("/api/v1/submissions", json=body, headers=header).status_code == 201
    changed = dict(body, lines=lines(consultations=13))
    response = client.post("/api/v1/submissions", json=changed, headers=header)
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    assert f"PUT /api/v1/submissions/{body['id']}" in response.json["detail"]
    assert "id" in response.json["errors"]
    assert _count(SubmissionVersion) == 1


BAD_LINES = [
    ({"measure": "haircuts"}, "lines[0].measure", "Unknown measure haircuts"),
    ({"sex": "X"}, "lines[0].sex", "Use F or M."),
    ({"age_band": "15-49"}, "lines[0].age_band", "Use one of 0-4, 5-14"),
    ({"condition": "XXIII"}, "lines[0].condition", "ICD-10 chapter"),
    ({"count": 1.5}, "lines[0].count", "whole number"),
    ({"count": "3"}, "lines[0].count", "whole number"),
    ({"count": True}, "lines[0].count", "whole number"),
    ({"count": -1}, "lines[0].count", "from 0 to 10000"),
    ({"count": 10001}, "lines[0].count", "from 0 to 10000"),
    ({"count": None}, "lines[0].count", ""),
    ({"patient_name": "Fatima"}, "lines[0].patient_name", "Unknown field"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_LINES)
def test_each_bad_line_is_refused_with_its_field(client, change, field, message):
    caravan, _, header = field_setup()
    body = payload(caravan)
    body["lines"][0].update(change)
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 422, response.json
    assert response.content_type == "application/problem+json"
    assert field in response.json["errors"], response.json
    assert message in " ".join(response.json["errors"][field])
    assert _count(Submission) == 0


def test_edge_counts_are_accepted(client):
    caravan, _, header = field_setup()
    body = payload(caravan, lines=[
        {"measure": "consultations", "sex": "F", "age_band": "0-4", "count": 0},
        {"measure": "consultations", "sex": "F", "age_band": "5-14", "count": 10_000},
        {"measure": "consultations", "sex": "F", "age_band": "5-14", "condition": "XXII",
         "count": 1},
    ])
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 201, response.json


def test_duplicate_line_keys_are_refused(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    body["lines"].append(dict(body["lines"][1], count=9))
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 422
    assert "lines[2]" in response.json["errors"]
    assert "lines[1]" in response.json["errors"]["lines[2]"][0]


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"specialty": "ZZZ"}, "specialty", "Unknown specialty ZZZ"),
    ({"lines": []}, "lines", "from 1 to 500 lines"),
    ({"note": "x" * 501}, "note", "under 500 characters"),
    ({"day": "28/11/2026"}, "day", "Not a valid date"),
    ({"id": "not-a-uuid"}, "id", "Not a valid UUID"),
    ({"caravan_id": "1"}, "caravan_id", "Not a valid integer"),
    ({"extra": 1}, "extra", "Unknown field"),
])
def test_bad_fields_are_refused_with_their_message(client, change, field, message):
    caravan, _, header = field_setup()
    body = payload(caravan, **change)
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 422, response.json
    assert message in " ".join(response.json["errors"][field])


def test_too_many_lines_is_refused(client):
    caravan, _, header = field_setup()
    many = [{"measure": "consultations", "sex": sex, "age_band": band, "condition": chapter,
             "count": 1}
            for sex in "FM" for band in ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")
            for chapter in ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI",
                            "XII", "XIII", "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX",
                            "XXI", "XXII"]]
    many += [dict(line, measure="medicines") for line in many]
    assert len(many) == 528
    response = client.post("/api/v1/submissions", json=payload(caravan, lines=many), headers=header)
    assert response.status_code == 422
    assert "from 1 to 500 lines" in response.json["errors"]["lines"][0]
    response = client.post("/api/v1/submissions", json=payload(caravan, lines=many[:500]),
                           headers=header)
    assert response.status_code == 201


def test_day_outside_the_caravan_and_foreign_site_are_refused(client):
    caravan, _, header = field_setup()
    other = make_caravan(first_day=DAY, sites=(("Dispensaire", 30.3, -5.8),))
    db.session.commit()
    response = client.post("/api/v1/submissions", headers=header, json=payload(
        caravan, day=(DAY - dt.timedelta(days=1)).isoformat(), site_id=other.sites[0].id))
    assert response.status_code == 422
    assert "is not a day of this caravan" in response.json["errors"]["day"][0]
    assert "is not a site of this caravan" in response.json["errors"]["site_id"][0]
    response = client.post("/api/v1/submissions", headers=header,
                           json=payload(caravan, caravan_id=999999))
    assert response.status_code == 422
    assert "No caravan has id 999999" in response.json["errors"]["caravan_id"][0]
    assert _count(Submission) == 0


def test_a_future_day_is_refused(client):
    caravan, _, header = field_setup(first_day=DAY + dt.timedelta(days=5))
    response = client.post("/api/v1/submissions", headers=header, json=payload(
        caravan, day=(DAY + dt.timedelta(days=5)).isoformat()))
    assert response.status_code == 422
    assert "has not happened yet" in response.json["errors"]["day"][0]


def test_tomorrow_is_refused_even_on_a_planned_caravan_and_today_accepted(client):
    today = DAY + dt.timedelta(days=1)
    caravan, _, header = field_setup(first_day=today, last_day=today + dt.timedelta(days=2),
                                     status="planned")
    response = client.post("/api/v1/submissions", headers=header, json=payload(
        caravan, day=(today + dt.timedelta(days=1)).isoformat()))
    assert response.status_code == 422, response.json
    assert "has not happened yet" in response.json["errors"]["day"][0]
    assert _count(Submission) == 0
    response = client.post("/api/v1/submissions", headers=header, json=payload(
        caravan, day=today.isoformat()))
    assert response.status_code == 201, response.json


def test_json_only_and_size_limit(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    response = client.post("/api/v1/submissions", data=json.dumps(body), headers=header,
                           content_type="text/plain")
    assert response.status_code == 415
    assert response.content_type == "application/problem+json"
    assert "Content-Type" in response.json["errors"]
    response = client.post("/api/v1/submissions", data="{not json", headers=header,
                           content_type="application/json")
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    huge = dict(body, note="x" * (300 * 1024))
    response = client.post("/api/v1/submissions", json=huge, headers=header)
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert "256 KB" in response.json["detail"]
    response = client.post("/api/v1/submissions", json=[body], headers=header)
    assert response.status_code == 422
    assert _count(Submission) == 0


def test_volunteer_of_another_caravan_gets_403(client):
    caravan, _, _ = field_setup()
    other = make_caravan(first_day=DAY, title="Caravane de Tinghir", commune="08.577.01.11")
    _, other_header = make_enrollment(other)
    db.session.commit()
    response = client.post("/api/v1/submissions", json=payload(caravan), headers=other_header)
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
    assert "another caravan" in response.json["detail"]
    assert _count(Submission) == 0


def test_revoked_token_gets_401(client):
    caravan, enrollment, header = field_setup()
    db.session.get(Enrollment, enrollment.id).revoked_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    response = client.post("/api/v1/submissions", json=payload(caravan), headers=header)
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert client.post("/api/v1/submissions", json=payload(caravan)).status_code == 401


def test_planner_may_not_submit(client):
    caravan, _, _ = field_setup()
    planner = make_user("planner", organization="Wahat Al-Khair")
    response = client.post("/api/v1/submissions", json=payload(caravan), headers=auth(planner))
    assert response.status_code == 403


def test_coordinator_outside_the_region_gets_403_on_write(client):
    caravan, _, _ = field_setup()
    outsider = make_user("coordinator", regions=["07"])
    response = client.post("/api/v1/submissions", json=payload(caravan), headers=auth(outsider))
    assert response.status_code == 403
    assert "outside your regions" in response.json["detail"]


def test_coordinator_enters_a_paper_sheet_for_a_volunteer(client):
    caravan, enrollment, _ = field_setup()
    coordinator = make_user("coordinator", regions=["08"])
    header = auth(coordinator)
    body = payload(caravan, enrollment_id=enrollment.id)
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 201, response.json
    assert response.json["entered_by_id"] == coordinator.id
    assert response.json["enrollment_id"] == enrollment.id
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "submission.create")).one()
    assert event.actor_kind == "user" and event.detail["paper"] is True
    other = make_caravan(first_day=DAY, title="Autre")
    foreign, _ = make_enrollment(other)
    db.session.commit()
    response = client.post("/api/v1/submissions", headers=header,
                           json=payload(caravan, enrollment_id=foreign.id))
    assert response.status_code == 422
    assert "not a volunteer of this caravan" in response.json["errors"]["enrollment_id"][0]


def test_late_sync_is_accepted_for_30_days_after_close_then_refused(client):
    first = DAY - dt.timedelta(days=40)
    caravan, _, header = field_setup(first_day=first, last_day=first + dt.timedelta(days=1),
                                     status="closed")
    # Closed 10 days after its last day: phones may sync until 30 days after closing.
    caravan.closed_at = dt.datetime.combine(first + dt.timedelta(days=11), dt.time(12),
                                            tzinfo=dt.UTC)
    db.session.commit()
    body = payload(caravan, day=first.isoformat())
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 201, response.json
    caravan.closed_at = dt.datetime.combine(first + dt.timedelta(days=5), dt.time(12),
                                            tzinfo=dt.UTC)
    db.session.commit()
    # Now past the window: the device token itself has expired.
    assert client.post("/api/v1/submissions", json=body, headers=header).status_code == 401
    coordinator = make_user("coordinator", regions=["08"])
    late = payload(caravan, day=first.isoformat())
    response = client.post("/api/v1/submissions", json=late, headers=auth(coordinator))
    assert response.status_code == 201, "coordinators may still enter a late paper sheet"


def test_late_sync_message_for_a_volunteer(client, app):
    first = DAY - dt.timedelta(days=40)
    caravan, enrollment, header = field_setup(first_day=first, status="closed")
    caravan.closed_at = dt.datetime.combine(first + dt.timedelta(days=1), dt.time(18),
                                            tzinfo=dt.UTC)
    db.session.commit()
    # The token lives as long as the window; test the service's own refusal with a live token.
    from fieldsvc.errors import ValidationFailed
    from fieldsvc.security import Principal
    from fieldsvc.tallies.schemas import SubmissionCreateSchema
    from fieldsvc.tallies.services import submit

    principal = Principal(role="volunteer", enrollment=db.session.get(Enrollment, enrollment.id))
    content = SubmissionCreateSchema().load(payload(caravan, day=first.isoformat()))
    with app.test_request_context(headers={"Accept-Language": "en"}):
        with pytest.raises(ValidationFailed) as error:
            submit(content, principal)
    assert error.value.status == 422
    until = (first + dt.timedelta(days=31)).isoformat()
    assert f"accepted until {until}" in error.value.detail
    assert error.value.errors["day"]
    db.session.rollback()
    assert _count(Submission) == 0


def test_unknown_token_is_refused_before_parsing(client):
    response = client.post("/api/v1/submissions", json={},
                           headers={"Authorization": "Bearer " + token_digest("x")})
    assert response.status_code == 401


NASTY = [
    {"caravan_id": 10**30}, {"site_id": 2**40}, {"enrollment_id": -5}, {"note": "a\x00b"},
    {"specialty": "OP\x00H"}, {"day": "2026-02-30"}, {"day": None}, {"lines": None},
    {"lines": "consultations"}, {"lines": [None]}, {"lines": [[]]}, {"id": None},
    {"id": "\x00"}, {"caravan_id": None}, {"caravan_id": 1.0}, {"caravan_id": True},
]


def test_nasty_input_is_a_4xx_problem_and_stores_nothing(client):
    caravan, _, header = field_setup()
    for change in NASTY:
        body = dict(payload(caravan), **change)
        response = client.post("/api/v1/submissions", json=body, headers=header)
        assert 400 <= response.status_code < 500, (change, response.json)
        assert response.content_type == "application/problem+json"
        assert response.json.get("errors"), (change, response.json)
    assert _count(Submission) == 0


def test_odd_addresses_are_404(client):
    caravan, _, header = field_setup()
    for path in ("/api/v1/submissions/%00", "/api/v1/submissions/not-a-uuid",
                 f"/api/v1/caravans/{10**20}/completeness"):
        response = client.get(path, headers=header)
        assert response.status_code == 404, (path, response.json)
        assert response.content_type == "application/problem+json"
    response = client.post("/api/v1/submissions/%00/review", headers=header,
                           json={"status": "approved", "version": 1})
    assert response.status_code == 403  # volunteers never review


def test_replay_still_answers_when_the_content_would_no_longer_validate(client):
    caravan, _, header = field_setup()
    body = payload(caravan)
    first = client.post("/api/v1/submissions", json=body, headers=header)
    assert first.status_code == 201
    # The caravan's dates were corrected afterwards; the phone's retry must not become an error.
    caravan.first_day = DAY + dt.timedelta(days=1)
    db.session.commit()
    again = client.post("/api/v1/submissions", json=body, headers=header)
    assert again.status_code == 200
    assert again.get_data() == first.get_data()
    fresh = payload(caravan)
    response = client.post("/api/v1/submissions", json=fresh, headers=header)
    assert response.status_code == 422
