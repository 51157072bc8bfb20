"""Every date and integer the OpenAPI document describes, walked one by one: a date outside
2000–2100 or an integer past what the columns hold is a 4xx that names it (a 422 for query
and body fields, a 404 for an id in the path), never a 5xx. Once, on PostgreSQL, where an
integer past 2³¹−1 would otherwise reach SQL."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fieldsvc.extensions import db
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user

EXAMPLES = 4  # generated values per field, on top of the fixed edges below
EDGE_DAYS = ("9999-12-31", "9999-12-30", "0001-01-01", "0001-01-31", "1999-12-31", "2101-01-01")
EDGE_INTEGERS = (2**31, 2**63, 10**20, -(2**31) - 1)
DAYS = st.one_of(st.dates(max_value=dt.date(1999, 12, 31)),
                 st.dates(min_value=dt.date(2101, 1, 1))).map(dt.date.isoformat)
INTEGERS = st.one_of(st.integers(min_value=2**31, max_value=10**30),
                     st.integers(max_value=-(2**31) - 1, min_value=-(10**30)))
SETTINGS = dict(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _kind(schema: dict[str, Any]) -> str | None:
    item = schema.get("items", {}) if schema.get("type") == "array" else schema
    if item.get("format") in {"date", "date-time"}:
        return item["format"]
    if item.get("type") == "integer":
        return "integer"
    return None


def _body_fields(spec: dict[str, Any], schema: dict[str, Any],
                 prefix: tuple = ()) -> list[tuple[tuple, str]]:
    """(path into the body, kind) of every date and integer of a request body, nested too."""
    schema = _resolve(spec, schema)
    found = []
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(spec, prop)
        kind = _kind(prop)
        if kind:
            found.append(((*prefix, name), kind))
        elif prop.get("type") == "array" and "properties" in _resolve(spec, prop.get("items", {})):
            found += _body_fields(spec, prop["items"], (*prefix, name, 0))
        elif prop.get("type") == "object" and _kind(prop.get("additionalProperties", {})):
            found.append(((*prefix, name, "OPH"), _kind(prop["additionalProperties"])))
    return found


def _targets(spec: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    for path, operations in spec["paths"].items():
        shared = operations.get("parameters", [])
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for parameter in [*shared, *operation.get("parameters", [])]:
                kind = _kind(parameter.get("schema", {}))
                if kind:
                    targets.append({"method": method.upper(), "path": path,
                                    "in": parameter["in"], "name": parameter["name"],
                                    "kind": kind})
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                example = body.get("example")
                for field_path, kind in _body_fields(spec, body["schema"]):
                    targets.append({"method": method.upper(), "path": path, "in": "body",
                                    "name": field_path, "kind": kind, "example": example})
    return targets


@pytest.fixture
def world(pg_app: Flask) -> dict[str, Any]:
    make_areas()
    admin = make_user("admin")
    caravan = make_caravan()
    _, volunteer = make_enrollment(caravan)
    db.session.commit()
    return {"admin": auth(admin), "volunteer": volunteer,
            "path": {"caravan_id": caravan.id, "enrollment_id": 1, "user_id": admin.id,
                     "site_id": caravan.sites[0].id,
                     "submission_id": "0b6f2c9e-3f1c-4b8e-9a51-6f0d2f4a7c11",
                     "code": "08.587.01.13"}}


def _set(document: Any, path: tuple, value: Any) -> Any:
    document = copy.deepcopy(document) if document is not None else {}
    target = document
    for key in path[:-1]:
        if isinstance(key, int):
            while len(target) <= key:
                target.append({})
        elif key not in target or not isinstance(target[key], dict | list):
            target[key] = [] if isinstance(path[path.index(key) + 1], int) else {}
        target = target[key]
    target[path[-1]] = value
    return document


def _send(client: Any, world: dict[str, Any], target: dict[str, Any], value: Any) -> Any:
    path_values = dict(world["path"])
    query = ""
    body = None
    if target["in"] == "path":
        path_values[target["name"]] = value
    elif target["in"] == "query":
        query = f"?{target['name']}={value}"
    else:
        body = _set(target.get("example"), target["name"], value)
    url = re.sub(r"\{([^}]+)\}", lambda m: str(path_values[m.group(1)]), target["path"]) + query
    response = None
    for caller in ("admin", "volunteer", None):  # the first caller the route lets through
        response = client.open(url, method=target["method"], headers=world.get(caller, {}),
                               data=None if body is None else json.dumps(body),
                               content_type="application/json" if body is not None else None)
        if response.status_code not in (401, 403):
            break
    return response, url, body


def _generated(check: Any, target: dict[str, Any], strategy: st.SearchStrategy) -> None:
    @settings(**SETTINGS)
    @given(value=strategy)
    def run(value: Any) -> None:
        check(target, value)

    run()


def test_out_of_range_dates_and_integers_are_refused_everywhere(pg_app: Flask, world):
    client = pg_app.test_client()
    spec = client.get("/api/openapi.json").json
    targets = _targets(spec)
    walked = {(t["method"], t["path"]) for t in targets}
    # The walk reaches every kind of place a date or an id comes in.
    for needed in [("GET", "/api/v1/summary"), ("GET", "/api/v1/public/summary"),
                   ("GET", "/api/v1/needs"), ("POST", "/api/v1/submissions"),
                   ("POST", "/api/v1/caravans"), ("PATCH", "/api/v1/caravans/{caravan_id}"),
                   ("GET", "/api/v1/audit"), ("POST", "/api/v1/plans"),
                   ("GET", "/api/v1/caravans/{caravan_id}")]:
        assert needed in walked, (needed, sorted(walked))
    wrong: list[str] = []
    count = 0

    def check(target: dict[str, Any], value: Any) -> None:
        nonlocal count
        count += 1
        response, url, body = _send(client, world, target, value)
        status = response.status_code
        where = f"{target['method']} {url} {target['in']} {target['name']}={value!r}"
        if status >= 500:
            wrong.append(f"{where}: {status}\n  body {body!r:.300}")
        elif target["in"] == "path":
            if status != 404:
                wrong.append(f"{where}: {status}, expected 404")
        elif status != 422:
            wrong.append(f"{where}: {status}, expected 422: "
                         f"{response.get_data(as_text=True)[:300]}")
        else:
            name = target["name"] if isinstance(target["name"], str) else target["name"][0]
            if not any(name in key for key in response.json.get("errors", {})):
                wrong.append(f"{where}: 422 without naming {name}: {response.json}")

    for target in targets:
        edges = EDGE_DAYS if target["kind"] != "integer" else EDGE_INTEGERS
        if target["kind"] == "date-time":
            edges = tuple(f"{day}T00:00:00Z" for day in edges)
        for value in edges:
            check(target, value)
        strategy = INTEGERS if target["kind"] == "integer" else DAYS
        if target["kind"] == "date-time":
            strategy = DAYS.map(lambda day: f"{day}T12:00:00Z")

        _generated(check, target, strategy)
    assert not wrong, f"{len(wrong)} of {count}:\n" + "\n".join(wrong[:40])
    print(f"ranges: {count} requests over {len(targets)} fields of {len(walked)} operations")
