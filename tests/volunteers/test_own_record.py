"""A volunteer's own record from the phone: caravans, days, own tallies, consent and erasure."""

from __future__ import annotations

import datetime as dt

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.accounts.services import get_or_create_organization
from fieldsvc.caravans.models import Enrollment, Volunteer
from fieldsvc.extensions import db as _db
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_tally, make_user

LINES = [("consultations", "F", "25-49", None, 40), ("consultations", "M", "5-14", None, 3),
         ("procedures", "F", "50-64", None, 2)]


def _world(db):
    """Amina (consents) served a closed joint caravan and today's caravan; a colleague too."""
    make_areas()
    get_or_create_organization("Conseil communal de Ouahat Sidi Brahim", kind="commune_council")
    today = dt.date.today()
    joint = make_caravan("07.351.02.07", title="Caravane de Ouahat Sidi Brahim",
                         organizers=("Wahat Al-Khair", "Conseil communal de Ouahat Sidi Brahim"),
                         sites=(("École", 31.70, -7.95),), first_day=dt.date(2026, 3, 14),
                         last_day=dt.date(2026, 3, 16), status="closed")
    current = make_caravan(organizers=("Wahat Al-Khair",), title="Caravane d'aujourd'hui",
                           first_day=today, last_day=today)
    amina = Volunteer(display_name="Dr Amina Bennani", specialty_code="OPH", public_consent=True,
                      profile_key_hash="a" * 64)
    other = Volunteer(display_name="Dr Youssef", specialty_code="GEN", public_consent=True,
                      profile_key_hash="b" * 64)
    _db.session.add_all([amina, other])
    _db.session.flush()
    headers = None
    for caravan in (joint, current):
        enrollment, headers = make_enrollment(caravan, display_name=amina.display_name)
        enrollment.volunteer_id = amina.id
        submission = make_tally(caravan, day=caravan.first_day, lines=LINES)
        submission.enrollment_id = enrollment.id
    enrollment, _ = make_enrollment(joint, display_name=other.display_name, specialty="GEN")
    enrollment.volunteer_id = other.id
    submission = make_tally(joint, day=joint.first_day, specialty="GEN",
                            lines=[("consultations", "F", "65+", None, 7)])
    submission.enrollment_id = enrollment.id
    db.session.commit()
    return joint, current, amina, headers


def test_the_record_lists_caravans_days_own_tallies_and_certificates(app, client, db):
    joint, current, amina, headers = _world(db)
    response = client.get("/api/v1/volunteers/me/record", headers=headers)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["display_name"] == "Dr Amina Bennani" and body["public_consent"] is True
    assert [c["title"] for c in body["caravans"]] == ["Caravane de Ouahat Sidi Brahim",
                                                      "Caravane d'aujourd'hui"]
    # Her own tallies only: the colleague's 7 consultations at the joint caravan are not hers.
    assert [(c["days"], c["consultations"], c["procedures"]) for c in body["caravans"]] == [
        (3, 43, 2), (1, 43, 2)]
    assert (body["days"], body["consultations"], body["procedures"]) == (4, 86, 4)
    codes = {(c["scope"], c["caravan_id"], c["year"]): c for c in body["certificates"]}
    assert ("caravan", joint.id, None) in codes and ("year", None, 2026) in codes
    code = codes[("caravan", joint.id, None)]["code"]
    assert codes[("caravan", joint.id, None)]["verify_url"] == f"/verify/{code}"
    verified = client.get(f"/verify/{code}")
    assert verified.status_code == 200 and "Ouahat Sidi Brahim" in verified.get_data(as_text=True)


def test_staff_and_devices_without_a_profile_get_no_record(app, client, db):
    joint, current, _, _ = _world(db)
    _, bare = make_enrollment(current, display_name="Dr Sans Profil")
    db.session.commit()
    response = client.get("/api/v1/volunteers/me/record", headers=bare)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert client.get("/api/v1/volunteers/me/record",
                      headers=auth(make_user("admin"))).status_code == 403
    assert client.get("/api/v1/volunteers/me/record").status_code == 401


def test_withdrawing_consent_unnames_the_volunteer_publicly(app, client, db):
    _, _, _, headers = _world(db)
    public = client.get("/api/v1/contributions?by=volunteer").json["rows"]
    assert "Dr Amina Bennani" in [r["name"] for r in public]
    changed = client.patch("/api/v1/volunteers/me", headers=headers,
                           json={"public_consent": False})
    assert changed.status_code == 200
    assert client.get("/api/v1/volunteers/me/record", headers=headers).json[
        "public_consent"] is False
    public = client.get("/api/v1/contributions?by=volunteer")
    assert [r["name"] for r in public.json["rows"]] == ["Dr Youssef"]
    assert "Amina" not in client.get("/contributions?by=volunteer").get_data(as_text=True)
    client.patch("/api/v1/volunteers/me", headers=headers, json={"public_consent": True})
    public = client.get("/api/v1/contributions?by=volunteer").json["rows"]
    assert "Dr Amina Bennani" in [r["name"] for r in public]


def test_erasing_keeps_the_totals_and_removes_the_name_everywhere(app, client, db):
    joint, current, amina, headers = _world(db)
    admin = auth(make_user("admin"))
    amina_id = amina.id

    def totals():
        return {measure: client.get(f"/api/v1/summary?measure={measure}", headers=admin)
                .json["total"] for measure in ("consultations", "procedures")}

    def organizations():
        rows = client.get("/api/v1/contributions", headers=admin).json["rows"]
        return {r["name"]: (r["caravans"], r["consultations"]) for r in rows}

    before, orgs_before = totals(), organizations()
    assert before == {"consultations": 93, "procedures": 4}
    erased = client.post("/api/v1/volunteers/me/erase", headers=headers)
    assert erased.status_code == 204
    assert totals() == before and organizations() == orgs_before
    everyone = client.get("/api/v1/contributions?by=volunteer", headers=admin).json["rows"]
    assert [r["name"] for r in everyone] == ["Dr Youssef"]
    db.session.expire_all()
    assert db.session.get(Volunteer, amina_id) is None
    names = {e.display_name for e in db.session.query(Enrollment)}
    assert "Dr Amina Bennani" not in names
    for url in (f"/api/v1/caravans/{joint.id}/enrollments", "/contributions?by=volunteer"):
        assert "Amina" not in client.get(url, headers=admin).get_data(as_text=True)
    assert db.session.query(AuditEvent).filter_by(action="volunteer.erase").count() == 1
    # The device may still send tallies for its caravan, but its profile is gone.
    assert client.get("/api/v1/volunteers/me", headers=headers).status_code == 404
    assert client.get("/api/v1/volunteers/me/record", headers=headers).status_code == 404
    again = client.post("/api/v1/volunteers/me/erase", headers=headers)
    assert again.status_code == 404
