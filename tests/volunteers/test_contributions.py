"""Contributions: totals equal the summary's, tallies only with full detail, names only with consent."""

from __future__ import annotations

import datetime as dt

from fieldsvc.accounts.services import get_or_create_organization
from fieldsvc.caravans.models import Volunteer
from fieldsvc.extensions import db as _db
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_tally, make_user

LINES = [("consultations", "F", "25-49", None, 40), ("consultations", "M", "5-14", None, 3),
         ("procedures", "F", "50-64", None, 2)]


def _season(db):
    make_areas()
    get_or_create_organization("Conseil communal de Ouahat Sidi Brahim", kind="commune_council")
    joint = make_caravan("07.351.02.07", title="Caravane de Ouahat Sidi Brahim",
                         organizers=("Wahat Al-Khair", "Conseil communal de Ouahat Sidi Brahim"),
                         sites=(("École", 31.70, -7.95),), first_day=dt.date(2026, 3, 14),
                         last_day=dt.date(2026, 3, 16), status="closed")
    solo = make_caravan(organizers=("Wahat Al-Khair",), first_day=dt.date(2026, 11, 27))
    make_caravan(organizers=("Tafilalet Santé",), status="planned",
                 first_day=dt.date(2027, 1, 10))  # not held yet: contributes nothing
    named = Volunteer(display_name="Dr Amina Bennani", specialty_code="OPH", public_consent=True,
                      profile_key_hash="a" * 64)
    shy = Volunteer(display_name="Dr Discret", specialty_code="GEN", public_consent=False,
                    profile_key_hash="b" * 64)
    _db.session.add_all([named, shy])
    _db.session.flush()
    for caravan in (joint, solo):
        enrollment, _ = make_enrollment(caravan, display_name=named.display_name)
        enrollment.volunteer_id = named.id
        submission = make_tally(caravan, day=caravan.first_day, lines=LINES)
        submission.enrollment_id = enrollment.id
    enrollment, _ = make_enrollment(joint, display_name=shy.display_name, specialty="GEN")
    enrollment.volunteer_id = shy.id
    submission = make_tally(joint, day=joint.first_day, specialty="GEN",
                            lines=[("consultations", "F", "65+", None, 7)])
    submission.enrollment_id = enrollment.id
    db.session.commit()
    return joint, solo, named, shy


def test_organization_totals_equal_the_summary_for_an_admin(app, client, db):
    joint, solo, _, _ = _season(db)
    headers = auth(make_user("admin"))
    body = client.get("/api/v1/contributions?by=organization", headers=headers).json
    rows = {row["name"]: row for row in body["rows"]}
    assert set(rows) == {"Wahat Al-Khair", "Conseil communal de Ouahat Sidi Brahim"}
    wahat = rows["Wahat Al-Khair"]
    assert (wahat["caravans"], wahat["days"], wahat["communes_reached"]) == (2, 5, 2)
    org_id = wahat["organizations"][0]["id"]
    for measure in ("consultations", "procedures"):
        summary = client.get(f"/api/v1/summary?organization={org_id}&measure={measure}",
                             headers=headers).json
        assert wahat[measure] == summary["total"]
    assert wahat["consultations"] == 2 * 43 + 7 and wahat["procedures"] == 4
    [partnership] = client.get("/api/v1/contributions?by=partnership", headers=headers).json["rows"]
    assert partnership["name"] == "Conseil communal de Ouahat Sidi Brahim + Wahat Al-Khair"
    assert (partnership["caravans"], partnership["days"], partnership["consultations"]) == (1, 3, 50)
    assert partnership["communes"] == ["07.351.02.07"]
    year = client.get("/api/v1/contributions?by=organization&year=2026", headers=headers).json
    assert {r["name"]: r["caravans"] for r in year["rows"]}["Wahat Al-Khair"] == 2
    assert client.get("/api/v1/contributions?by=organization&year=2025",
                      headers=headers).json["rows"] == []


def test_tallies_only_with_full_detail_and_for_the_callers_own_organization(app, client, db):
    _season(db)
    planner = make_user("planner", organization="Wahat Al-Khair")
    db.session.commit()
    rows = client.get("/api/v1/contributions", headers=auth(planner)).json["rows"]
    own = next(r for r in rows if r["name"] == "Wahat Al-Khair")
    other = next(r for r in rows if r["name"] != "Wahat Al-Khair")
    assert own["consultations"] == 93 and own["full_detail"]
    assert other["consultations"] is None and other["suppressed"] == "full_detail_only"
    assert other["caravans"] == 1 and other["days"] == 3
    public = client.get("/api/v1/contributions?by=partnership").json["rows"]
    assert public[0]["consultations"] is None and public[0]["procedures"] is None
    assert public[0]["caravans"] == 1


def test_a_coordinators_organization_gives_no_tallies_outside_their_regions(app, client, db):
    """Regression: a coordinator with an organization got its tallies from every region, while the
    summary gives them no full detail for organization=<id> (issue 9: exact organization totals
    over caravans outside their regions added constraints the protected release never saw)."""
    _season(db)
    coordinator = make_user("coordinator", regions=["01"], organization="Wahat Al-Khair")
    db.session.commit()
    headers = auth(coordinator)
    for by in ("organization", "partnership"):
        rows = client.get(f"/api/v1/contributions?by={by}", headers=headers).json["rows"]
        assert rows and all(r["consultations"] is None and r["procedures"] is None
                            and r["suppressed"] == "full_detail_only" for r in rows), rows
    wahat = next(r for r in client.get("/api/v1/contributions", headers=headers).json["rows"]
                 if r["name"] == "Wahat Al-Khair")
    summary = client.get(
        f"/api/v1/summary?organization={wahat['organizations'][0]['id']}&measure=consultations",
        headers=headers)
    assert summary.status_code == 422  # the summary's rule, which contributions now follows
    page = client.get("/contributions", headers=headers).get_data(as_text=True)
    assert "<td>93</td>" not in page  # a cell, not any "93" (the page's CSRF token may hold one)


def test_a_volunteer_without_consent_is_never_named_publicly(app, client, db):
    _, _, named, shy = _season(db)
    coordinator = make_user("coordinator", regions=["08"])
    admin = make_user("admin")
    db.session.commit()
    public = client.get("/api/v1/contributions?by=volunteer")
    assert public.status_code == 200
    assert [r["name"] for r in public.json["rows"]] == ["Dr Amina Bennani"]
    assert "Dr Discret" not in public.get_data(as_text=True)
    row = public.json["rows"][0]
    assert (row["caravans"], row["days"], row["specialty"]) == (2, 5, "OPH")
    assert row["consultations"] is None
    staff = client.get("/api/v1/contributions?by=volunteer", headers=auth(coordinator)).json
    assert sorted(r["name"] for r in staff["rows"]) == ["Dr Amina Bennani", "Dr Discret"]
    assert all(r["consultations"] is None for r in staff["rows"])
    full = client.get("/api/v1/contributions?by=volunteer", headers=auth(admin)).json["rows"]
    assert {r["name"]: r["consultations"] for r in full} == {"Dr Amina Bennani": 86,
                                                            "Dr Discret": 7}
    page = client.get("/contributions?by=volunteer")
    assert page.status_code == 200 and "Dr Discret" not in page.get_data(as_text=True)


def test_unknown_grouping_is_a_422_that_names_the_choices(app, client, db):
    response = client.get("/api/v1/contributions?by=doctor")
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert "by" in response.json["errors"]


def test_a_partnership_lists_the_caravans_held_together(app, client, db):
    joint, solo, _, _ = _season(db)
    [partnership] = client.get("/api/v1/contributions?by=partnership").json["rows"]
    assert [(h["id"], h["title"], h["commune"], h["days"], h["first_day"])
            for h in partnership["history"]] == [
        (joint.id, "Caravane de Ouahat Sidi Brahim", "07.351.02.07", 3, "2026-03-14")]
    assert partnership["history"][0]["specialties"] == joint.specialties
    # The association's caravan without the council is not part of their shared history.
    assert solo.id not in [h["id"] for h in partnership["history"]]
    organizations = client.get("/api/v1/contributions").json["rows"]
    assert all(row["history"] == [] for row in organizations)
    page = client.get("/contributions?by=partnership&lang=fr").get_data(as_text=True)
    assert "Caravanes tenues ensemble" in page and "Caravane de Ouahat Sidi Brahim" in page
    assert solo.title not in page
