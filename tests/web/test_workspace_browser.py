"""The coordinator's workspace in a real Chromium, on PostgreSQL, once.

One live server per test, the session's one browser. Every page visited is checked for script
errors and CSP violations, screenshotted at 1280 px and 390 px (in the pytest temporary folder,
``artifacts``), and the main pages pass axe-core without a serious or critical violation.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from fieldsvc.accounts.models import User
from fieldsvc.accounts.services import get_or_create_organization
from fieldsvc.caravans.models import Caravan, Enrollment
from fieldsvc.extensions import db
from fieldsvc.tallies.models import Submission, SubmissionVersion
from tests.factories import make_areas, make_caravan, make_enrollment, make_tally, make_user

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
TODAY = dt.date.today()
NEXT_WEEK = TODAY + dt.timedelta(days=7)


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture
def live(pg_app: Flask) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("127.0.0.1", port, pg_app.wsgi_app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("artifacts")
    print(f"\nworkspace screenshots: {folder}")
    return folder


@pytest.fixture
def page(browser, live):
    """A laptop-sized page; script errors, CSP violations and failed requests are collected."""
    context = browser.new_context(base_url=live, viewport={"width": 1280, "height": 900},
                                  locale="fr-FR")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
            if response.status >= 400 and response.request.resource_type != "document" else None)
    page.problems = problems
    yield page
    context.close()


def shoot(page, artifacts: Path, name: str) -> None:
    """Screenshots at 1280 px and 390 px; the page must not scroll sideways on a phone."""
    size = page.viewport_size
    page.screenshot(path=str(artifacts / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts / f"{name}-390.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                     && !e.closest('.table-wrap'))
        .slice(0, 5).map(e => e.tagName + '.' + e.className)""")
    page.set_viewport_size(size)
    assert overflow <= 0, f"{name} scrolls sideways at 390 px: {wide}"


def axe(page) -> list[str]:
    """Serious and critical axe-core violations of the page (axe-core served by fieldsvc)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url="/static/web/vendor/axe.min.js")
    return page.evaluate("""() => axe.run(document, {resultTypes: ['violations']}).then(r =>
        r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
          .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))""")


def check(page, artifacts: Path, name: str, *, accessible: bool = True) -> None:
    assert page.problems == [], f"{name}: {page.problems}"
    if accessible:
        assert axe(page) == [], name
    shoot(page, artifacts, name)
    for form in page.query_selector_all("form[method=post]"):
        assert form.query_selector("input[name=csrf_token]") is not None, f"{name}: a form without CSRF"


def log_in(page, username: str = "amina", lang: str = "fr") -> None:
    page.goto(f"/login?lang={lang}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/workspace/")


def _season() -> dict[str, int]:
    """Two regions' coordinator, associations, and a past caravan with a flagged tally."""
    make_areas()
    amina = make_user("coordinator", regions=["08", "07"], username="amina")
    amina.display_name = "Amina Ait Ali"
    for name in ("Wahat Al-Khair", "Association Amal Zagora"):
        get_or_create_organization(name)
    get_or_create_organization("Conseil communal de Ouahat Sidi Brahim", kind="commune_council")
    past = make_caravan(title="Caravane de M'Hamid", commune="08.587.09.23",
                        first_day=TODAY - dt.timedelta(days=3),
                        last_day=TODAY - dt.timedelta(days=3), specialties=("GEN",),
                        sites=(("Dispensaire de M'Hamid", 29.82, -5.72),))
    karim, _ = make_enrollment(past, display_name="Dr Karim", specialty="GEN")
    flagged = make_tally(past, day=past.first_day, specialty="GEN", status="flagged",
                         lines=[("consultations", "F", "25-49", None, 40),
                                ("glasses", "F", "25-49", None, 3)])
    flagged.enrollment_id = karim.id
    db.session.get(SubmissionVersion, flagged.current_version_id).flags = [
        {"code": "glasses_outside_ophthalmology", "glasses": 3, "specialty": "GEN"}]
    db.session.commit()
    return {"coordinator": amina.id, "past": past.id, "karim": karim.id}


def test_a_coordinator_runs_a_caravan_without_curl(pg_app, page, artifacts):
    ids = _season()
    log_in(page)
    assert "Caravane de M'Hamid" in page.inner_text("main")
    assert "Amina Ait Ali" in page.inner_text("header")
    check(page, artifacts, "landing")

    # --- create a caravan in Ouahat Sidi Brahim for next week, with a DMS site ---
    page.click("text=Nouvelle caravane")
    page.fill("#title", "Caravane médicale de Ouahat Sidi Brahim")
    page.locator("#commune").press_sequentially("واحة", delay=30)  # by its Arabic name
    page.wait_for_selector("#commune-options option", state="attached")
    option = page.eval_on_selector("#commune-options option", "o => o.value")
    assert "07.351.02.07" in option
    page.fill("#commune", option)
    page.check("text=Wahat Al-Khair")
    page.check("text=Association Amal Zagora")
    page.fill("#first_day", NEXT_WEEK.isoformat())
    page.fill("#last_day", (NEXT_WEEK + dt.timedelta(days=1)).isoformat())
    page.check("input[name=specialties][value=GEN]")
    page.check("input[name=specialties][value=OPH]")
    page.fill("#sites-0-name", "École Ibn Sina")
    page.fill("#sites-0-location", "31°42'00\"N 7°57'00\"W")
    assert page.is_visible("#site-map .leaflet-container, #site-map.leaflet-container")
    # A click on the map fills the next empty point, near the commune's point.
    box = page.locator("#site-map").bounding_box()
    page.click("#site-map", position={"x": box["width"] / 2 + 40, "y": box["height"] / 2 - 20})
    clicked = page.input_value("#sites-1-location")
    lat, lon = (float(part) for part in clicked.split(","))
    assert abs(lat - 31.70) < 0.2 and abs(lon + 7.95) < 0.2
    page.fill("#sites-1-name", "Douar Lahbichat")
    page.click("button[name=check]")
    assert "31.70000" in page.inner_text("#understood-0")
    assert "-7.95000" in page.inner_text("#understood-0")
    check(page, artifacts, "caravan-form")
    page.click("button[name=save]")
    page.wait_for_url(re.compile(r"/workspace/caravans/\d+$"))
    created = db.session.scalar(select(Caravan).where(Caravan.commune_code == "07.351.02.07"))
    assert sorted(org.name for org in created.organizers) == [
        "Association Amal Zagora", "Wahat Al-Khair"]
    assert [(s.name, s.lat, s.lon) for s in created.sites][0] == ("École Ibn Sina", 31.7, -7.95)
    assert [s.name for s in created.sites][1:] == ["Douar Lahbichat"]
    assert created.join_code[:4] in page.inner_text("main")
    check(page, artifacts, "caravan")

    # --- its poster, French and Arabic side by side, join code and QR code ---
    page.click(".tabs >> text=Affiche")
    assert page.get_attribute("section[lang=ar]", "dir") == "rtl"
    assert "قافلة طبية" in page.inner_text("section[lang=ar]")
    assert "Caravane médicale" in page.inner_text("section[lang=fr]")
    assert "Organisée par Association Amal Zagora · Wahat Al-Khair" in page.inner_text(
        "section[lang=fr]")
    assert page.inner_text(".poster-join-code").replace("-", "") == created.join_code
    # The QR code is an image of its own: wait for it to load (fails after the timeout if it never does).
    page.wait_for_function("() => { const img = document.querySelector('.poster-qr');"
                           " return img !== null && img.complete && img.naturalWidth > 0; }")
    page.emulate_media(media="print")
    pdf = page.pdf(format="A4", print_background=True)
    (artifacts / "poster.pdf").write_bytes(pdf)
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1  # one A4 sheet for the wall
    check(page, artifacts, "poster")
    page.emulate_media(media="screen")

    # --- a paper sheet for the past caravan, typed with the keyboard ---
    page.goto(f"/workspace/caravans/{ids['past']}/sheet")
    page.select_option("#volunteer", str(ids["karim"]))
    page.focus("#n-consultations-F-0-4")
    page.keyboard.type("12")
    page.keyboard.press("Tab")
    page.keyboard.type("5")
    focused = page.evaluate("document.activeElement.id")
    assert focused == "n-consultations-F-5-14"
    assert page.inner_text("[data-measure-total=consultations]") == "17"
    page.fill("#n-glasses-F-50-64", "2")
    check(page, artifacts, "sheet")
    page.click("#save-sheet")
    page.wait_for_selector(".notice")
    notices = page.inner_text("main")
    assert "Fiche papier enregistrée" in notices
    assert "lunettes" in notices  # the same plausibility flag as the phone's
    paper = db.session.scalar(select(SubmissionVersion).where(
        SubmissionVersion.entered_by_id == ids["coordinator"]))
    assert paper is not None and paper.caravan_id == ids["past"]

    # --- review: flagged first, flags in words; approve the flagged one with a reason ---
    page.click("header >> text=Vérifier")
    page.select_option("#f-caravan", str(ids["past"]))
    page.click("form.filters button")
    first = page.locator("#inbox tbody tr").first
    assert "signalé" in first.inner_text()
    assert "lunettes" in first.inner_text()
    check(page, artifacts, "review")
    first.locator("text=Ouvrir").click()
    check(page, artifacts, "submission")
    page.check("input[name=status][value=approved]")
    page.fill("#reason", "Vérifié avec le Dr Karim : lunettes de lecture.")
    page.click("#save-review")
    page.wait_for_selector("#review-status")
    assert page.inner_text("#review-status") == "approuvé"
    page.goto(f"/workspace/review?caravan={ids['past']}&status=received")
    page.locator("#inbox tbody tr").first.locator("button", has_text="Approuver").click()
    page.wait_for_selector(".notice")

    # --- completeness turns green, then the caravan closes ---
    page.goto(f"/workspace/caravans/{ids['past']}/completeness")
    assert page.get_attribute("#completeness td.cell", "data-state") == "approved"
    colour = page.eval_on_selector("#completeness td.cell", "c => getComputedStyle(c).backgroundColor")
    assert colour == "rgb(191, 229, 207)"  # green
    check(page, artifacts, "completeness")
    page.click("#close-caravan")
    page.wait_for_selector(".notice")
    db.session.expire_all()
    assert db.session.get(Caravan, ids["past"]).status == "closed"

    # --- volunteers: revoke Dr Karim's phone, after a confirmation ---
    page.goto(f"/workspace/caravans/{ids['past']}/volunteers")
    assert "Dr Karim" in page.inner_text("#volunteers")
    check(page, artifacts, "volunteers")
    page.click("#volunteers >> text=Révoquer")
    check(page, artifacts, "revoke")
    page.click("#confirm-revoke")
    page.wait_for_selector(".notice")
    assert "révoqué" in page.inner_text("#volunteers")
    db.session.expire_all()
    assert db.session.get(Enrollment, ids["karim"]).revoked_at is not None
    assert db.session.get(Submission, str(paper.submission_id)).review_status == "approved"
    assert page.problems == []


def test_pages_are_right_to_left_in_arabic_and_refuse_other_regions(pg_app, page, artifacts):
    ids = _season()
    make_user("coordinator", regions=["01"], username="youssef")
    db.session.commit()
    log_in(page, lang="ar")
    for name, path in (("landing-ar", "/workspace/"),
                       ("caravan-form-ar", "/workspace/caravans/new"),
                       ("sheet-ar", f"/workspace/caravans/{ids['past']}/sheet"),
                       ("review-ar", "/workspace/review"),
                       ("completeness-ar", f"/workspace/caravans/{ids['past']}/completeness")):
        page.goto(path)
        assert page.get_attribute("html", "dir") == "rtl", name
        assert page.get_attribute("html", "lang") == "ar", name
        text = page.inner_text("main")
        assert re.search(r"[\u0600-\u06FF]{3}", text), f"{name} has no Arabic label"
        assert "Caravans" not in page.inner_text("header")
        check(page, artifacts, name)
    assert "القوافل" in page.inner_text("header")  # the navigation, in Arabic

    # A coordinator of another region is refused with a page, not a stack trace.
    page.click(".site-nav button[type=submit]")
    log_in(page, "youssef", lang="fr")
    assert page.problems == []
    response = page.goto(f"/workspace/caravans/{ids['past']}/completeness")
    assert response.status == 403
    assert "Hors de votre périmètre" in page.inner_text("h1")
    assert "M'Hamid" not in page.inner_text("main")
    assert all("403" in problem for problem in page.problems)  # the refused page itself


def test_an_admin_manages_staff_and_reads_the_audit_log(pg_app, page, artifacts):
    make_areas()
    make_user("admin", username="root")
    db.session.commit()
    page.goto("/login?lang=en")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/workspace/")
    page.click("header >> text=Staff")
    page.fill("#username", "salma")
    page.fill("#display_name", "Salma Benali")
    page.select_option("#role", "coordinator")
    page.fill("#password", "a long enough password")
    page.check("input[name=regions][value='08']")
    check(page, artifacts, "staff")
    page.click("text=Create the account")
    page.wait_for_selector(".notice")
    assert "Salma Benali" in page.inner_text("#staff")
    page.click("#staff >> text=salma")
    page.uncheck("#active")
    check(page, artifacts, "staff-member")
    page.click("button[type=submit] >> text=Save")
    page.wait_for_selector(".notice")
    salma = db.session.scalar(select(User).where(User.username == "salma"))
    db.session.refresh(salma)
    assert not salma.active
    page.click("header >> text=Audit log")
    page.fill("#a-action", "user.update")
    page.click("form.filters button")
    assert "user.update" in page.inner_text("#audit")
    assert "root" in page.inner_text("#audit")
    check(page, artifacts, "audit")


def test_a_coordinator_corrects_one_site_and_removes_a_mistyped_one(pg_app, page, artifacts):
    from fieldsvc.caravans.models import Site

    ids = _season()
    db.session.add(Site(caravan_id=ids["past"], name="Dispensaire de Mhamid (doublon)",
                        commune_code="08.587.09.23", lat=29.83, lon=-5.73))
    db.session.commit()
    log_in(page, lang="ar")
    page.goto(f"/workspace/caravans/{ids['past']}")
    assert page.get_attribute("html", "dir") == "rtl"
    check(page, artifacts, "caravan-sites-ar")
    page.click("button[aria-label*='(doublon)']")
    page.wait_for_selector("text=تم حذف الموقع.")
    assert "(doublon)" not in page.inner_text("main")
    page.goto(f"/workspace/caravans/{ids['past']}?lang=fr")
    page.click("a[aria-label*=\"Dispensaire de M'Hamid\"]")
    check(page, artifacts, "site-fr")
    page.fill("#location", "29 49 12 N, 5 43 12 W")
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=Le site a été corrigé.")
    assert "29.82000, -5.72000" in page.inner_text("main")
    check(page, artifacts, "caravan-sites-corrected")
