"""The coordinator's workspace pages through the test client, on SQLite and PostgreSQL: what
they store (through the same services as the API), the errors they show beside the fields in
the page's language, CSRF, and the admin's staff and audit pages."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from sqlalchemy import select

from fieldsvc.accounts.models import AuditEvent, User
from fieldsvc.caravans.models import Caravan
from fieldsvc.tallies.models import Submission, SubmissionVersion
from tests.factories import make_areas, make_caravan, make_enrollment, make_tally, make_user
from tests.web.test_pages import HTML, PASSWORD, assert_no_inline_code, csrf_token

TODAY = dt.date.today()


def log_in(client, username: str) -> None:
    response = client.post("/login", data={"csrf_token": csrf_token(client), "username": username,
                                           "password": PASSWORD}, headers=HTML)
    assert response.status_code == 302


def post(client, path: str, data: dict, lang: str = "en"):
    token = csrf_token(client, "/login")
    return client.post(f"{path}?lang={lang}", data={**data, "csrf_token": token}, headers=HTML)


def field_errors(page: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="err-([^"]+)">([^<]*)</p>', page))


def _coordinator(db):
    make_areas()
    user = make_user("coordinator", regions=["08", "07"], username="amina")
    db.session.commit()
    return user


def test_a_caravan_is_created_from_an_arabic_commune_name_and_a_dms_point(client, db):
    _coordinator(db)
    from fieldsvc.accounts.services import get_or_create_organization

    orgs = [get_or_create_organization(n).id for n in ("Wahat Al-Khair", "Amal Zagora")]
    db.session.commit()
    log_in(client, "amina")
    response = post(client, "/workspace/caravans/new", {
        "title": "Caravane de Ouahat", "commune": "واحة سيدي", "organizers": orgs,
        "first_day": "2026-12-05", "last_day": "2026-12-06", "specialties": ["OPH", "GEN"],
        "sites-0-name": "École", "sites-0-location": "31 42 00 N, 7 57 00 W", "save": "1"})
    assert response.status_code == 302, field_errors(response.get_data(as_text=True))
    caravan = db.session.scalar(select(Caravan))
    assert caravan.commune_code == "07.351.02.07"
    assert sorted(o.id for o in caravan.organizers) == sorted(orgs)
    assert caravan.specialties == ["GEN", "OPH"]
    assert [(s.lat, s.lon) for s in caravan.sites] == [(31.7, -7.95)]
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "caravan.create"))
    page = client.get(response.headers["Location"], headers=HTML).get_data(as_text=True)
    assert caravan.join_code[:4] in page
    assert_no_inline_code(page)


def test_errors_sit_beside_their_fields_in_the_pages_language(client, db):
    _coordinator(db)
    log_in(client, "amina")
    form = {"title": "Caravane de Zagora", "commune": "Zagora (08.587.01.13)",
            "first_day": "2026-12-06", "last_day": "2026-12-05", "specialties": ["GEN"],
            "sites-0-name": "École", "sites-0-location": "50, 24", "save": "1"}
    response = post(client, "/workspace/caravans/new", form, lang="fr")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    errors = field_errors(page)
    assert errors == {"last_day": "Le dernier jour ne peut pas précéder le premier."}
    # The days fixed, the point is read back and refused beside its field, in French, then Arabic.
    form["last_day"] = "2026-12-07"
    page = post(client, "/workspace/caravans/new", form, lang="fr").get_data(as_text=True)
    assert "hors du Maroc" in field_errors(page)["sites-0-location"]
    assert 'aria-invalid="true"' in page
    page = post(client, "/workspace/caravans/new", form, lang="ar").get_data(as_text=True)
    assert "خارج المغرب" in field_errors(page)["sites-0-location"]
    # Another region's commune is refused beside the commune field; nothing is stored.
    page = post(client, "/workspace/caravans/new", {
        **form, "commune": "Assilah", "sites-0-name": "", "sites-0-location": ""}).get_data(
        as_text=True)
    assert field_errors(page)["commune"] == "This commune is outside your regions."
    assert db.session.scalar(select(Caravan)) is None


def test_check_shows_what_a_point_was_read_as_without_saving(client, db):
    _coordinator(db)
    log_in(client, "amina")
    response = post(client, "/workspace/caravans/new", {
        "title": "Caravane de Zagora", "commune": "Zagora (08.587.01.13)",
        "first_day": "2026-12-05", "last_day": "2026-12-05", "specialties": ["GEN"],
        "sites-0-name": "École", "sites-0-location": "30°19'48\"N 5°50'24\"W", "check": "1"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "latitude 30.33000, longitude -5.84000 (30°19′48″N 5°50′24″W)" in page
    assert db.session.scalar(select(Caravan)) is None


def test_forms_without_the_csrf_token_change_nothing(client, db):
    _coordinator(db)
    caravan = make_caravan()
    db.session.commit()
    log_in(client, "amina")
    response = client.post(f"/workspace/caravans/{caravan.id}/status", data={"status": "closed"},
                           headers=HTML)
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Caravan, caravan.id).status == "active"


def test_editing_changes_organizers_and_adds_a_site(client, db):
    _coordinator(db)
    caravan = make_caravan(status="planned")
    from fieldsvc.accounts.services import get_or_create_organization

    council = get_or_create_organization("Conseil communal de Zagora", kind="commune_council")
    db.session.commit()
    log_in(client, "amina")
    response = post(client, f"/workspace/caravans/{caravan.id}/edit", {
        "title": "Caravane de Zagora (2)", "first_day": caravan.first_day.isoformat(),
        "last_day": caravan.last_day.isoformat(), "specialties": ["GEN", "DER"],
        "organizers": [council.id], "sites-0-name": "Douar", "sites-0-location": "30.35, -5.80"})
    assert response.status_code == 302, field_errors(response.get_data(as_text=True))
    db.session.expire_all()
    changed = db.session.get(Caravan, caravan.id)
    assert changed.title == "Caravane de Zagora (2)"
    assert [o.name for o in changed.organizers] == ["Conseil communal de Zagora"]
    assert changed.specialties == ["DER", "GEN"]
    assert len(changed.sites) == 2


def test_a_paper_sheet_is_checked_and_flagged_as_the_phone_would(client, db):
    user = _coordinator(db)
    caravan = make_caravan(first_day=TODAY - dt.timedelta(days=2), last_day=TODAY - dt.timedelta(days=1))
    db.session.commit()
    log_in(client, "amina")
    path = f"/workspace/caravans/{caravan.id}/sheet"
    base = {"day": caravan.first_day.isoformat(), "specialty": "GEN", "site": "", "volunteer": ""}
    page = post(client, path, {**base, "n-consultations-F-0-4": "douze"}).get_data(as_text=True)
    assert field_errors(page) == {"n-consultations-F-0-4": "A whole number, 0 or more."}
    page = post(client, path, {**base, "n-consultations-F-0-4": "20000"}).get_data(as_text=True)
    assert "10000" in field_errors(page)["n-consultations-F-0-4"]  # the API's own limit
    page = post(client, path, {**base}).get_data(as_text=True)
    assert "The sheet is empty" in page
    assert db.session.scalar(select(Submission)) is None

    response = post(client, path, {**base, "n-consultations-F-25-49": "3",
                                   "n-referrals-M-65+": "4"})
    assert response.status_code == 302
    version = db.session.scalar(select(SubmissionVersion))
    assert version.entered_by_id == user.id
    assert [flag["code"] for flag in version.flags] == ["referrals_above_consultations"]
    page = client.get(path, headers=HTML).get_data(as_text=True)
    assert "4 referrals for 3 consultations." in page


def test_review_needs_a_reason_to_reject_and_shows_versions_side_by_side(client, db):
    _coordinator(db)
    caravan = make_caravan(first_day=TODAY - dt.timedelta(days=1), last_day=TODAY)
    enrollment, device = make_enrollment(caravan)
    db.session.commit()
    tally = {"id": str(uuid.uuid4()), "caravan_id": caravan.id, "day": TODAY.isoformat(),
             "specialty": "OPH", "lines": [
                 {"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 7},
                 {"measure": "glasses", "sex": "F", "age_band": "50-64", "count": 2}]}
    assert client.post("/api/v1/submissions", json=tally, headers=device).status_code == 201
    tally["lines"][0]["count"] = 9
    assert client.put(f"/api/v1/submissions/{tally['id']}", json={
        k: v for k, v in tally.items() if k != "id"}, headers=device).status_code == 200
    log_in(client, "amina")
    path = f"/workspace/submissions/{tally['id']}"
    page = client.get(path, headers=HTML).get_data(as_text=True)
    assert "Version 1" in page and "Version 2" in page
    changed = re.findall(r'<td class="changed">(\d+)', page)
    assert changed == ["9"]  # only the consultations changed, from 7 to 9
    response = post(client, path, {"status": "rejected", "reason": "", "version": "2"})
    assert response.status_code == 422
    assert "Say why" in field_errors(response.get_data(as_text=True))["reason"]
    assert db.session.get(Submission, tally["id"]).review_status == "received"
    stale = post(client, path, {"status": "approved", "version": "1"})
    assert stale.status_code == 422  # the page showed version 1; the tally is at version 2
    assert db.session.get(Submission, tally["id"]).review_status == "received"
    assert post(client, path, {"status": "rejected", "reason": "Doublon",
                               "version": "2"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Submission, tally["id"]).review_reason == "Doublon"


def test_the_inbox_puts_flagged_tallies_first_and_filters(client, db):
    _coordinator(db)
    caravan = make_caravan()
    plain = make_tally(caravan, specialty="GEN", lines=[("consultations", "F", "5-14", None, 3)])
    flagged = make_tally(caravan, specialty="OPH", status="flagged",
                         lines=[("consultations", "F", "50-64", None, 8)])
    approved = make_tally(caravan, specialty="GEN", status="approved",
                          lines=[("consultations", "M", "5-14", None, 4)])
    doubtful = make_tally(caravan, specialty="PED", lines=[
        ("consultations", "F", "0-4", None, 2), ("referrals", "F", "0-4", None, 5)])
    db.session.get(SubmissionVersion, doubtful.current_version_id).flags = [
        {"code": "referrals_above_consultations", "referrals": 5, "consultations": 2}]
    db.session.commit()
    log_in(client, "amina")
    page = client.get("/workspace/review?lang=en", headers=HTML).get_data(as_text=True)
    order = [page.index(f"/workspace/submissions/{s.id}\"")
             for s in (flagged, doubtful, plain, approved)]
    assert order == sorted(order)  # flagged, then received with flags, then received, then done
    assert "5 referrals for 2 consultations." in page
    page = client.get("/workspace/review?specialty=GEN", headers=HTML).get_data(as_text=True)
    assert str(plain.id) in page and str(flagged.id) not in page


def test_the_inbox_pages_through_every_tally_keeping_the_filters(client, db, monkeypatch):
    from fieldsvc.web import workspace_routes

    monkeypatch.setattr(workspace_routes, "INBOX_PAGE", 2)
    _coordinator(db)
    caravan = make_caravan()
    tallies = [make_tally(caravan, specialty="GEN", lines=[("consultations", "F", "5-14", None, n)])
               for n in range(1, 6)]
    make_tally(caravan, specialty="OPH", lines=[("consultations", "F", "50-64", None, 8)])
    db.session.commit()
    log_in(client, "amina")
    seen: set[int] = set()
    path = "/workspace/review?specialty=GEN&lang=en"
    for _ in range(3):
        page = client.get(path, headers=HTML).get_data(as_text=True)
        shown = {t.id for t in tallies if f'/workspace/submissions/{t.id}"' in page}
        assert len(shown) <= 2 and not shown & seen
        seen |= shown
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        if found is None:
            break
        path = found.group(1).replace("&amp;", "&")
        assert "specialty=GEN" in path
    assert seen == {t.id for t in tallies}  # five tallies over three pages, none twice
    assert "Tallies 5 to 5 of 5" in page and 'rel="prev"' in page
    assert client.get("/workspace/review?offset=-3", headers=HTML).status_code == 200
    assert client.get("/workspace/review?offset=abc", headers=HTML).status_code == 200


def test_an_admin_creates_and_deactivates_a_coordinator(client, db):
    make_areas()
    make_user("admin", username="root")
    db.session.commit()
    log_in(client, "root")
    response = post(client, "/workspace/staff", {
        "username": "salma", "display_name": "Salma", "role": "coordinator",
        "password": "short", "organization": "0"})
    errors = field_errors(response.get_data(as_text=True))
    assert response.status_code == 422 and "password" in errors
    response = post(client, "/workspace/staff", {
        "username": "salma", "role": "coordinator", "password": "a long password",
        "organization": "0"})
    assert "regions" in field_errors(response.get_data(as_text=True))  # the service's rule
    response = post(client, "/workspace/staff", {
        "username": "salma", "role": "coordinator", "password": "a long password",
        "regions": ["08"], "organization": "0"})
    assert response.status_code == 302
    salma = db.session.scalar(select(User).where(User.username == "salma"))
    assert salma.region_codes == ["08"]
    response = post(client, f"/workspace/staff/{salma.id}", {
        "regions": ["08", "07"], "organization": "0", "password": "another long one"})
    assert response.status_code == 302
    db.session.expire_all()
    salma = db.session.get(User, salma.id)
    assert not salma.active and salma.region_codes == ["07", "08"]
    other = client.application.test_client()
    refused = other.post("/login", data={"csrf_token": csrf_token(other), "username": "salma",
                                         "password": "another long one"}, headers=HTML)
    assert refused.status_code == 200  # a deactivated account cannot log in


def test_coordinators_see_only_their_regions_audit(client, db):
    _coordinator(db)
    make_caravan()  # region 08
    make_caravan("01.511.01.01", title="Caravane d'Assilah")
    from fieldsvc.accounts.services import audit

    audit("caravan.update", object_type="caravan", object_id=1, region_code="08")
    audit("caravan.update", object_type="caravan", object_id=2, region_code="01")
    db.session.commit()
    log_in(client, "amina")
    page = client.get("/workspace/audit?action=caravan.update", headers=HTML).get_data(as_text=True)
    assert "caravan 1" in page and "caravan 2" not in page


def test_text_a_database_cannot_store_is_refused_not_a_server_error(client, db):
    make_areas()
    make_user("admin", username="root")
    db.session.commit()
    log_in(client, "root")
    for path, form in (
        ("/workspace/caravans/new", {"title": "Bad\x00title", "commune": "Zagora (08.587.01.13)",
                                     "first_day": "2026-12-05", "last_day": "2026-12-05",
                                     "specialties": "GEN", "save": "1"}),
        ("/workspace/staff", {"username": "a\x00b", "role": "planner",
                              "password": "a long password", "organization": "0"}),
    ):
        response = post(client, path, form)
        assert response.status_code == 422, path
        assert "Remove NUL characters" in response.get_data(as_text=True)
    assert db.session.scalar(select(Caravan)) is None
    assert db.session.scalar(select(User).where(User.username != "root")) is None


def test_a_caravan_page_shows_its_clash_warnings_and_links_its_pledges(client, db):
    _coordinator(db)
    first = dt.date.today() + dt.timedelta(days=30)
    ours = make_caravan("08.587.01.13", title="Caravane de Zagora", status="planned",
                        first_day=first, last_day=first + dt.timedelta(days=1), sites=())
    make_caravan("08.587.01.13", title="Caravane voisine", status="planned",
                 first_day=first + dt.timedelta(days=3), last_day=first + dt.timedelta(days=4),
                 sites=())
    db.session.commit()
    log_in(client, "amina")
    page = client.get(f"/workspace/caravans/{ours.id}",
                      headers={**HTML, "Accept-Language": "en"}).get_data(as_text=True)
    notices = re.findall(r'<p class="notice" role="status">([^<]*)</p>', page)
    assert any("Caravane voisine" in n or "Caravan " in n for n in notices), notices
    assert f"/caravans/{ours.id}/staffing" in page


def test_a_mistyped_site_is_removed_from_the_caravan_page_and_a_named_one_stays(client, db):
    _coordinator(db)
    caravan = make_caravan(sites=(("École Al Amal", 30.33, -5.84), ("Ecole mal tapée", 30.34,
                                                                       -5.85)))
    ids = {site.name: site.id for site in caravan.sites}
    make_tally(caravan, site_id=ids["École Al Amal"])
    db.session.commit()
    log_in(client, "amina")
    page = client.get(f"/workspace/caravans/{caravan.id}?lang=fr", headers=HTML)
    body = page.get_data(as_text=True)
    assert_no_inline_code(body)
    for site_id in ids.values():
        action = f'action="/workspace/caravans/{caravan.id}/sites/{site_id}/remove"'
        form = body[body.index(action):].split("</form>")[0]
        assert 'name="csrf_token"' in form and "Retirer" in form
    # Without the token nothing changes.
    typo = f"/workspace/caravans/{caravan.id}/sites/{ids['Ecole mal tapée']}/remove"
    assert client.post(typo, headers=HTML).status_code == 400
    assert len(db.session.get(Caravan, caravan.id).sites) == 2
    removed = post(client, typo, {}, lang="fr")
    assert removed.status_code == 302
    shown = client.get(removed.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "Le site a été retiré." in shown and "Ecole mal tapée" not in shown
    # The site a tally names stays, and the page says why, in its language.
    named = f"/workspace/caravans/{caravan.id}/sites/{ids['École Al Amal']}/remove"
    kept = post(client, named, {}, lang="ar")
    assert kept.status_code == 302
    shown = client.get(kept.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "تذكره استمارات بالفعل" in shown
    db.session.expire_all()
    assert [site.name for site in db.session.get(Caravan, caravan.id).sites] == ["École Al Amal"]
    assert [event.action for event in db.session.scalars(
        select(AuditEvent).where(AuditEvent.action.like("caravan.site%")))] == [
        "caravan.site_remove"]
    # An unknown site is a 404 page; a closed caravan shows no button and refuses the post.
    assert post(client, typo, {}).status_code == 404
    db.session.get(Caravan, caravan.id).status = "closed"
    db.session.commit()
    assert "/remove" not in client.get(f"/workspace/caravans/{caravan.id}",
                                       headers=HTML).get_data(as_text=True)
    refused = post(client, named, {})
    assert refused.status_code == 302
    assert "its sites can no longer change" in client.get(
        refused.headers["Location"], headers=HTML).get_data(as_text=True)


def test_a_site_that_tallies_name_is_corrected_from_its_page(client, db):
    _coordinator(db)
    caravan = make_caravan(sites=(("Ecole mal tapée", 30.34, -5.85),))
    site = caravan.sites[0]
    make_tally(caravan, site_id=site.id)
    db.session.commit()
    log_in(client, "amina")
    url = f"/workspace/caravans/{caravan.id}/sites/{site.id}"
    assert f'href="{url}"' in client.get(f"/workspace/caravans/{caravan.id}",
                                         headers=HTML).get_data(as_text=True)
    page = client.get(f"{url}?lang=ar", headers=HTML).get_data(as_text=True)
    assert_no_inline_code(page)
    assert 'name="csrf_token"' in page and "30.34000, -5.85000" in page and "اسم الموقع" in page
    # A point outside Morocco is refused beside its field, in the page's language.
    refused = post(client, url, {"name": "École Al Amal", "location": "-5.84, 30.33"}, lang="fr")
    assert refused.status_code == 422
    assert "hors du Maroc" in field_errors(refused.get_data(as_text=True))["location"]
    assert post(client, url, {"name": " ", "location": "30.33, -5.84"}).status_code == 422
    saved = post(client, url, {"name": "École Al Amal", "location": "30°19'48\"N 5°50'24\"W"})
    assert saved.status_code == 302
    db.session.expire_all()
    corrected = db.session.get(Caravan, caravan.id).sites[0]
    assert (corrected.id, corrected.name, corrected.lat, corrected.lon) == (
        site.id, "École Al Amal", 30.33, -5.84)
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "caravan.site_update")).detail["before"]["name"] == "Ecole mal tapée"
    assert client.get(f"/workspace/caravans/{caravan.id}/sites/999999",
                      headers=HTML).status_code == 404
