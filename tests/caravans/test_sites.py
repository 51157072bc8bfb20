"""Removing and correcting a caravan's sites: a mistyped site goes, one that tallies name stays
(and can be corrected instead), a closed caravan's sites are frozen, and every change is audited."""

from __future__ import annotations

from sqlalchemy import select

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.caravans.models import Site
from tests.factories import auth, make_areas, make_caravan, make_tally, make_user

SITES = (("École Al Amal", 30.33, -5.84), ("Ecole mal tapée", 30.34, -5.85))


def _setup(db, regions=("08",), status="active"):
    make_areas()
    user = make_user("coordinator", regions=list(regions))
    caravan = make_caravan(sites=SITES, status=status)
    db.session.commit()
    ids = {site.name: site.id for site in caravan.sites}
    return caravan, ids["École Al Amal"], ids["Ecole mal tapée"], auth(user)


def _sites(db, caravan_id):
    db.session.expire_all()
    return sorted(db.session.scalars(select(Site.name).where(Site.caravan_id == caravan_id)))


def test_a_mistyped_site_is_removed_and_audited(app, client, db):
    caravan, kept, typo, headers = _setup(db)
    response = client.delete(f"/api/v1/caravans/{caravan.id}/sites/{typo}", headers=headers)
    assert response.status_code == 204, response.json
    assert _sites(db, caravan.id) == ["École Al Amal"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "caravan.site_remove"))
    assert event.object_id == str(caravan.id)
    assert event.detail["site_id"] == typo and event.detail["name"] == "Ecole mal tapée"
    shown = client.get(f"/api/v1/caravans/{caravan.id}", headers=headers).json
    assert [site["id"] for site in shown["sites"]] == [kept]
    # Once gone, it is an unknown site.
    again = client.delete(f"/api/v1/caravans/{caravan.id}/sites/{typo}", headers=headers)
    assert again.status_code == 404
    assert again.headers["Content-Type"].startswith("application/problem+json")


def test_unknown_site_or_another_caravans_site_is_404(app, client, db):
    caravan, kept, _, headers = _setup(db)
    other = make_caravan(title="Caravane de Tagounite")
    db.session.commit()
    foreign = other.sites[0].id
    assert client.delete(f"/api/v1/caravans/{caravan.id}/sites/{foreign}",
                         headers=headers).status_code == 404
    assert client.delete(f"/api/v1/caravans/{caravan.id}/sites/999999",
                         headers=headers).status_code == 404
    assert client.delete(f"/api/v1/caravans/999999/sites/{kept}",
                         headers=headers).status_code == 404
    assert client.patch(f"/api/v1/caravans/{caravan.id}/sites/{foreign}", headers=headers,
                        json={"name": "Autre"}).status_code == 404
    assert len(_sites(db, other.id)) == 1


def test_a_site_that_tallies_name_stays_and_says_why_in_the_callers_language(app, client, db):
    caravan, kept, typo, headers = _setup(db)
    make_tally(caravan, site_id=typo)
    db.session.commit()
    url = f"/api/v1/caravans/{caravan.id}/sites/{typo}"
    answers = {lang: client.delete(url, headers={**headers, "Accept-Language": lang})
               for lang in ("en", "fr", "ar")}
    for response in answers.values():
        assert response.status_code == 409
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.json["errors"]["site"]
    assert "correct" in answers["en"].json["detail"]
    assert "corrigez" in answers["fr"].json["detail"]
    assert "صحح" in answers["ar"].json["detail"]
    assert len({response.json["detail"] for response in answers.values()}) == 3
    assert _sites(db, caravan.id) == ["Ecole mal tapée", "École Al Amal"]
    assert not db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "caravan.site_remove"))
    # ... and its name and point can be corrected instead.
    fixed = client.patch(url, headers=headers,
                         json={"name": "École Ibn Battouta", "location": "30°19'48\"N 5°50'24\"W"})
    assert fixed.status_code == 200, fixed.json
    assert (fixed.json["name"], fixed.json["lat"], fixed.json["lon"]) == (
        "École Ibn Battouta", 30.33, -5.84)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "caravan.site_update"))
    assert event.detail["before"]["name"] == "Ecole mal tapée"
    assert event.detail["after"]["name"] == "École Ibn Battouta"


def test_a_corrected_point_is_checked_as_when_added(app, client, db):
    caravan, kept, _, headers = _setup(db)
    url = f"/api/v1/caravans/{caravan.id}/sites/{kept}"
    far = client.patch(url, headers=headers, json={"location": "-5.84, 30.33"})
    assert far.status_code == 422
    assert far.json["errors"]["location"]
    assert far.json["understood"]["lat"] == -5.84
    assert client.patch(url, headers=headers, json={}).status_code == 422
    assert client.patch(url, headers=headers, json={"name": "   "}).status_code == 422
    db.session.expire_all()
    assert (db.session.get(Site, kept).lat, db.session.get(Site, kept).name) == (
        30.33, "École Al Amal")


def test_a_closed_caravans_sites_are_frozen(app, client, db):
    caravan, kept, typo, headers = _setup(db, status="closed")
    url = f"/api/v1/caravans/{caravan.id}/sites/{typo}"
    response = client.delete(url, headers={**headers, "Accept-Language": "fr"})
    assert response.status_code == 409
    assert "fermée" in response.json["detail"]
    assert client.patch(url, headers=headers, json={"name": "Autre"}).status_code == 409
    assert _sites(db, caravan.id) == ["Ecole mal tapée", "École Al Amal"]


def test_out_of_scope_coordinators_and_other_roles_change_nothing(app, client, db):
    caravan, kept, typo, _ = _setup(db, regions=("07",))
    planner = make_user("planner", organization="Union de l'Action Féminine")
    outside = auth(make_user("coordinator", regions=["07"]))
    db.session.commit()
    url = f"/api/v1/caravans/{caravan.id}/sites/{typo}"
    assert client.delete(url, headers=outside).status_code == 403
    assert client.delete(url, headers=auth(planner)).status_code == 403
    assert client.delete(url).status_code == 401
    assert client.patch(url, headers=outside, json={"name": "Autre"}).status_code == 403
    assert _sites(db, caravan.id) == ["Ecole mal tapée", "École Al Amal"]
