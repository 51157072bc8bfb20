"""What every route shares: JSON-only bodies, one page shape, compression of reads."""

from __future__ import annotations

import gzip

import pytest
from sqlalchemy import select

from tests.factories import auth, make_areas, make_user
from tests.web.test_pages import log_in

CARAVAN = {"title": "Caravane de Zagora", "commune": "08.587.01.13", "first_day": "2026-11-27",
           "last_day": "2026-11-28", "specialties": ["OPH"]}


def test_a_body_that_is_not_json_gets_415_on_every_json_route(client, db):
    make_areas()
    admin = auth(make_user("admin"))
    coordinator = auth(make_user("coordinator", regions=["08"]))
    for url, headers in (("/api/v1/caravans", coordinator), ("/api/v1/organizations", admin),
                         ("/api/v1/specialties", admin), ("/api/v1/enrollments", {})):
        response = client.post(url, data="title=Zagora", headers=headers,
                               content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415, url
        assert response.content_type == "application/problem+json"
        assert "Content-Type" in response.json["errors"]
    # The same body as JSON is read (and refused or accepted for what it says).
    assert client.post("/api/v1/caravans", json=CARAVAN, headers=coordinator).status_code == 201


def test_callers_a_route_refuses_hear_that_before_the_body(client, db):
    make_areas()
    planner = auth(make_user("planner"))
    assert client.post("/api/v1/caravans", data="x", content_type="text/plain").status_code == 401
    response = client.post("/api/v1/caravans", data="x", content_type="text/plain", headers=planner)
    assert response.status_code == 403


def test_every_list_has_one_page_shape(client, db):
    make_areas()
    admin = auth(make_user("admin"))
    for url in ("/api/v1/areas?limit=2&offset=1", "/api/v1/audit?limit=2&offset=1"):
        page = client.get(url, headers=admin).json
        assert set(page) == {"items", "total", "limit", "offset"}, url
        assert (page["limit"], page["offset"]) == (2, 1)
        assert len(page["items"]) <= 2 and page["total"] >= len(page["items"])
    too_far = client.get("/api/v1/areas?offset=2147483648")
    assert too_far.status_code == 422 and "offset" in too_far.json["errors"]


def test_reads_are_compressed_and_writes_are_not(client, db):
    make_areas()
    page = client.get("/api/v1/areas?limit=20", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip"
    assert b"Zagora" in gzip.decompress(page.data)
    coordinator = auth(make_user("coordinator", regions=["08"]))
    created = client.post("/api/v1/caravans", json=CARAVAN,
                          headers={**coordinator, "Accept-Encoding": "gzip"})
    assert created.status_code == 201 and "Content-Encoding" not in created.headers


HOSTILE_BODIES = {
    "100,000 nested arrays": "[" * 100_000,
    "objects nested 5,000 deep": '{"a":' * 5000 + "1" + "}" * 5000,
    "an integer of 5,000 digits": '{"join_code": ' + "9" * 5000 + "}",
    "a float of 5,000 digits": '{"count": 1.' + "5" * 5000 + "}",
}


def _json_routes(app):
    """(method, url) of every route that reads a JSON body, with 1 for each path parameter."""
    import re

    from fieldsvc.http import _reads_json

    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH"}):
            if _reads_json(app.view_functions[rule.endpoint], method):
                yield method, re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)


def test_hostile_json_bodies_are_refused_before_parsing_on_every_json_route(app, client, db):
    routes = list(_json_routes(app))
    assert ("POST", "/api/v1/enrollments") in routes and len(routes) >= 10, routes
    for method, url in routes:
        for name, body in HOSTILE_BODIES.items():
            response = client.open(url, method=method, data=body,
                                   content_type="application/json")
            assert response.status_code == 400, (method, url, name, response.status_code)
            assert response.content_type == "application/problem+json"
            assert response.json["errors"]["_schema"], (url, name)


def test_every_route_that_reads_json_answers_415_to_another_body(app, client, db):
    """Each route found above, asked by a caller it allows, with a body that is not JSON."""
    from fieldsvc.security import allowed_roles
    from tests.factories import make_caravan, make_enrollment

    make_areas()
    _, device = make_enrollment(make_caravan())
    callers = {"admin": auth(make_user("admin")), "volunteer": device, "anonymous": {}}
    routes = list(_json_routes(app))
    assert ("PUT", "/api/v1/submissions/1") in routes and len(routes) >= 15, routes
    adapter = app.url_map.bind("localhost")
    for method, url in routes:
        endpoint, _ = adapter.match(url, method)
        roles = allowed_roles(app.view_functions[endpoint], method) or ()
        caller = next(role for role in callers if role in roles)
        response = client.open(url, method=method, data="title=Zagora", headers=callers[caller],
                               content_type="text/plain")
        assert response.status_code == 415, (method, url, caller, response.json)
        assert response.content_type == "application/problem+json"


def test_json_within_the_limits_is_still_read(client, db):
    # Strings may hold brackets and long digit runs: only the structure is limited.
    response = client.post("/api/v1/enrollments", content_type="application/json",
                           data='{"join_code": "[[[[[[[[[[[[[[[[[[[[[[[[' + "9" * 300 + '\\""}')
    assert response.status_code in {404, 422}, response.get_data(as_text=True)


def test_authenticated_json_answers_are_never_stored(client, db):
    make_areas()
    coordinator = auth(make_user("coordinator", regions=["08"]))
    for url in ("/api/v1/me", "/api/v1/caravans", "/api/v1/summary?region=08",
                "/api/v1/caravans/999999"):
        response = client.get(url, headers=coordinator)
        assert response.headers.get("Cache-Control") == "no-store", url
    created = client.post("/api/v1/caravans", json=CARAVAN, headers=coordinator)
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    # A logged-in browser session too.
    make_user("admin", username="root", password="correct horse battery")
    db.session.commit()
    assert log_in(client, "root").status_code == 302
    assert client.get("/api/v1/me").headers["Cache-Control"] == "no-store"


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(app, client, db, monkeypatch):
    from fieldsvc.caravans.models import EnrollmentFailure

    monkeypatch.setitem(app.config, "TRUSTED_PROXIES", ["10.0.0.0/8", "127.0.0.1"])
    behind_proxy = {"REMOTE_ADDR": "127.0.0.1"}
    bad_code = {"join_code": "ZZZZ-ZZZZ", "display_name": "Dr Amina"}
    # Through the proxy (which appends the caller), with a forged first hop.
    client.post("/api/v1/enrollments", json=bad_code, environ_base=behind_proxy,
                headers={"X-Forwarded-For": "1.2.3.4, 196.200.1.7, 10.2.3.4"})
    # A caller reaching fieldsvc directly cannot pick the address it is counted under.
    client.post("/api/v1/enrollments", json=bad_code, environ_base={"REMOTE_ADDR": "41.248.3.9"},
                headers={"X-Forwarded-For": "196.200.1.99"})
    # Garbage in the header never becomes an address.
    client.post("/api/v1/enrollments", json=bad_code, environ_base=behind_proxy,
                headers={"X-Forwarded-For": "not-an-ip"})
    clients = db.session.scalars(
        select(EnrollmentFailure.client).order_by(EnrollmentFailure.id)).all()
    assert clients == ["196.200.1.7", "41.248.3.9", "127.0.0.1"]


def test_a_hotspot_behind_the_proxy_is_one_caller_and_others_are_not_held_up(app, client, db,
                                                                             monkeypatch):
    from fieldsvc.caravans.services import MAX_FAILED_ENROLLMENTS
    from tests.factories import make_caravan

    monkeypatch.setitem(app.config, "TRUSTED_PROXIES", ["127.0.0.1"])
    make_areas()
    make_caravan(join_code="K7QX4MZP")
    db.session.commit()

    def join(code: str, hotspot: str, name: str = "Dr Amina"):
        return client.post("/api/v1/enrollments", json={"join_code": code, "display_name": name},
                           environ_base={"REMOTE_ADDR": "127.0.0.1"},
                           headers={"X-Forwarded-For": hotspot, "X-Forwarded-Proto": "https"})

    # A team of twenty on one phone's hotspot joins within a minute, typos included.
    team = "105.66.12.7"
    assert join("K7QX-4MZB", team).status_code == 404
    assert join("K7QX-4MPZ", team).status_code == 404
    for number in range(20):
        response = join("K7QX-4MZP", team, f"Dr {number}")
        assert response.status_code == 201, (number, response.json)
    # A guesser behind the same proxy is throttled alone.
    for _ in range(MAX_FAILED_ENROLLMENTS):
        assert join("ZZZZ-ZZZZ", "160.177.4.4").status_code == 404
    assert join("K7QX-4MZP", "160.177.4.4").status_code == 429
    assert join("K7QX-4MZP", team, "Dr late").status_code == 201


def test_a_bad_trusted_proxies_setting_stops_the_start(tmp_path):
    from fieldsvc import create_app
    from fieldsvc.config import ConfigError

    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app({"SECRET_KEY": "test", "TRUSTED_PROXIES": ["10.0.0.0/40"],
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'unused.sqlite3'}"})
