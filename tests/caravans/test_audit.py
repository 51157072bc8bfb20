"""The audit log: who did what to caravans and devices, readable within one's scope."""

from __future__ import annotations

import datetime as dt

from fieldsvc.accounts.models import AuditEvent
from tests.factories import auth, make_areas, make_caravan, make_user

BODY = {"title": "Caravane de Ouahat Sidi Brahim", "commune": "07.351.02.07",
        "first_day": "2026-11-27", "last_day": "2026-11-27", "specialties": ["GEN"]}


def test_admin_reads_all_coordinator_their_regions(app, client, db):
    make_areas()
    admin = make_user("admin")
    draa = make_user("coordinator", regions=["08"])
    marrakech = make_user("coordinator", regions=["07"])
    planner = make_user("planner")
    zagora = make_caravan(join_code="ZAGO2222")
    db.session.commit()
    assert client.post("/api/v1/caravans", json=BODY, headers=auth(marrakech)).status_code == 201
    joined = client.post("/api/v1/enrollments",
                         json={"join_code": "ZAGO2222", "display_name": "Dr A"}).json
    assert client.delete(f"/api/v1/enrollments/{joined['enrollment_id']}",
                         headers=auth(draa)).status_code == 204

    everything = client.get("/api/v1/audit", headers=auth(admin))
    assert everything.status_code == 200
    actions = {event["action"] for event in everything.json["items"]}
    assert {"caravan.create", "enrollment.create", "device.revoke"} <= actions

    mine = client.get("/api/v1/audit", headers=auth(draa)).json["items"]
    assert {e["action"] for e in mine} == {"enrollment.create", "device.revoke"}
    assert {e["region_code"] for e in mine} == {"08"}
    revoke = next(e for e in mine if e["action"] == "device.revoke")
    assert revoke["actor_kind"] == "user" and revoke["actor_id"] == str(draa.id)
    assert revoke["detail"]["caravan_id"] == zagora.id

    theirs = client.get("/api/v1/audit", headers=auth(marrakech)).json["items"]
    assert [e["action"] for e in theirs] == ["caravan.create"]

    assert client.get("/api/v1/audit", headers=auth(planner)).status_code == 403
    assert client.get("/api/v1/audit").status_code == 401


def test_filters_and_pagination(app, client, db):
    make_areas()
    admin = make_user("admin")
    db.session.commit()
    headers = auth(admin)
    for number in range(5):
        db.session.add(AuditEvent(actor_kind="system", action="enrollment.create",
                                  region_code="08", at=dt.datetime(2026, 11, 20 + number,
                                                                   tzinfo=dt.UTC)))
    db.session.add(AuditEvent(actor_kind="system", action="caravan.create", region_code="08",
                              at=dt.datetime(2026, 11, 22, tzinfo=dt.UTC)))
    db.session.commit()
    only = client.get("/api/v1/audit?action=caravan.create", headers=headers).json["items"]
    assert len(only) == 1
    window = client.get("/api/v1/audit?action=enrollment.create&from=2026-11-21T00:00:00Z"
                        "&to=2026-11-23T12:00:00Z", headers=headers).json["items"]
    assert [e["at"][:10] for e in window] == ["2026-11-23", "2026-11-22", "2026-11-21"]
    page = client.get("/api/v1/audit?action=enrollment.create&limit=2&offset=2", headers=headers)
    assert page.status_code == 200 and len(page.json["items"]) == 2
    assert (page.json["total"], page.json["limit"], page.json["offset"]) == (5, 2, 2)
    assert client.get("/api/v1/audit?from=yesterday", headers=headers).status_code == 422
