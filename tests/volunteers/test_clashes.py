"""Clash warnings: caravans within 30 km and 14 days of each other are told so, at the boundary."""

from __future__ import annotations

import datetime as dt

from geopy.distance import geodesic

from tests.factories import auth, make_areas, make_caravan, make_user

ZAGORA = (30.33, -5.84)
# The existing caravan: two days, two months from now (notifications list only caravans to come).
FIRST = dt.date.today() + dt.timedelta(days=60)
LAST = FIRST + dt.timedelta(days=1)


def _day(offset: int) -> str:
    """A day counted from the existing caravan's last day."""
    return (LAST + dt.timedelta(days=offset)).isoformat()


def _north(km: float) -> str:
    point = geodesic(kilometers=km).destination(ZAGORA, 0)
    return f"{point.latitude:.6f}, {point.longitude:.6f}"


def _body(location: str, first: str, last: str) -> dict:
    return {"title": "Caravane de Tamegroute", "commune": "08.587.01.13",
            "sites": [{"name": "Dispensaire", "location": location}],
            "first_day": first, "last_day": last, "specialties": ["OPH"]}


def _setup(db):
    make_areas()
    existing = make_caravan(title="Caravane médicale de Zagora", status="planned",
                            first_day=FIRST, last_day=LAST,
                            organizers=("Wahat Al-Khair",))
    user = make_user("coordinator", regions=["08"], organization="Tafilalet Santé")
    db.session.commit()
    return existing, {**auth(user), "Accept-Language": "en"}


def test_clash_at_the_day_boundary_and_not_one_day_beyond(app, client, db):
    existing, headers = _setup(db)
    at = client.post("/api/v1/caravans", json=_body(_north(10), _day(14), _day(15)),
                     headers=headers)
    assert at.status_code == 201, at.json
    [clash] = at.json["clashes"]
    assert clash["caravan"]["id"] == existing.id and clash["days_apart"] == 14
    assert clash["km"] == 10.0
    assert any(f"Caravan {existing.id}" in w and "14" in w for w in at.json["warnings"])
    beyond = client.post("/api/v1/caravans", json=_body(_north(10), _day(15), _day(16)),
                         headers=headers)
    assert beyond.status_code == 201
    assert all(c["caravan"]["id"] != existing.id for c in beyond.json["clashes"])
    before = client.post("/api/v1/caravans", json=_body(_north(10), _day(-16), _day(-15)),
                         headers=headers)
    assert [c["days_apart"] for c in before.json["clashes"]] == [14]


def test_clash_at_the_distance_boundary_and_not_beyond(app, client, db):
    existing, headers = _setup(db)
    near = client.post("/api/v1/caravans", json=_body(_north(29.9), _day(0), _day(1)),
                       headers=headers)
    assert [(c["caravan"]["id"], c["days_apart"]) for c in near.json["clashes"]] == [
        (existing.id, 0)]
    assert "same days" in near.json["warnings"][-1]
    far = client.post("/api/v1/caravans", json=_body(_north(30.1), _day(0), _day(1)),
                      headers=headers)
    assert [c["caravan"]["id"] for c in far.json["clashes"]] == [near.json["id"]]


def test_moving_a_caravan_warns_and_both_pages_and_organizers_see_it(app, client, db):
    existing, headers = _setup(db)
    created = client.post("/api/v1/caravans", json=_body(_north(10), _day(40), _day(41)),
                          headers=headers)
    assert created.json["clashes"] == []
    moved = client.patch(f"/api/v1/caravans/{created.json['id']}",
                         json={"first_day": _day(3), "last_day": _day(4)},
                         headers=headers)
    assert moved.status_code == 200
    assert [c["caravan"]["id"] for c in moved.json["clashes"]] == [existing.id]
    other = client.get(f"/api/v1/caravans/{existing.id}", headers=headers).json
    assert [c["caravan"]["id"] for c in other["clashes"]] == [created.json["id"]]
    assert any(f"Caravan {created.json['id']}" in w for w in other["warnings"])

    # Each organizer's notification list names the clash from its own side.
    planner = make_user("planner", organization="Wahat Al-Khair")
    outsider = make_user("planner", organization="Another association")
    db.session.commit()
    seen = client.get("/api/v1/notifications", headers=auth(planner)).json["items"]
    assert [(n["about"]["id"], n["caravan"]["id"]) for n in seen] == [
        (existing.id, created.json["id"])]
    assert client.get("/api/v1/notifications", headers=auth(outsider)).json["items"] == []
    mine = client.get("/api/v1/notifications", headers=headers).json["items"]
    assert {(n["about"]["id"], n["caravan"]["id"]) for n in mine} == {
        (existing.id, created.json["id"]), (created.json["id"], existing.id)}
