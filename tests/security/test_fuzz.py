"""Fuzzing the API on PostgreSQL: no input yields a 500, and a refused request changes nothing.

Two passes, both through the WSGI app (no server):

1. schemathesis drives every operation of the app's own ``/api/openapi.json`` with data that
   fits the schema and data that breaks it, as each role: a volunteer's device token, no token,
   a planner's, a coordinator's (of the caravan's region) and an admin's bearer token;
2. hypothesis mutates valid bodies of the write paths the phone and the coordinators use
   (submissions, amendments, caravans, enrollments) and sends random query strings to the
   summary: wrong types, huge numbers, nested garbage, unicode (lone surrogates too), missing and
   extra fields, duplicate line keys, bodies that are not JSON and wrong content types.

After every response: status < 500; a 4xx is ``application/problem+json`` with its status in the
body; and after a 4xx the stored submissions, versions, lines, caravans, sites and enrollments
are exactly what they were (row counts and a digest of their contents).
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import itertools
import json
import time
import uuid
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from fieldsvc.extensions import db
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user

schemathesis = pytest.importorskip("schemathesis")

# Examples per operation and role (pass 1) and per target (pass 2): about a minute in all.
OPERATION_EXAMPLES = 6
ROLES = ("volunteer", "anonymous", "planner", "coordinator", "admin")
MUTATION_EXAMPLES = 100

DAY = dt.date.today() - dt.timedelta(days=1)

# Counts and a digest of every row a refused request must leave alone (PostgreSQL only).
STATE_SQL = text("""
SELECT (SELECT count(*) FROM submission),
       (SELECT count(*) FROM submission_version),
       (SELECT count(*) FROM tally_line),
       (SELECT count(*) FROM caravan),
       (SELECT count(*) FROM site),
       (SELECT count(*) FROM enrollment),
       (SELECT md5(coalesce(string_agg(s::text, '|' ORDER BY s.id), '')) FROM submission s),
       (SELECT md5(coalesce(string_agg(l::text, '|' ORDER BY l.id), '')) FROM tally_line l),
       (SELECT md5(coalesce(string_agg(c::text, '|' ORDER BY c.id), '')) FROM caravan c),
       (SELECT md5(coalesce(string_agg(cs::text, '|' ORDER BY cs::text), ''))
          FROM caravan_specialty cs),
       (SELECT md5(coalesce(string_agg(e::text, '|' ORDER BY e.id), '')) FROM enrollment e)
""")
STATE_NAMES = ("submissions", "versions", "tally lines", "caravans", "sites", "enrollments",
               "submission rows", "tally line rows", "caravan rows", "planned specialties",
               "enrollment rows")


def _state() -> tuple:
    db.session.rollback()
    state = tuple(db.session.execute(STATE_SQL).one())
    db.session.rollback()
    return state


def _changes(before: tuple, after: tuple) -> list[str]:
    return [name for name, a, b in zip(STATE_NAMES, before, after, strict=True) if a != b]


class Checker:
    """Applies the three rules to every response; keeps the first failure of each kind."""

    def __init__(self) -> None:
        self.statuses: dict[str, set[int]] = {}
        self.failures: dict[str, str] = {}
        self.count = 0
        self.labels: list[str] = []

    def check(self, label: str, status: int, content_type: str, body: bytes, before: tuple,
              request: str) -> None:
        self.count += 1
        self.labels.append(label)
        self.statuses.setdefault(label, set()).add(status)
        problem = self._problem(status, content_type, body, before)
        key = f"{label}: {problem}"
        if problem and key not in self.failures:
            self.failures[key] = (f"{label} -> {status}: {problem}\n  request: {request[:1500]}"
                                    f"\n  response: {body[:600]!r}")

    @staticmethod
    def _problem(status: int, content_type: str, body: bytes, before: tuple) -> str | None:
        if status >= 500:
            return "server error"
        if 400 <= status < 500:
            if not content_type.startswith("application/problem+json"):
                return f"a {status} that is not problem+json ({content_type})"
            try:
                problem = json.loads(body)
            except ValueError:
                return "a problem+json body that is not JSON"
            if not isinstance(problem, dict) or problem.get("status") != status \
                    or not problem.get("title"):
                return "problem document without its status or title"
            if status == 422 and not problem.get("errors"):
                return "a 422 without field errors"
            changed = _changes(before, _state())
            if changed:
                return f"a refused request changed {changed}"
        return None

    def crashed(self, label: str, error: BaseException, request: str) -> None:
        """The app raised instead of answering (e.g. inside its own error handler)."""
        self.count += 1
        self.failures.setdefault(f"{label}: {type(error).__name__}",
                                 f"{label} -> raised {error!r}\n  request: {request[:1500]}")

    def assert_clean(self) -> None:
        assert not self.failures, "\n\n".join(self.failures.values())


@pytest.fixture
def field(pg_app: Flask) -> dict[str, Any]:
    """An admin, a caravan in Zagora with a site, an enrolled volunteer, one stored tally."""
    make_areas()
    admin = make_user("admin")
    coordinator = make_user("coordinator", regions=["08"])
    planner = make_user("planner", organization="Union de l'Action Féminine")
    caravan = make_caravan(first_day=DAY, last_day=DAY + dt.timedelta(days=1),
                           join_code="FUZZ2345")
    enrollment, volunteer = make_enrollment(caravan)
    spare, _ = make_enrollment(caravan, display_name="Dr Spare")  # for DELETE to revoke
    db.session.commit()
    organization_id = caravan.organizers[0].id
    admin_header = auth(admin)
    submission = _submission(caravan.id, caravan.sites[0].id)
    client = pg_app.test_client()
    response = client.post("/api/v1/submissions", json=submission, headers=volunteer)
    assert response.status_code == 201, response.get_data(as_text=True)
    return {"admin": admin_header, "volunteer": volunteer, "coordinator": auth(coordinator),
            "planner": auth(planner), "caravan_id": caravan.id,
            "site_id": caravan.sites[0].id, "submission": submission, "spare": spare.id,
            "join_code": "FUZZ2345", "enrollment_id": enrollment.id,
            "organization_id": organization_id}


def _submission(caravan_id: int, site_id: int | None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "caravan_id": caravan_id, "site_id": site_id,
        "day": DAY.isoformat(), "specialty": "OPH",
        "lines": [
            {"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 12},
            {"measure": "procedures", "sex": "F", "age_band": "65+", "condition": "VII",
             "count": 3},
            {"measure": "glasses", "sex": "M", "age_band": "50-64", "count": 7},
        ],
        "note": "Électricité coupée l'après-midi",
    }


FUZZ_SETTINGS = dict(deadline=None, database=None, derandomize=True,
                     suppress_health_check=list(HealthCheck),
                     phases=[Phase.explicit, Phase.generate])


# --- pass 1: every operation of the OpenAPI document --------------------------------------------

def test_every_operation_survives_schemathesis(pg_app: Flask, field: dict[str, Any]) -> None:
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", pg_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, [op.label for op in operations]
    known = {"caravan_id": field["caravan_id"], "submission_id": field["submission"]["id"],
             "enrollment_id": field["spare"], "code": "08.587.01.13"}
    checker = Checker()
    started = time.monotonic()
    # The volunteer goes first: coordinators and the admin may revoke tokens and close the
    # caravan, and the admin may end everyone's tokens.
    for role in ROLES:
        headers = field.get(role, {})
        for operation in operations:
            path_names = {p.name for p in operation.path_parameters}
            real = {k: v for k, v in known.items() if k in path_names}
            strategies = [operation.as_strategy(generation_mode=mode, headers=headers)
                          for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
            if real:  # also aim at rows that exist, not only at random ids
                strategies.append(operation.as_strategy(
                    generation_mode=GenerationMode.POSITIVE, headers=headers,
                    path_parameters=real))

            _fuzz_operation(pg_app, checker, f"{role} {operation.label}", headers,
                            st.one_of(strategies))
            for case in _edge_cases(operation, headers, known):
                _call(pg_app, checker, f"{role} {operation.label}", case)
    elapsed = time.monotonic() - started
    checker.assert_clean()
    # Each role reached the API, not only its 401 (a broken token would make this pass vacuously).
    for role in ROLES:
        seen = set().union(*(v for k, v in checker.statuses.items() if k.startswith(role)))
        assert seen & {200, 201}, (role, checker.statuses)
    per_role = {role: sum(1 for label in checker.labels if label.startswith(role))
                for role in ROLES}
    print(f"schemathesis: {checker.count} requests on {len(operations)} operations "
          f"in {elapsed:.1f} s, per role {per_role}, 5xx: "
          f"{sum(1 for codes in checker.statuses.values() for code in codes if code >= 500)}")


EDGE_INTEGERS = (2**31, 2**63, -(2**31) - 1, -1)
EDGE_STRINGS = ("\x00", "a\x00b", "\ud800", "\udfff\ud800")


def _edge_cases(operation: Any, headers: dict[str, str], known: dict[str, Any]) -> list[Any]:
    """Integers just past what PostgreSQL's integer and bigint hold, in each integer parameter.

    Random generation reaches them only sometimes; these cases make every run try them.
    """
    cases = []
    defaults = {p.name: known.get(p.name, 1) for p in operation.path_parameters}
    for location, parameters in (("path", operation.path_parameters), ("query", operation.query)):
        for parameter in parameters:
            if parameter.definition.get("schema", {}).get("type") != "integer":
                continue
            for value in EDGE_INTEGERS:
                path = {**defaults, parameter.name: value} if location == "path" else defaults
                query = {parameter.name: value} if location == "query" else None
                cases.append(operation.Case(path_parameters=path, query=query, headers=headers))
    return cases


def _call(app: Flask, checker: Checker, label: str, case: Any) -> None:
    before = _state()
    request = f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"
    try:
        response = case.call(app=app)
    except Exception as error:  # noqa: BLE001 - reported with the others
        checker.crashed(label, error, request)
        return
    body = response.content
    if "gzip" in (response.headers.get("content-encoding") or [""])[0]:
        body = gzip.decompress(body)
    checker.check(label, response.status_code, (response.headers.get("content-type") or [""])[0],
                  body, before, request)


def _fuzz_operation(app: Flask, checker: Checker, label: str, headers: dict[str, str],
                    strategy: st.SearchStrategy) -> None:
    @settings(max_examples=OPERATION_EXAMPLES, **FUZZ_SETTINGS)
    @given(case=strategy)
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}
        _call(app, checker, label, case)

    run()


# --- pass 2: mutated bodies on the write paths --------------------------------------------------

LEAVES = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 10_000, 10_001, 2**31, 2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", " ", "OPH", "consultations", "F", "65+", "XXII", "XXIII", "2026-02-30",
                     "0000-00-00", "9999-12-31", "\x00", "\ud800", "😷" * 50, "ث" * 300,
                     "' OR 1=1 --", "%s%s%s", "a" * 5000, "1e400", "NaN", "true"]),
)
def _nest(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(children, max_size=4),
                     st.dictionaries(st.text(max_size=10), children, max_size=4))


GARBAGE = st.recursive(LEAVES, _nest, max_leaves=12)


ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV",
         "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI", "XXII")


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON document (keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _get(document: Any, path: tuple) -> Any:
    for key in path:
        document = document[key]
    return document


def _parent(document: Any, path: tuple) -> Any:
    return _get(document, path[:-1])


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> tuple[str, bytes, str]:
    """(content type, body bytes, description) of a valid body with a few things broken."""
    document = copy.deepcopy(valid)
    kind = draw(st.sampled_from(
        ["mutate"] * 6 + ["none", "not-json", "wrong-type", "top-level", "lines"]))
    if kind == "none":
        return "application/json", json.dumps(document).encode(), "valid"
    if kind == "not-json":
        body = draw(st.one_of(
            st.binary(max_size=200),
            st.sampled_from([b"", b"{", b"{\"id\": }", b"null", b"[]", b"\xff\xfe{}",
                             b"{\"lines\": [" * 200, json.dumps(document).encode()[:-3],
                             json.dumps(document).replace('"count": 12', '"count": NaN')
                             .encode()]),
        ))
        return "application/json", body, f"not JSON: {body[:80]!r}"
    if kind == "wrong-type":
        content_type = draw(st.sampled_from(
            ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
             "application/xml", "", "application/jsonx", "text/json; charset=latin-1"]))
        return content_type, json.dumps(document).encode(), f"Content-Type {content_type!r}"
    if kind == "top-level":
        other = draw(GARBAGE.filter(lambda v: not isinstance(v, dict)))
        return "application/json", json.dumps(other).encode(), f"top level {other!r:.80}"
    if kind == "lines" and isinstance(document.get("lines"), list):
        how = draw(st.sampled_from(["duplicate", "empty", "many", "reorder-dup"]))
        lines = document["lines"]
        if how == "duplicate":
            lines.append(dict(lines[0], count=draw(st.integers(0, 10_000))))
        elif how == "empty":
            document["lines"] = []
        elif how == "many":  # at the limit of 500 distinct lines, and one past it
            keys = itertools.product(("consultations", "procedures", "referrals", "medicines"),
                                     ("F", "M"), ("0-4", "5-14", "15-24", "25-49", "50-64", "65+"),
                                     (None, *(f"{n}" for n in ROMAN)))
            document["lines"] = [
                {"measure": m, "sex": s, "age_band": b, "condition": c, "count": 1}
                for (m, s, b, c) in itertools.islice(keys, draw(st.sampled_from([500, 501])))]
        else:
            lines.insert(0, dict(lines[-1]))
        return "application/json", json.dumps(document).encode(), f"lines: {how}"
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        action = draw(st.sampled_from(["replace", "replace", "delete", "extra"]))
        if action == "extra" or not paths:
            dicts = [()] + [p for p in paths if isinstance(_get(document, p), dict)]
            target = _get(document, draw(st.sampled_from(dicts)))
            key = draw(st.text(min_size=1, max_size=12))
            target[key] = draw(GARBAGE)
            steps.append(f"extra {key!r}")
            continue
        path = draw(st.sampled_from(paths))
        parent = _parent(document, path)
        if action == "delete":
            del parent[path[-1]]
            steps.append(f"delete {path}")
        else:
            parent[path[-1]] = draw(GARBAGE)
            steps.append(f"replace {path}")
    body = json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")
    return "application/json", body, "; ".join(steps)


def _send(checker: Checker, client: Any, method: str, url: str, headers: dict[str, str],
          content_type: str, body: bytes, request: str) -> Any:
    """Send a request; None (and a failure recorded) when the app raises instead of answering."""
    all_headers = dict(headers)
    if content_type:
        all_headers["Content-Type"] = content_type
    try:
        return client.open(url, method=method, data=body, headers=all_headers)
    except Exception as error:  # noqa: BLE001 - reported with the others
        checker.crashed(f"{method} {url}", error, request)
        return None


def _fuzz_target(client: Any, checker: Checker, method: str, url: Any,
                 headers: dict[str, str], valid: Any) -> None:
    @settings(max_examples=MUTATION_EXAMPLES, **FUZZ_SETTINGS)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        content_type, body, description = data.draw(mutated(valid()))
        before = _state()
        request = f"{description}\n{body[:1500]!r}"
        response = _send(checker, client, method, url(), headers, content_type, body, request)
        if response is None:
            return
        checker.check(f"{method} {url()}", response.status_code,
                      response.headers.get("Content-Type", ""), response.get_data(),
                      before, request)
        if description == "valid" and method == "POST" and "submissions" in url():
            assert response.status_code == 201, response.get_data(as_text=True)

    run()


def _edge_values(client: Any, checker: Checker, method: str, url: Any,
                   headers: dict[str, str], valid: Any) -> None:
    """Every integer of a valid body, in turn, just past what PostgreSQL's columns hold; every
    string, in turn, with what PostgreSQL's text refuses (NUL) or UTF-8 cannot encode."""
    for path in _paths(valid()):
        kind = type(_get(valid(), path))
        if kind not in (int, str):
            continue
        for value in EDGE_INTEGERS if kind is int else EDGE_STRINGS:
            document = copy.deepcopy(valid())
            _parent(document, path)[path[-1]] = value
            body = json.dumps(document).encode()
            before = _state()
            request = f"{path} = {value!r}\n{body[:1500]!r}"
            response = _send(checker, client, method, url(), headers, "application/json", body,
                             request)
            if response is None:
                continue
            checker.check(f"{method} {url()}", response.status_code,
                          response.headers.get("Content-Type", ""), response.get_data(),
                          before, request)


def test_mutated_write_bodies_and_summary_queries(pg_app: Flask, field: dict[str, Any]) -> None:
    client = pg_app.test_client()
    checker = Checker()
    caravan_body = {
        "title": "Caravane ophtalmologique de Tagounite", "commune": "08.587.01.13",
        "organizers": [field["organization_id"]],
        "sites": [{"name": "Dispensaire", "location": "30°19'48\"N 5°50'24\"W"}],
        "first_day": DAY.isoformat(), "last_day": (DAY + dt.timedelta(days=1)).isoformat(),
        "specialties": ["OPH", "GEN"],
    }
    enrollment_body = {"join_code": field["join_code"], "display_name": "Dr Youssef",
                       "specialty": "GEN", "create_profile": True, "public_consent": False}
    stored = field["submission"]
    amend_body = {k: v for k, v in stored.items() if k != "id"}

    def fresh_submission() -> dict[str, Any]:
        return _submission(field["caravan_id"], field["site_id"])

    def paper_sheet() -> dict[str, Any]:  # a coordinator typing a volunteer's paper sheet
        return dict(fresh_submission(), enrollment_id=field["enrollment_id"])

    targets = [
        ("POST", lambda: "/api/v1/submissions", "volunteer", fresh_submission),
        ("POST", lambda: "/api/v1/submissions", "admin", paper_sheet),
        ("PUT", lambda: f"/api/v1/submissions/{stored['id']}", "volunteer", lambda: amend_body),
        ("POST", lambda: "/api/v1/caravans", "admin", lambda: caravan_body),
        ("POST", lambda: "/api/v1/enrollments", None, lambda: enrollment_body),
    ]
    for method, url, role, valid in targets:
        headers = field[role] if role else {}

        _fuzz_target(client, checker, method, url, headers, valid)
        _edge_values(client, checker, method, url, headers, valid)

    keys = st.sampled_from(["by", "measure", "from", "to", "region", "province", "commune",
                            "specialty", "caravan", "site", "sex", "age_band", "condition",
                            "organization", "lang", "x", "by[]", ""])
    values = st.one_of(
        st.text(max_size=30),
        st.sampled_from(["province,specialty", "week", "quarter,year,month,day",
                         "region,province,commune,site,caravan,specialty,measure,sex,age_band",
                         "consultations", "glasses", "2026-11-01", "2026-13-45", "08",
                         "08.587", "08.587.01.13", "99", ",,,", "-1", "1e9", "\x00", "\ud800"]),
    )
    query = st.lists(st.tuples(keys, values), max_size=6)

    @settings(max_examples=MUTATION_EXAMPLES, **FUZZ_SETTINGS)
    @given(pairs=query, role=st.sampled_from(["admin", "volunteer", None]),
           path=st.sampled_from(["/api/v1/summary", "/api/v1/public/summary"]))
    def summary(pairs: list[tuple[str, str]], role: str | None, path: str) -> None:
        from urllib.parse import quote

        qs = "&".join(f"{quote(k.encode('utf-8', 'surrogatepass'))}="
                      f"{quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in pairs)
        before = _state()
        try:
            response = client.get(f"{path}?{qs}", headers=field[role] if role else {})
        except Exception as error:  # noqa: BLE001 - reported with the others
            checker.crashed(f"GET {path}", error, qs)
            return
        checker.check(f"GET {path}", response.status_code,
                      response.headers.get("Content-Type", ""), response.get_data(), before, qs)

    summary()
    checker.assert_clean()
    assert checker.statuses["POST /api/v1/submissions"] & {201}, checker.statuses
    assert checker.statuses["GET /api/v1/summary"] & {200}, checker.statuses
