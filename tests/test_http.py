"""What every route shares: JSON-only bodies, one page shape, compression of reads."""

from __future__ import annotations

import gzip

from tests.factories import auth, make_areas, make_user

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
