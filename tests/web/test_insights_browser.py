"""The needs, map and plan pages in a real Chromium, as a planner and as a coordinator.

Every request to a host other than fieldsvc fails the test (the map must draw offline), every
console error fails it, and screenshots at 1280 and 390 px wide are saved under
``$FIELDSVC_ARTIFACTS/screenshots`` (default ``artifacts/screenshots``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.serving import make_server

from fieldsvc.areas.models import AreaPopulation
from fieldsvc.extensions import db
from tests.factories import make_areas, make_caravan, make_tally, make_user

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fresh_release")]

SHOTS = Path(os.environ.get("FIELDSVC_ARTIFACTS", "artifacts")) / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture
def live(pg_app: Flask) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("127.0.0.1", port, pg_app.wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def open_page(browser, live):
    """New pages at a given width; foreign requests and console errors are collected."""
    contexts = []
    host = urlsplit(live).netloc

    def make(width: int = 1280, height: int = 900, locale: str = "fr-FR"):
        context = browser.new_context(base_url=live, viewport={"width": width, "height": height},
                                      locale=locale)
        contexts.append(context)
        page = context.new_page()
        problems: list[str] = []
        foreign: list[str] = []

        def guard(route):
            if urlsplit(route.request.url).netloc != host:
                foreign.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", guard)
        page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
        page.on("console", lambda message: problems.append(message.text)
                if message.type == "error" else None)
        page.problems = problems
        page.foreign = foreign
        return page

    yield make
    for context in contexts:
        context.close()


def _login(page, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/")


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{page.viewport_size['width']}.png"), full_page=True)


def _season() -> None:
    make_areas()
    # Tinghir is old, Assilah young and female: OPH and GYN must not rank them alike.
    for code, bands in (("08.577.01.11", {("F", "50-64"): 6000, ("M", "65+"): 5000,
                                          ("F", "15-24"): 1000, ("F", "25-49"): 1000}),
                        ("01.511.01.01", {("F", "50-64"): 500, ("M", "65+"): 500,
                                          ("F", "15-24"): 6000, ("F", "25-49"): 7000})):
        for (sex, band), people in bands.items():
            db.session.add(AreaPopulation(area_code=code, sex=sex, age_band=band, people=people))
    make_user("planner", username="nadia", organization="Union")
    make_user("coordinator", username="amina", regions=["08"])
    db.session.commit()


def _visit() -> None:
    caravan = make_caravan("08.587.09.23", first_day=dt.date.today() - dt.timedelta(days=40),
                           last_day=dt.date.today() - dt.timedelta(days=39), sites=(),
                           specialties=("OPH",), title="Caravane de M'Hamid")
    make_tally(caravan, day=caravan.first_day, specialty="OPH", status="approved",
               lines=[("consultations", "F", "65+", None, 120),
                      ("turned_away", "F", "65+", None, 30)])
    db.session.commit()


def _ranking_codes(page, specialty: str) -> list[str]:
    page.goto(f"/insights/needs?specialty={specialty}")
    return page.eval_on_selector_all("#ranking tbody tr", "rows => rows.map(r => r.dataset.code)")


def test_with_no_data_two_specialties_rank_differently(pg_app, open_page):
    _season()
    page = open_page()
    _login(page, "nadia")
    ophthalmology, gynaecology = _ranking_codes(page, "OPH"), _ranking_codes(page, "GYN")
    assert sorted(ophthalmology) == sorted(gynaecology) and ophthalmology != gynaecology
    assert ophthalmology.index("08.577.01.11") < ophthalmology.index("01.511.01.01")
    assert gynaecology.index("01.511.01.01") < gynaecology.index("08.577.01.11")
    assert page.problems == [] and page.foreign == []


@pytest.mark.parametrize("width", [1280, 390])
def test_planner_sees_the_need_map_offline_and_why_a_commune_needs_a_caravan(
        pg_app, open_page, width):
    _season()
    _visit()
    page = open_page(width=width)
    _login(page, "nadia")
    page.goto("/insights/map?specialty=OPH&region=08")
    page.wait_for_selector("#need-map[data-points]")
    assert page.locator("path.commune-point").count() == 3  # region 08's communes
    page.wait_for_selector("body[data-outlines=drawn]", state="attached")
    assert page.locator("path.region-outline").count() == 12
    page.locator("path.commune-08-587-09-23").click()
    page.wait_for_selector("#commune-panel .component-bar")
    panel = page.locator("#commune-panel")
    assert panel.locator(".component-bar").count() == 5
    assert "Caravane de M'Hamid" in panel.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    _shoot(page, "need-map")
    page.goto("/insights/needs?specialty=OPH&region=08")
    page.wait_for_selector("#ranking")
    _shoot(page, "ranking")
    assert page.problems == [] and page.foreign == []


@pytest.mark.parametrize("width", [1280, 390])
def test_coordinator_plans_an_ophthalmology_caravan_from_zagora(pg_app, open_page, width):
    _season()
    _visit()
    page = open_page(width=width)
    _login(page, "amina")
    page.goto("/insights/plan")
    page.fill("#base", "Zagora")
    page.fill("#days", "3")
    page.fill("#radius_km", "150")
    page.fill("#team_OPH", "1")
    page.click(".plan-form button[type=submit]")
    page.wait_for_selector("#plan-map[data-route]")
    assert page.locator("path.route").count() == 1
    assert page.locator("path.plan-stop").count() >= 1
    advice = page.locator("#advice tr[data-specialty=OPH]")
    expected = int(advice.locator("td").nth(1).inner_text())
    assert expected > 0 and advice.get_attribute("data-advice") != "drop"
    assert page.locator("#save-plan").count() == 1  # a coordinator may save it
    _shoot(page, "plan")
    assert page.problems == [] and page.foreign == []


def test_arabic_pages_are_right_to_left(pg_app, open_page):
    _season()
    page = open_page(width=390, locale="ar")
    _login(page, "nadia")
    for path in ("/insights/map?specialty=OPH", "/insights/needs?specialty=OPH",
                 "/insights/plan?base=Zagora&team_OPH=2"):
        page.goto(path + "&lang=ar")
        assert page.get_attribute("html", "dir") == "rtl"
        assert page.get_attribute("html", "lang") == "ar"
    _shoot(page, "plan-ar")
    assert page.problems == [] and page.foreign == []
