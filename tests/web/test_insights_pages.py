"""The needs, map and plan pages (server-rendered), on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from fieldsvc.caravans.models import Caravan
from tests.factories import make_areas, make_caravan, make_tally, make_user

pytestmark = pytest.mark.usefixtures("fresh_release")


def _login(client, user, password="correct horse battery"):
    page = client.get("/login")
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": token})
    assert response.status_code == 302, response.text


def _season(db):
    make_areas()
    caravan = make_caravan("08.587.09.23", first_day=dt.date.today() - dt.timedelta(days=40),
                           last_day=dt.date.today() - dt.timedelta(days=39), sites=(),
                           specialties=("OPH",), title="Caravane de M'Hamid")
    make_tally(caravan, day=caravan.first_day, specialty="OPH", status="approved",
               lines=[("consultations", "F", "65+", None, 120),
                      ("turned_away", "F", "65+", None, 30)])
    db.session.commit()


def test_staff_pages_send_anonymous_callers_to_log_in(client, db):
    for path in ("/insights/needs", "/insights/map", "/insights/plan",
                 "/insights/map/communes/08.587.01.13"):
        response = client.get(path)
        assert response.status_code == 302 and "/login?next=" in response.location, path


def test_ranking_page_shows_components_ranks_and_a_link_to_plan(client, db):
    _season(db)
    planner = make_user("planner", organization="Union")
    db.session.commit()
    _login(client, planner)
    page = client.get("/insights/needs?specialty=OPH&region=08&lang=en")
    assert page.status_code == 200
    html = page.text
    assert "M&#39;Hamid El Ghizlane" in html or "M'Hamid El Ghizlane" in html
    assert "Assilah" not in html  # region 08 only
    assert "<meter" in html and "National rank" in html
    assert "/insights/plan?base=08.587" in html
    weighted = client.get("/insights/needs?specialty=OPH&w_access=0&w_recency=0&w_demand=0"
                          "&w_vulnerability=0&w_unmet=5&lang=en")
    assert weighted.status_code == 200
    bad = client.get("/insights/needs?specialty=XYZ&lang=en")
    assert bad.status_code == 422 and "unknown specialty" in bad.text


def test_commune_detail_says_why_and_which_caravans_came(client, db):
    _season(db)
    coordinator = make_user("coordinator", regions=["08"])
    db.session.commit()
    _login(client, coordinator)
    fragment = client.get("/insights/map/communes/08.587.09.23?specialty=OPH&lang=en")
    assert fragment.status_code == 200
    assert "Caravane de M" in fragment.text
    assert fragment.text.count("<meter") >= 4
    never = client.get("/insights/map/communes/01.511.01.01?specialty=OPH&lang=en").text
    assert "No caravan offered this specialty here in the window." in never
    assert client.get("/insights/map/communes/99.999?specialty=OPH").status_code == 404


def test_region_outlines_are_served_by_fieldsvc(client, db):
    outlines = client.get("/insights/regions.geojson").json
    assert len(outlines["features"]) == 12
    assert {f["properties"]["code"] for f in outlines["features"]} >= {"01", "08", "12"}


def test_plan_page_and_saving_it_as_planned_caravans(client, db):
    _season(db)
    coordinator = make_user("coordinator", regions=["08"])
    db.session.commit()
    _login(client, coordinator)
    page = client.get("/insights/plan?base=Zagora&days=2&radius_km=100&team_OPH=2&lang=en")
    assert page.status_code == 200, page.text
    assert 'id="plan-data"' in page.text and 'id="save-plan"' in page.text
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    first = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    saved = client.post("/insights/plan/save?lang=en", data={
        "csrf_token": token, "base": "Zagora", "days": "2", "radius_km": "100",
        "team_OPH": "2", "title": "Caravane ophtalmo", "first_day": first})
    assert saved.status_code == 200, saved.text
    planned = db.session.scalars(select(Caravan).where(Caravan.title.like("Caravane ophtalmo%")))
    planned = list(planned)
    assert 1 <= len(planned) <= 2
    assert all(c.status == "planned" and c.specialties == ["OPH"] for c in planned)
    assert min(c.first_day for c in planned).isoformat() == first


def test_a_planner_may_print_a_plan_but_not_save_it(client, db):
    _season(db)
    planner = make_user("planner", organization="Union")
    db.session.commit()
    _login(client, planner)
    page = client.get("/insights/plan?base=Zagora&days=2&radius_km=100&team_OPH=1&lang=en")
    assert page.status_code == 200
    assert 'id="print-plan"' in page.text and 'id="save-plan"' not in page.text
    refused = client.post("/insights/plan/save", data={"base": "Zagora", "team_OPH": "1"})
    assert refused.status_code in (400, 403)
    bad = client.get("/insights/plan?base=Nowhere-sur-Mer&team_OPH=1&lang=en")
    assert bad.status_code == 422 and "Could not read the base" in bad.text


def _summary_season(db, small_cell: bool = True):
    make_areas()
    zagora = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), sites=(),
                          specialties=("OPH", "PED"))
    make_tally(zagora, day=dt.date(2026, 10, 3), specialty="OPH", status="approved",
               lines=[("consultations", "F", "65+", None, 120)])
    if small_cell:
        make_tally(zagora, day=dt.date(2026, 10, 3), specialty="PED", status="approved",
                   lines=[("consultations", "F", "0-4", None, 3)])
    tinghir = make_caravan("08.577.01.11", first_day=dt.date(2026, 10, 10), sites=(),
                           specialties=("GEN",))
    make_tally(tinghir, day=dt.date(2026, 10, 10), specialty="GEN", status="approved",
               lines=[("consultations", "M", "25-49", None, 90)])
    db.session.commit()


def test_summary_page_marks_suppressed_cells_and_links_every_export(client, db):
    _summary_season(db)
    planner = make_user("planner", organization="Union")
    db.session.commit()
    _login(client, planner)
    page = client.get("/insights/summary?area=Dr%C3%A2a-Tafilalet&lang=en")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count('class="num suppressed"') >= 1  # 3 children seen: never shown
    assert ">3<" not in html
    for fmt in ("csv", "xlsx", "json", "geojson"):
        assert f"/api/v1/exports/summary.{fmt}?by=region%2Cspecialty&amp;region=08" in html
    assert 'id="chart-data"' in html
    assert client.get("/insights/summary?area=Nowhere&lang=en").status_code == 422


def test_summary_page_gives_a_coordinator_exact_counts_in_scope(client, db):
    _summary_season(db)
    coordinator = make_user("coordinator", regions=["08"])
    db.session.commit()
    _login(client, coordinator)
    page = client.get("/insights/summary?area=08&by=specialty&lang=en").text
    assert 'class="num suppressed"' not in page
    assert '<td class="num">3</td>' in page and '<td class="num">120</td>' in page


def test_public_page_shows_anyone_the_suppressed_public_summary(client, db):
    _summary_season(db)
    page = client.get("/insights/public?lang=en")
    assert page.status_code == 200, page.text
    assert "Drâa-Tafilalet" in page.text
    assert 'class="num suppressed"' in page.text and ">3<" not in page.text
    assert 'id="chart-data"' in page.text
    assert client.get("/insights/public?from=2026-13-01").status_code == 422
    home = client.get("/?lang=en").text
    assert "/insights/public" in home and "/insights/map" not in home  # anonymous


def test_public_total_is_the_sum_of_its_rows_when_every_row_is_shown(client, db):
    _summary_season(db, small_cell=False)
    page = client.get("/insights/public?lang=en").text
    assert 'class="num suppressed"' not in page
    assert "Total: 210" in page  # no national margin in the release, but 120 + 90 are both shown


def test_public_total_with_a_hidden_row_is_not_published_rather_than_suppressed(client, db):
    _summary_season(db)
    page = client.get("/insights/public?lang=en").text
    assert "Total: not published" in page and "Total: suppressed" not in page


def test_maps_use_no_tile_server_unless_one_is_configured(client, db):
    from fieldsvc.security import SECURITY_HEADERS, with_tile_server

    csp = client.get("/insights/regions.geojson").headers["Content-Security-Policy"]
    assert "img-src 'self' data:;" in csp  # offline by default: no other host
    configured = dict(with_tile_server(SECURITY_HEADERS,
                                       "https://tile.openstreetmap.org/{z}/{x}/{y}.png"))
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in configured[
        "Content-Security-Policy"]
    subdomains = dict(with_tile_server(SECURITY_HEADERS,
                                       "https://{s}.tile.example.org/{z}/{x}/{y}.png"))
    assert "img-src 'self' data: https://*.tile.example.org;" in subdomains[
        "Content-Security-Policy"]


def test_summary_page_groups_by_the_chosen_areas_level_by_default(client, db):
    _summary_season(db)
    planner = make_user("planner", organization="Union")
    db.session.commit()
    _login(client, planner)
    page = client.get("/insights/summary?area=Zagora&by=&lang=en")  # Zagora: the province
    assert page.status_code == 200, page.text
    assert "/api/v1/exports/summary.csv?by=province%2Cspecialty&amp;province=08.587" in page.text


def test_page_scripts_and_styles_go_out_gzipped_when_the_browser_takes_it(client, db):
    import gzip
    from pathlib import Path

    static = Path(__file__).parents[2] / "fieldsvc" / "web" / "static"
    for name in ("insights.js", "web.css"):
        packed = client.get(f"/static/web/{name}", headers={"Accept-Encoding": "gzip"})
        assert packed.status_code == 200 and packed.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(packed.data) == (static / name).read_bytes()
        assert len(packed.data) < (static / name).stat().st_size / 2
        plain = client.get(f"/static/web/{name}")
        assert "Content-Encoding" not in plain.headers
        assert plain.data == (static / name).read_bytes()
        again = client.get(f"/static/web/{name}", headers={
            "Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]})
        assert again.status_code == 304
