"""Who may open the needs, map, plan and summary pages: every /insights page × every caller.

Staff log in with a session (as a browser does); a volunteer's device sends its bearer token;
anonymous callers are sent to the login page. Adding an /insights page without a row here fails
`test_every_insights_page_is_in_the_matrix`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from tests.factories import make_areas, make_caravan, make_enrollment, make_user

pytestmark = pytest.mark.usefixtures("fresh_release")

ROLES = ("admin", "coordinator_in", "coordinator_out", "planner", "volunteer", "anonymous")
EVERYONE = frozenset(ROLES)
STAFF = frozenset({"admin", "coordinator_in", "coordinator_out", "planner"})
IN_SCOPE = frozenset({"admin", "coordinator_in"})
PASSWORD = "correct horse battery"


@dataclass
class Page:
    method: str
    rule: str
    url: str
    allowed: frozenset[str]
    form: dict[str, str] | None = None


FIRST_DAY = (dt.date.today() + dt.timedelta(days=30)).isoformat()
PAGES = [
    Page("GET", "/insights/needs", "/insights/needs?specialty=OPH", STAFF),
    Page("GET", "/insights/map", "/insights/map?specialty=OPH", STAFF),
    Page("GET", "/insights/map/communes/<code>",
         "/insights/map/communes/08.587.01.13?specialty=OPH", STAFF),
    Page("GET", "/insights/summary", "/insights/summary?area=08", STAFF),
    Page("GET", "/insights/public", "/insights/public", EVERYONE),
    Page("GET", "/insights/regions.geojson", "/insights/regions.geojson", EVERYONE),
    Page("GET", "/insights/plan", "/insights/plan?base=Zagora&team_OPH=1&days=1", STAFF),
    # Coordinators may save plans, but only as caravans in their regions (Zagora is in 08).
    Page("POST", "/insights/plan/save", "/insights/plan/save", IN_SCOPE,
         form={"base": "Zagora", "team_OPH": "1", "days": "1", "radius_km": "30",
               "title": "Caravane", "first_day": FIRST_DAY}),
]


def _insights_pages(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/insights/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_insights_page_is_in_the_matrix(app):
    covered = {(page.method, page.rule) for page in PAGES}
    missing = sorted(_insights_pages(app) - covered)
    assert not missing, f"add these pages to PAGES in {__file__}: {missing}"
    assert not covered - _insights_pages(app), "PAGES names pages the app no longer has"


def _csrf(client) -> str:
    page = client.get("/login")
    return page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]


def test_insights_pages_matrix(app, db):
    make_areas()
    users = {
        "admin": make_user("admin"),
        "coordinator_in": make_user("coordinator", regions=["08"]),
        "coordinator_out": make_user("coordinator", regions=["07"]),
        "planner": make_user("planner", organization="Union"),
    }
    caravan = make_caravan(first_day=dt.date.today(), last_day=dt.date.today())
    _, device = make_enrollment(caravan)
    db.session.commit()

    wrong: list[str] = []
    for role in ROLES:
        client = app.test_client()
        headers = device if role == "volunteer" else {}
        if role in users:
            token = _csrf(client)
            response = client.post("/login", data={"username": users[role].username,
                                                   "password": PASSWORD, "csrf_token": token})
            assert response.status_code == 302
        for page in PAGES:
            kwargs = {"headers": headers}
            if page.form is not None:
                kwargs["data"] = {**page.form, "csrf_token": _csrf(client)}
            response = client.open(page.url, method=page.method, **kwargs)
            status = response.status_code
            allowed = role in page.allowed
            if status >= 500:
                wrong.append(f"{page.method} {page.url} as {role}: {status}")
            elif allowed and (status in (401, 403) or (status == 302 and "/login" in
                                                         response.location)):
                wrong.append(f"{page.method} {page.url} as {role}: {status}, expected through")
            elif not allowed and role == "anonymous" and not (
                    status == 302 and "/login?next=" in response.location):
                wrong.append(f"{page.method} {page.url} as {role}: {status}, expected the login")
            elif not allowed and role != "anonymous" and status != 403:
                wrong.append(f"{page.method} {page.url} as {role}: {status}, expected 403")
    assert not wrong, "\n".join(wrong)
