"""Who may call what: every /api/v1 route × every kind of caller, as one table.

Each row names a route (method and URL rule as in the app's URL map), the callers who must get
through (any answer but 401/403), and optionally the URL and body to send. Every other caller must
be refused: 401 when anonymous, 403 otherwise. Nobody may get a 5xx.

Adding a /api/v1 route without a row here fails `test_every_api_route_is_in_the_matrix`. Path
parameters are filled by name from `World.params` (caravan_id → caravan A, …); give a row its own
`url` or `body` when the defaults do not reach the check you mean to test (a scope check, for
instance, often runs only after the body is valid).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fieldsvc.caravans.models import Caravan
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user

pytestmark = pytest.mark.usefixtures("fresh_release")

ROLES = ("admin", "coordinator_in", "coordinator_out", "planner", "volunteer", "anonymous")
EVERYONE = frozenset(ROLES)
STAFF = frozenset({"admin", "coordinator_in", "coordinator_out", "planner"})
SIGNED_IN = STAFF | {"volunteer"}
ADMIN = frozenset({"admin"})
COORDINATORS = frozenset({"admin", "coordinator_in", "coordinator_out"})
IN_SCOPE = frozenset({"admin", "coordinator_in"})
IN_SCOPE_AND_VOLUNTEER = IN_SCOPE | {"volunteer"}
VOLUNTEER = frozenset({"volunteer"})


@dataclass
class World:
    """The data every row runs against: caravan A (region 08) and B (region 08, another town)."""

    headers: dict[str, dict[str, str]]
    caravan_a: int
    caravan_b: int
    submission: str
    params: dict[str, str]
    basic: dict[str, str]

    def join_code(self) -> str:
        from fieldsvc.extensions import db

        db.session.expire_all()
        return db.session.get(Caravan, self.caravan_a).join_code

    def tally(self, caravan_id: int | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()), "caravan_id": caravan_id or self.caravan_a,
            "day": dt.date.today().isoformat(), "specialty": "OPH",
            "lines": [{"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 7}],
            **extra,
        }


@dataclass
class Case:
    method: str
    rule: str
    allowed: frozenset[str]
    url: Callable[[World], str] | None = None
    body: Callable[[World, str], Any] | None = None
    headers: Callable[[World, str], dict[str, str]] | None = None
    why: str = ""
    # Callers to try; by default all of them.
    only_as: tuple[str, ...] = ROLES


def _fresh_token(world: World, role: str) -> dict[str, str]:
    """Another bearer token for a staff caller (a device or nobody keeps its own headers)."""
    from sqlalchemy import select

    from fieldsvc.accounts.models import ApiToken
    from fieldsvc.accounts.services import issue_token
    from fieldsvc.extensions import db
    from fieldsvc.security import token_digest

    headers = world.headers[role]
    if role not in STAFF:
        return headers
    digest = token_digest(headers["Authorization"][7:])
    user = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest)).user
    token, _ = issue_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def _site_url(prefix: str, world: World, suffix: str = "") -> str:
    """A fresh site of caravan A that no tally names, so that every caller may remove one."""
    from fieldsvc.caravans.models import Site
    from fieldsvc.extensions import db

    site = Site(caravan_id=world.caravan_a, name="Site mal saisi", commune_code="08.587.01.13",
                lat=30.33, lon=-5.84)
    db.session.add(site)
    db.session.commit()
    return f"{prefix}/caravans/{world.caravan_a}/sites/{site.id}{suffix}"


def _caravan_body(world: World, role: str) -> dict[str, Any]:
    return {"title": f"Caravane {role}", "commune": "08.587.01.13", "first_day": "2026-12-05",
            "last_day": "2026-12-06", "specialties": ["GEN"],
            "sites": [{"name": "École", "location": "30.33, -5.84"}]}


CASES: list[Case] = [
    # catalog and areas: public reference data
    Case("GET", "/api/v1/catalog", EVERYONE),
    Case("POST", "/api/v1/specialties", ADMIN, body=lambda w, r: {
        "code": "NEP", "label_fr": "Néphrologie", "label_ar": "أمراض الكلى",
        "label_en": "Nephrology"}),
    Case("POST", "/api/v1/measures", ADMIN, body=lambda w, r: {
        "code": "vaccinations", "label_fr": "Vaccinations", "label_ar": "التلقيحات",
        "label_en": "Vaccinations"}),
    Case("GET", "/api/v1/areas", EVERYONE),
    Case("GET", "/api/v1/areas/<code>", EVERYONE),
    # accounts
    Case("POST", "/api/v1/tokens", EVERYONE, headers=lambda w, r: w.basic, only_as=("anonymous",),
         why="anyone may log in with a password (basic auth replaces any bearer, so one try)"),
    Case("DELETE", "/api/v1/tokens", STAFF, headers=lambda w, r: _fresh_token(w, r),
         why="staff revoke the token they send (a fresh one, so later rows keep theirs)"),
    Case("GET", "/api/v1/me", SIGNED_IN),
    Case("GET", "/api/v1/organizations", STAFF),
    Case("POST", "/api/v1/organizations", ADMIN,
         body=lambda w, r: {"name": f"Association {r}", "kind": "association"}),
    Case("GET", "/api/v1/users", ADMIN),
    Case("PATCH", "/api/v1/users/<int:user_id>", ADMIN,
         body=lambda w, r: {"display_name": f"Planificatrice ({r})"}),
    Case("POST", "/api/v1/users/<int:user_id>/password", ADMIN,
         body=lambda w, r: {"password": "palmiers-de-skoura-au-matin"}),
    Case("GET", "/api/v1/audit", COORDINATORS, why="coordinators read their regions' events"),
    # caravans
    Case("POST", "/api/v1/caravans", IN_SCOPE, body=_caravan_body),
    Case("GET", "/api/v1/caravans", STAFF),
    Case("GET", "/api/v1/caravans/<int:caravan_id>", SIGNED_IN,
         why="caravan metadata is not health data; a device sees its own caravan"),
    Case("GET", "/api/v1/caravans/<int:caravan_id>", STAFF,
         url=lambda w: f"/api/v1/caravans/{w.caravan_b}", why="a device sees only its caravan"),
    Case("PATCH", "/api/v1/caravans/<int:caravan_id>", IN_SCOPE,
         body=lambda w, r: {"title": f"Caravane de Zagora ({r})"}),
    Case("DELETE", "/api/v1/caravans/<int:caravan_id>/sites/<int:site_id>", IN_SCOPE,
         url=lambda w: _site_url("/api/v1", w), why="each call removes a fresh site"),
    Case("PATCH", "/api/v1/caravans/<int:caravan_id>/sites/<int:site_id>", IN_SCOPE,
         url=lambda w: _site_url("/api/v1", w), body=lambda w, r: {"name": f"École ({r})"}),
    Case("POST", "/api/v1/caravans/<int:caravan_id>/join-code", IN_SCOPE),
    Case("GET", "/api/v1/caravans/<int:caravan_id>/qr.svg", IN_SCOPE),
    Case("GET", "/api/v1/caravans/<int:caravan_id>/qr.png", IN_SCOPE),
    Case("GET", "/api/v1/caravans/<int:caravan_id>/enrollments", IN_SCOPE),
    Case("POST", "/api/v1/enrollments", EVERYONE,
         body=lambda w, r: {"join_code": w.join_code(), "display_name": f"Dr {r}"}),
    Case("DELETE", "/api/v1/enrollments/<int:enrollment_id>", IN_SCOPE),
    Case("POST", "/api/v1/enrollments/<int:enrollment_id>/token", IN_SCOPE),
    Case("GET", "/api/v1/volunteers/me", VOLUNTEER),
    Case("POST", "/api/v1/volunteers/me", VOLUNTEER, body=lambda w, r: {}),
    Case("PATCH", "/api/v1/volunteers/me", VOLUNTEER, body=lambda w, r: {"public_consent": True}),
    Case("GET", "/api/v1/volunteers/me/record", VOLUNTEER),
    Case("POST", "/api/v1/volunteers/me/erase", VOLUNTEER),
    Case("GET", "/api/v1/notifications", STAFF,
         why="clashes of the caller's own caravans; caravan metadata is not health data"),
    # recognition: contributions are public (tallies in them only with full detail)
    Case("GET", "/api/v1/contributions", EVERYONE),
    Case("GET", "/api/v1/contributions", EVERYONE,
         url=lambda w: "/api/v1/contributions?by=volunteer"),
    Case("POST", "/api/v1/pledges", EVERYONE,
         body=lambda w, r: {"join_code": w.join_code(), "display_name": f"Dr {r}",
                            "specialty": "OPH"}, why="pledge links are public, like join codes"),
    Case("GET", "/api/v1/caravans/<int:caravan_id>/staffing", IN_SCOPE),
    # tallies
    Case("POST", "/api/v1/submissions", IN_SCOPE_AND_VOLUNTEER, body=lambda w, r: w.tally(),
         why="volunteers send their own; coordinators in scope enter paper sheets"),
    Case("POST", "/api/v1/submissions", IN_SCOPE,
         body=lambda w, r: w.tally(w.caravan_b), why="a device cannot send to another caravan"),
    Case("GET", "/api/v1/submissions", COORDINATORS | VOLUNTEER),
    Case("GET", "/api/v1/submissions/<string:submission_id>", IN_SCOPE_AND_VOLUNTEER),
    Case("PUT", "/api/v1/submissions/<string:submission_id>", IN_SCOPE_AND_VOLUNTEER,
         body=lambda w, r: {k: v for k, v in w.tally().items() if k != "id"}),
    Case("POST", "/api/v1/submissions/<string:submission_id>/review", IN_SCOPE,
         body=lambda w, r: {"status": "approved", "reason": "Looks right.", "version": 1}),
    Case("DELETE", "/api/v1/submissions/<string:submission_id>/note", IN_SCOPE),
    Case("GET", "/api/v1/caravans/<int:caravan_id>/completeness", IN_SCOPE_AND_VOLUNTEER,
         why="the planner's organization did not organize caravan A"),
    # insights
    Case("GET", "/api/v1/summary", STAFF),
    Case("GET", "/api/v1/public/summary", EVERYONE),
    Case("GET", "/api/v1/needs", STAFF, url=lambda w: "/api/v1/needs?specialty=OPH"),
    Case("POST", "/api/v1/plans", STAFF, body=lambda w, r: {
        "base": "08.587.01.13", "radius_km": 80, "days": 2, "team": {"OPH": 1, "GEN": 2}}),
    # exports: the summary's audience; the detail of lines only for coordinators (their regions)
    *(Case("GET", f"/api/v1/exports/summary.{extension}", STAFF,
           url=lambda w, e=extension: f"/api/v1/exports/summary.{e}?by=region,specialty")
      for extension in ("csv", "xlsx", "json", "geojson")),
    *(Case("GET", rule, STAFF, url=lambda w, r=rule: f"{r}?region=08&period=year")
      for rule in ("/api/v1/exports/dhis2/dataValueSets.json",
                   "/api/v1/exports/dhis2/dataValueSets.csv", "/api/v1/exports/adx.xml")),
    *(Case("GET", f"/api/v1/exports/report.{extension}", STAFF,
           url=lambda w, e=extension: f"/api/v1/exports/report.{e}?region=08")
      for extension in ("html", "pdf")),
    *(Case("GET", f"/api/v1/exports/caravans/<int:caravan_id>/report.{extension}", IN_SCOPE,
           why="a caravan's report is for its coordinators and organizers (not the planner's)")
      for extension in ("html", "pdf")),
    Case("GET", "/api/v1/exports/detail.csv", COORDINATORS,
         why="a coordinator outside region 08 gets their own regions' lines (none here)"),
    Case("GET", "/api/v1/exports/detail.csv", IN_SCOPE, url=lambda w: "/api/v1/exports/detail.csv?region=08",
         why="asking for another region's lines is refused"),
]


def _api_routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_api_route_is_in_the_matrix(app):
    covered = {(case.method, case.rule) for case in CASES}
    missing = sorted(_api_routes(app) - covered)
    assert not missing, f"add these routes to CASES in {__file__}: {missing}"
    gone = sorted(covered - _api_routes(app))
    assert not gone, f"CASES names routes the app no longer has: {gone}"


def _world(db) -> World:
    from fieldsvc.accounts.services import get_or_create_organization

    make_areas()
    today = dt.date.today()
    organizer = get_or_create_organization("Wahat Al-Khair")
    admin = make_user("admin")
    inside = make_user("coordinator", regions=["08"], password="coordinator-pass-phrase")
    outside = make_user("coordinator", regions=["07"])
    planner = make_user("planner", organization="Union de l'Action Féminine")
    spare = make_user("planner", organization="Union de l'Action Féminine")  # an admin's target
    a = make_caravan(first_day=today - dt.timedelta(days=1), last_day=today,
                     organizers=(organizer.name,))
    b = make_caravan("08.577.01.11", title="Caravane de Tinghir", sites=(),
                     first_day=today - dt.timedelta(days=1), last_day=today)
    _, volunteer = make_enrollment(a)
    target, _ = make_enrollment(a, display_name="Dr Revoked")
    db.session.commit()
    headers = {"admin": auth(admin), "coordinator_in": auth(inside),
               "coordinator_out": auth(outside), "planner": auth(planner),
               "volunteer": volunteer, "anonymous": {}}
    world = World(headers=headers, caravan_a=a.id, caravan_b=b.id, submission="",
                  params={"caravan_id": str(a.id), "enrollment_id": str(target.id),
                          "code": "08.587.01.13", "user_id": str(spare.id)}, basic={})
    import base64

    secret = base64.b64encode(f"{inside.username}:coordinator-pass-phrase".encode()).decode()
    world.basic = {"Authorization": f"Basic {secret}"}
    return world


def _url(case: Case, world: World) -> str:
    if case.url is not None:
        return case.url(world)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in world.params, f"no value for <{name}> in World.params ({case.rule})"
        return str(world.params[name])

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", fill, case.rule)


def test_authorization_matrix(app, client, db):
    world = _world(db)
    sent = client.post("/api/v1/submissions", json=world.tally(),
                       headers=world.headers["volunteer"])
    assert sent.status_code == 201, sent.json
    world.submission = sent.json["id"]
    world.params["submission_id"] = world.submission

    wrong: list[str] = []
    for case in CASES:
        for role in case.only_as:
            headers = case.headers(world, role) if case.headers else world.headers[role]
            kwargs: dict[str, Any] = {"headers": headers}
            if case.body is not None:
                kwargs["json"] = case.body(world, role)
            url = _url(case, world)
            with client.open(url, method=case.method, **kwargs) as response:
                status = response.status_code
            if status >= 500:
                wrong.append(f"{case.method} {url} as {role}: {status} (a server error)")
            elif role in case.allowed and status in (401, 403):
                wrong.append(f"{case.method} {url} as {role}: {status}, expected to get through")
            elif role not in case.allowed:
                expected = 401 if role == "anonymous" else 403
                if status != expected:
                    wrong.append(f"{case.method} {url} as {role}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)


# --- Pages of the coordinator's workspace (/workspace/...) -----------------------------------
# The same table for pages: allowed callers get through, others get 403 (a page saying so);
# anonymous visitors are sent to the login page. Forms post with a CSRF token.

RUNNERS = COORDINATORS  # admins and coordinators open the workspace; their own regions' caravans


@dataclass
class PageCase:
    method: str
    rule: str
    allowed: frozenset[str]
    form: Callable[[World, str], dict[str, Any]] | None = None
    url: Callable[[World], str] | None = None


def _sheet_form(world: World, role: str) -> dict[str, Any]:
    return {"day": (dt.date.today() - dt.timedelta(days=1)).isoformat(), "specialty": "OPH",
            "site": "", "volunteer": "", "note": "", "n-consultations-F-50-64": "3"}


PAGE_CASES: list[PageCase] = [
    PageCase("GET", "/workspace/", RUNNERS),
    PageCase("GET", "/workspace/caravans/new", RUNNERS),
    PageCase("POST", "/workspace/caravans/new", RUNNERS, form=lambda w, r: {
        "title": f"Caravane {r}", "commune": "Zagora (08.587.01.13)", "first_day": "2026-12-05",
        "last_day": "2026-12-06", "specialties": "GEN", "save": "1"}),
    PageCase("GET", "/workspace/caravans/<int:caravan_id>", IN_SCOPE),
    PageCase("GET", "/workspace/caravans/<int:caravan_id>/edit", IN_SCOPE),
    PageCase("POST", "/workspace/caravans/<int:caravan_id>/edit", IN_SCOPE, form=lambda w, r: {
        "title": f"Caravane de Zagora ({r})", "first_day": (dt.date.today() - dt.timedelta(days=1))
        .isoformat(), "last_day": dt.date.today().isoformat(), "specialties": ["GEN", "OPH", "PED"]}),
    PageCase("GET", "/workspace/caravans/<int:caravan_id>/sites/<int:site_id>", IN_SCOPE,
             url=lambda w: _site_url("/workspace", w)),
    PageCase("POST", "/workspace/caravans/<int:caravan_id>/sites/<int:site_id>", IN_SCOPE,
             form=lambda w, r: {"name": f"École ({r})", "location": "30.33, -5.84"},
             url=lambda w: _site_url("/workspace", w)),
    PageCase("POST", "/workspace/caravans/<int:caravan_id>/sites/<int:site_id>/remove", IN_SCOPE,
             form=lambda w, r: {}, url=lambda w: _site_url("/workspace", w, "/remove")),
    PageCase("GET", "/workspace/caravans/<int:caravan_id>/poster", IN_SCOPE),
    PageCase("GET", "/workspace/caravans/<int:caravan_id>/completeness", IN_SCOPE),
    PageCase("GET", "/workspace/caravans/<int:caravan_id>/volunteers", IN_SCOPE),
    PageCase("GET", "/workspace/caravans/<int:caravan_id>/sheet", IN_SCOPE),
    PageCase("POST", "/workspace/caravans/<int:caravan_id>/sheet", IN_SCOPE, form=_sheet_form),
    PageCase("GET", "/workspace/review", RUNNERS),
    PageCase("GET", "/workspace/submissions/<string:submission_id>", IN_SCOPE),
    PageCase("POST", "/workspace/submissions/<string:submission_id>", IN_SCOPE,
             form=lambda w, r: {"status": "flagged", "reason": f"Vérifier ({r})", "version": "1"}),
    PageCase("POST", "/workspace/submissions/<string:submission_id>/approve", IN_SCOPE,
             form=lambda w, r: {"version": "1"}),
    PageCase("GET", "/workspace/devices/<int:enrollment_id>/revoke", IN_SCOPE),
    PageCase("POST", "/workspace/devices/<int:enrollment_id>/revoke", IN_SCOPE,
             form=lambda w, r: {}),
    PageCase("GET", "/workspace/audit", RUNNERS),
    PageCase("GET", "/workspace/staff", ADMIN),
    PageCase("POST", "/workspace/staff", ADMIN, form=lambda w, r: {
        "username": f"new-{r}", "role": "planner", "password": "a long password",
        "organization": "0"}),
    PageCase("GET", "/workspace/staff/<int:user_id>", ADMIN),
    PageCase("POST", "/workspace/staff/<int:user_id>", ADMIN, form=lambda w, r: {
        "active": "y", "organization": "0", "regions": ["08"]}),
    # Last: closing caravan A would change what the rows above see.
    PageCase("POST", "/workspace/caravans/<int:caravan_id>/status", IN_SCOPE,
             form=lambda w, r: {"status": "closed"}),
]


def _page_routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/workspace/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_workspace_page_is_in_the_matrix(app):
    covered = {(case.method, case.rule) for case in PAGE_CASES}
    missing = sorted(_page_routes(app) - covered)
    assert not missing, f"add these pages to PAGE_CASES in {__file__}: {missing}"
    assert not sorted(covered - _page_routes(app))


def test_workspace_pages_matrix(app, client, db):
    import re as _re

    from fieldsvc.tallies.models import SubmissionVersion

    world = _world(db)
    sent = client.post("/api/v1/submissions", json=world.tally(),
                       headers=world.headers["volunteer"])
    assert sent.status_code == 201, sent.json
    world.params["submission_id"] = sent.json["id"]
    coordinator = make_user("coordinator", regions=["08"], username="target-coordinator")
    db.session.commit()
    world.params["user_id"] = str(coordinator.id)
    login_page = client.get("/login").get_data(as_text=True)
    token = _re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)

    wrong: list[str] = []
    for case in PAGE_CASES:
        for role in ROLES:
            url = _url(case, world)  # type: ignore[arg-type]
            headers = {**world.headers[role], "Accept": "text/html"}
            kwargs: dict[str, Any] = {"headers": headers}
            if case.form is not None:
                kwargs["data"] = {**case.form(world, role), "csrf_token": token}
            with client.open(url, method=case.method, **kwargs) as response:
                status, location = response.status_code, response.headers.get("Location", "")
            if status >= 500:
                wrong.append(f"{case.method} {url} as {role}: {status} (a server error)")
            elif role == "anonymous" and role not in case.allowed:
                if not (status == 302 and location.startswith("/login")):
                    wrong.append(f"{case.method} {url} as anonymous: {status} {location}, "
                                 "expected a redirect to the login page")
            elif role in case.allowed and status in (400, 401, 403):
                wrong.append(f"{case.method} {url} as {role}: {status}, expected to get through")
            elif role not in case.allowed and status != 403:
                wrong.append(f"{case.method} {url} as {role}: {status}, expected 403")
    assert not wrong, "\n".join(wrong)
    # The paper sheets posted by the coordinators in scope were stored as theirs.
    paper = db.session.scalars(select_versions(SubmissionVersion)).all()
    assert len(paper) == 2


def select_versions(version):
    from sqlalchemy import select

    return select(version).where(version.entered_by_id.is_not(None))
