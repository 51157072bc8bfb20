"""Every API operation in /api/openapi.json shows an example, shaped like what it really answers."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from fieldsvc.areas.models import AreaIndicator, AreaPopulation
from fieldsvc.extensions import db
from fieldsvc.tallies.services import morocco_today
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_tally, make_user

pytestmark = pytest.mark.usefixtures("fresh_release")

METHODS = {"get", "post", "put", "patch", "delete"}

# Operations allowed to lack an example for now (none left); the test fails on a line whose
# operation has its examples, so this list only shrinks.
WITHOUT_EXAMPLES_YET: set[tuple[str, str]] = set()


@pytest.fixture
def spec(client) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def _has_example(body: dict[str, Any]) -> bool:
    return any("example" in media or "examples" in media
               for media in body.get("content", {}).values())


def _missing_examples(operation: dict[str, Any]) -> list[str]:
    """What an operation lacks: an example of its success answer, and of its request body."""
    missing = []
    successes = [response for status, response in operation["responses"].items()
                 if status.startswith("2")]
    # A success without content (204) has nothing to show.
    if any(response.get("content") for response in successes) and not any(
            _has_example(response) for response in successes):
        missing.append("success response")
    if "requestBody" in operation and not _has_example(operation["requestBody"]):
        missing.append("request body")
    return missing


def test_every_api_operation_has_examples(spec):
    lacking: dict[tuple[str, str], list[str]] = {}
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if method in METHODS:
                missing = _missing_examples(operation)
                if missing:
                    lacking[(method.upper(), path)] = missing
    unexpected = {op: what for op, what in lacking.items() if op not in WITHOUT_EXAMPLES_YET}
    assert not unexpected, f"operations without an example: {unexpected}"
    described = {(method.upper(), path) for path, operations in spec["paths"].items()
                 for method in operations if method in METHODS}
    stale = sorted(op for op in WITHOUT_EXAMPLES_YET if op not in lacking)
    assert not stale, (f"{stale} are documented now (or gone: {sorted(set(stale) - described)}): "
                       "remove them from WITHOUT_EXAMPLES_YET")


def _example(spec: dict[str, Any], method: str, path: str, status: str,
             name: str | None = None, media_type: str = "application/json") -> Any:
    media = spec["paths"][path][method]["responses"][status]["content"][media_type]
    return media["examples"][name]["value"] if name else media["example"]


def _request_example(spec: dict[str, Any], method: str, path: str) -> Any:
    return spec["paths"][path][method]["requestBody"]["content"]["application/json"]["example"]


def _paths(value: Any, prefix: str = "", opaque: frozenset[str] = frozenset()) -> set[str]:
    """Every key path in a JSON value; list items merge under [], keys of `opaque` dicts under *."""
    if isinstance(value, dict):
        found = {prefix} if prefix else set()
        for key, child in value.items():
            name = f"{prefix}.*" if prefix in opaque else f"{prefix}.{key}" if prefix else key
            found |= _paths(child, name, opaque)
        return found
    if isinstance(value, list):
        found = {prefix}
        for child in value:
            found |= _paths(child, f"{prefix}[]", opaque)
        return found
    return {prefix} if prefix else set()


def _same_shape(example: Any, answer: Any, *opaque: str) -> None:
    keys = frozenset(opaque)
    documented, real = _paths(example, opaque=keys), _paths(answer, opaque=keys)
    assert documented == real, (f"example has {sorted(documented - real)} not answered; "
                                f"answer has {sorted(real - documented)} not in the example")


def _world() -> dict[str, Any]:
    """Zagora and Ouahat Sidi Brahim with census figures, two caravans' tallies and the staff."""
    areas = make_areas()
    ouahat = areas["07.351.02.07"]
    ouahat.kind, ouahat.households = "rural", 8393
    for sex, band, people in (("F", "0-4", 1649), ("M", "0-4", 1890), ("F", "65+", 824),
                              ("M", "65+", 963)):
        db.session.add(AreaPopulation(area_code=ouahat.code, sex=sex, age_band=band,
                                      people=people))
    db.session.add(AreaIndicator(area_code=ouahat.code, indicator="illiteracy_rate_pct",
                                 value=20.8))
    zagora = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), sites=())
    marrakech = make_caravan("07.351.02.07", first_day=dt.date(2026, 10, 10),
                             sites=(("Dispensaire", 31.70, -7.95),))
    for caravan, day, specialty, lines in (
        (zagora, dt.date(2026, 10, 3), "OPH", [("consultations", "F", "65+", None, 120),
                                               ("turned_away", "F", "65+", None, 30)]),
        (zagora, dt.date(2026, 10, 3), "PED", [("consultations", "F", "0-4", None, 3)]),
        (marrakech, dt.date(2026, 10, 10), "GEN", [("consultations", "M", "65+", None, 60)]),
        (marrakech, dt.date(2026, 10, 10), "OPH", [("consultations", "F", "15-24", None, 2)]),
    ):
        make_tally(caravan, day=day, specialty=specialty, status="approved", lines=lines)
    admin = make_user("admin", organization="Association Wahat Al-Khair", username="admin")
    coordinator = make_user("coordinator", regions=["08"], username="s.aitali",
                            organization="Association Wahat Al-Khair")
    make_user("planner", username="k.benjelloun")
    db.session.commit()
    # Closed today: its device token lives on through the late-sync window.
    zagora.status, zagora.closed_at = "closed", dt.datetime.now(dt.UTC)
    _, device = make_enrollment(zagora)
    db.session.commit()
    return {"admin": auth(admin), "coordinator": auth(coordinator), "device": device}


def test_examples_have_the_shape_of_real_answers(client, spec):
    world = _world()
    admin = world["admin"]

    def answer(method: str, url: str, status: int = 200, **kwargs: Any) -> Any:
        response = client.open(url, method=method, **kwargs)
        assert response.status_code == status, response.json
        return response.json

    _same_shape(_example(spec, "get", "/api/v1/catalog", "200"), answer("GET", "/api/v1/catalog"))
    new_specialty = spec["paths"]["/api/v1/specialties"]["post"]["requestBody"]["content"][
        "application/json"]["example"]
    _same_shape(_example(spec, "post", "/api/v1/specialties", "201"),
                answer("POST", "/api/v1/specialties", 201, json=new_specialty, headers=admin))
    new_measure = spec["paths"]["/api/v1/measures"]["post"]["requestBody"]["content"][
        "application/json"]["example"]
    _same_shape(_example(spec, "post", "/api/v1/measures", "201"),
                answer("POST", "/api/v1/measures", 201, json=new_measure, headers=admin))
    _same_shape(_example(spec, "get", "/api/v1/areas", "200"),
                answer("GET", "/api/v1/areas?level=commune&q=zagora"))
    _same_shape(_example(spec, "get", "/api/v1/areas/{code}", "200"),
                answer("GET", "/api/v1/areas/07.351.02.07"), "indicators")
    login = base64.b64encode(b"s.aitali:correct horse battery").decode()
    _same_shape(_example(spec, "post", "/api/v1/tokens", "201"),
                answer("POST", "/api/v1/tokens", 201, headers={"Authorization": f"Basic {login}"}))
    _same_shape(_example(spec, "get", "/api/v1/me", "200", "coordinator"),
                answer("GET", "/api/v1/me", headers=world["coordinator"]))
    _same_shape(_example(spec, "get", "/api/v1/me", "200", "volunteer"),
                answer("GET", "/api/v1/me", headers=world["device"]))
    _same_shape(_example(spec, "get", "/api/v1/organizations", "200"),
                answer("GET", "/api/v1/organizations", headers=admin))
    new_organization = spec["paths"]["/api/v1/organizations"]["post"]["requestBody"]["content"][
        "application/json"]["example"]
    _same_shape(_example(spec, "post", "/api/v1/organizations", "201"),
                answer("POST", "/api/v1/organizations", 201, json=new_organization,
                       headers=admin))
    _same_shape(_example(spec, "get", "/api/v1/users", "200"),
                answer("GET", "/api/v1/users", headers=admin))
    october = "from=2026-10-01&to=2026-12-31"
    _same_shape(_example(spec, "get", "/api/v1/summary", "200"),
                answer("GET", f"/api/v1/summary?by=province,specialty&{october}", headers=admin))
    public = answer("GET", f"/api/v1/public/summary?{october}")
    assert any(row.get("suppressed") for row in public["rows"])
    _same_shape(_example(spec, "get", "/api/v1/public/summary", "200"), public)
    _same_shape(_example(spec, "get", "/api/v1/needs", "200"),
                answer("GET", "/api/v1/needs?specialty=OPH&region=08&limit=2&as_of=2026-11-27",
                       headers=admin))
    plan = spec["paths"]["/api/v1/plans"]["post"]["requestBody"]["content"]["application/json"][
        "example"]
    _same_shape(_example(spec, "post", "/api/v1/plans", "200"),
                answer("POST", "/api/v1/plans", json=plan, headers=admin), "specialties")
    _tallies_match_their_examples(spec, answer, world)


def _tallies_match_their_examples(spec: dict[str, Any], answer: Any,
                                  world: dict[str, Any]) -> None:
    """Send the documented tally (to a caravan of yesterday and today), amend, review, read."""
    yesterday = morocco_today() - dt.timedelta(days=1)
    caravan = make_caravan("08.587.01.13", first_day=yesterday)
    db.session.commit()
    _, device = make_enrollment(caravan)
    db.session.commit()
    here = {"caravan_id": caravan.id, "site_id": caravan.sites[0].id,
            "day": yesterday.isoformat()}
    coordinator, problem = world["coordinator"], "application/problem+json"
    submissions = "/api/v1/submissions"
    one = "/api/v1/submissions/{submission_id}"

    sent = {**_request_example(spec, "post", submissions), **here}
    _same_shape(_example(spec, "post", submissions, "201"),
                answer("POST", submissions, 201, json=sent, headers=device))
    _same_shape(_example(spec, "post", submissions, "200"),
                answer("POST", submissions, json=sent, headers=device))
    _same_shape(_example(spec, "post", submissions, "409", media_type=problem),
                answer("POST", submissions, 409, json={**sent, "lines": sent["lines"][:1]},
                       headers=device))
    too_many = [dict(line) for line in sent["lines"]]
    too_many[2]["count"] = 10_001
    _same_shape(_example(spec, "post", submissions, "422", media_type=problem),
                answer("POST", submissions, 422, json={**sent, "lines": too_many},
                       headers=device), "errors")
    answer("POST", submissions, 201, headers=device, json={
        **sent, "id": "5d1e8a47-2b9c-4f60-8e3a-c7b2d9f01a64", "specialty": "GEN", "note": None,
        "lines": [{"measure": "consultations", "sex": "F", "age_band": "25-49", "count": 26},
                  {"measure": "glasses", "sex": "F", "age_band": "25-49", "count": 2}]})

    url = f"{submissions}/{sent['id']}"
    amended = {**_request_example(spec, "put", one), **here}
    _same_shape(_example(spec, "put", one, "200"),
                answer("PUT", url, json=amended, headers=device))
    review = _request_example(spec, "post", one + "/review")
    _same_shape(_example(spec, "post", one + "/review", "200"),
                answer("POST", f"{url}/review", json=review, headers=coordinator))
    _same_shape(_example(spec, "post", one + "/review", "409", media_type=problem),
                answer("POST", f"{url}/review", 409, json={**review, "version": 1},
                       headers=coordinator), "errors")
    _same_shape(_example(spec, "get", one, "200"), answer("GET", url, headers=coordinator))
    _same_shape(_example(spec, "get", submissions, "200"),
                answer("GET", f"{submissions}?caravan_id={caravan.id}", headers=coordinator))
    _same_shape(_example(spec, "get", "/api/v1/caravans/{caravan_id}/completeness", "200"),
                answer("GET", f"/api/v1/caravans/{caravan.id}/completeness",
                       headers=coordinator))
