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


def _accessibility_problems(page) -> list[str]:
    """Serious or critical axe-core findings on the page as it is now (axe served by fieldsvc)."""
    page.add_script_tag(url="/static/web/vendor/axe.min.js")
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])}×, e.g. {v['nodes'][0]['target']})"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _season() -> None:
    make_areas()
    # Tinghir's older people are mostly over 65 (cataract) and its women of 15-49 mostly under
    # 25; Assilah the reverse: OPH and GYN must not rank them alike.
    for code, bands in (("08.577.01.11", {("F", "50-64"): 1000, ("M", "65+"): 5000,
                                          ("F", "15-24"): 5000, ("F", "25-49"): 1000}),
                        ("01.511.01.01", {("F", "50-64"): 4500, ("M", "65+"): 500,
                                          ("F", "15-24"): 1000, ("F", "25-49"): 6000})):
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
    assert _accessibility_problems(page) == []
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
    assert _accessibility_problems(page) == []
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


def _summary_season() -> None:
    _season()
    zagora = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), sites=(),
                          specialties=("OPH", "PED"))
    make_tally(zagora, day=dt.date(2026, 10, 3), specialty="OPH", status="approved",
               lines=[("consultations", "F", "65+", None, 120)])
    make_tally(zagora, day=dt.date(2026, 10, 3), specialty="PED", status="approved",
               lines=[("consultations", "F", "0-4", None, 3)])
    tinghir = make_caravan("08.577.01.11", first_day=dt.date(2026, 10, 10), sites=(),
                           specialties=("GEN",))
    make_tally(tinghir, day=dt.date(2026, 10, 10), specialty="GEN", status="approved",
               lines=[("consultations", "M", "25-49", None, 90)])
    db.session.commit()


def _chart(page, canvas: str, expression: str):
    return page.evaluate(f"() => {{ const chart = Chart.getChart(document.getElementById("
                         f"'{canvas}')); return {expression}; }}")


@pytest.mark.parametrize("width", [1280, 390])
def test_planner_summary_filters_and_suppressed_cells(pg_app, open_page, width):
    _summary_season()
    page = open_page(width=width)
    _login(page, "nadia")
    page.goto("/insights/summary?lang=en")
    page.fill("#area", "Drâa-Tafilalet")
    page.select_option("#by", "region,specialty")
    page.click("#summary-form button[type=submit]")
    page.wait_for_selector("body[data-charts=drawn]", state="attached")
    # The table: 3 children seen in paediatrics is suppressed, never shown.
    cell = page.locator("#summary-table td.suppressed")
    assert cell.count() >= 1 and "suppressed" in cell.first.inner_text()
    assert "3" not in page.locator("#summary-table tbody").inner_text().split()
    # The chart: no bar for it, a suppressed band instead, named so in the tooltip.
    labels = _chart(page, "chart-specialty", "chart.data.labels")
    counts = _chart(page, "chart-specialty", "chart.data.datasets[0].data")
    bands = _chart(page, "chart-specialty", "chart.data.datasets[1].data")
    paediatrics = labels.index("Paediatrics")
    assert counts[paediatrics] is None and bands[paediatrics] == 1
    assert counts[labels.index("Ophthalmology")] is None or bands[labels.index(
        "Ophthalmology")] is None
    page.locator("#chart-specialty").scroll_into_view_if_needed()
    point = _chart(page, "chart-specialty",
                   f"(() => {{ const bar = chart.getDatasetMeta(1).data[{paediatrics}]; "
                   "const box = chart.canvas.getBoundingClientRect(); "
                   "return [box.left + bar.x, box.top + (chart.chartArea.top + "
                   "chart.chartArea.bottom) / 2]; })()")
    page.mouse.move(point[0], point[1])
    page.wait_for_timeout(200)
    tooltip = _chart(page, "chart-specialty",
                     "chart.tooltip.body ? chart.tooltip.body.flatMap(b => b.lines) : []")
    assert any("Suppressed" in line for line in tooltip), tooltip
    assert _accessibility_problems(page) == []
    _shoot(page, "summary")
    # Another filter changes the table and the charts.
    rows_before = page.locator("#summary-table tbody tr").count()
    page.select_option("#specialty", "OPH")
    page.click("#summary-form button[type=submit]")
    page.wait_for_selector("body[data-charts=drawn]", state="attached")
    assert page.locator("#summary-table tbody tr").count() < rows_before
    assert _chart(page, "chart-specialty", "chart.data.labels") == ["Ophthalmology"]
    hrefs = page.eval_on_selector_all("ul.downloads a", "links => links.map(a => a.href)")
    assert len(hrefs) == 4 and all("specialty=OPH" in href and "region=08" in href
                                   for href in hrefs)
    assert page.problems == [] and page.foreign == []


def test_coordinator_summary_in_scope_shows_exact_counts(pg_app, open_page):
    _summary_season()
    page = open_page()
    _login(page, "amina")
    page.goto("/insights/summary?area=08&by=specialty&lang=ar")
    page.wait_for_selector("body[data-charts=drawn]", state="attached")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.locator("#summary-table td.suppressed").count() == 0
    assert sorted(c for c in _chart(page, "chart-specialty", "chart.data.datasets[0].data")) == [
        3, 90, 120]
    assert _chart(page, "chart-pyramid", "chart.data.datasets.length") == 4
    _shoot(page, "summary-ar")
    assert page.problems == [] and page.foreign == []


@pytest.mark.parametrize("width", [1280, 390])
def test_anyone_opens_the_public_page_with_its_chart(pg_app, open_page, width):
    _summary_season()
    page = open_page(width=width, locale="ar")
    page.goto("/insights/public?lang=ar")
    page.wait_for_selector("body[data-charts=drawn]", state="attached")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.locator("#summary-table td.suppressed").count() >= 1
    bands = _chart(page, "chart-specialty", "chart.data.datasets[1].data")
    assert any(band == 1 for band in bands)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    _shoot(page, "public-ar")
    assert page.problems == [] and page.foreign == []


@pytest.mark.parametrize("width", [1280, 390])
def test_done_when_a_planner_finds_understands_plans_and_logs_out(pg_app, open_page, width):
    """The issue's 'Done when', walked as a new planner from the home page."""
    _season()
    _visit()
    page = open_page(width=width)
    _login(page, "nadia")
    page.click("main a[href='/insights/map']")
    page.select_option("#specialty", "OPH")
    page.select_option("#region", "08")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("#need-map[data-points]")
    first = page.evaluate("JSON.parse(document.getElementById('map-data').textContent).points[0]")
    assert first["rank"] == 1
    point = page.locator("path.commune-" + first["code"].replace(".", "-"))
    assert point.get_attribute("fill") == "#c1121f"  # the neediest third is red
    point.click(force=True)
    page.wait_for_selector("#commune-panel .component-bar")
    panel = page.locator("#commune-panel")
    assert panel.locator(".component-bar").count() == 5 and first["name"] in panel.inner_text()
    assert panel.locator(".tag").count() >= 1  # the main reasons are named
    assert panel.bounding_box()["y"] < page.viewport_size["height"]  # in sight, even on a phone
    _shoot(page, "done-when-map")
    page.click("nav.insights-nav a[href='/insights/plan']")
    page.fill("#base", "Zagora")
    page.fill("#days", "3")
    page.fill("#team_OPH", "2")
    page.click(".plan-form button[type=submit]")
    page.wait_for_selector("#plan-map[data-route]")
    assert page.locator("path.route").count() == 1
    assert page.locator("#stops tbody tr").count() == page.locator("path.plan-stop").count() >= 1
    _shoot(page, "done-when-plan")
    page.click("form.inline button.link")  # log out
    page.wait_for_url("**/")
    page.click("main a[href='/insights/public']")
    page.wait_for_selector("body[data-charts=drawn]", state="attached")
    assert page.locator("#need-map, #save-plan").count() == 0
    _shoot(page, "done-when-public")
    assert page.problems == [] and page.foreign == []
