"""Plans: within the radius, each place once, and 2-opt never lengthens the route."""

from __future__ import annotations

import datetime as dt
import math

from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.insights.plans import nearest_neighbour, tour_length, two_opt
from tests.factories import auth, make_areas, make_caravan, make_tally, make_user

ZAGORA = (30.33, -5.84)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=0, max_size=12))
def test_two_opt_never_lengthens_and_visits_each_stop_once(points):
    everything = [(0.0, 0.0), *points]

    def distance(i, j):
        (x1, y1), (x2, y2) = everything[i], everything[j]
        return math.hypot(x1 - x2, y1 - y2)

    greedy = nearest_neighbour(len(points), distance)
    improved = two_opt(list(greedy), distance)
    assert sorted(greedy) == sorted(improved) == list(range(1, len(points) + 1))
    assert tour_length(improved, distance) <= tour_length(greedy, distance) + 1e-9


def _plan(client, header, **body):
    payload = {"base": "08.587.01.13", "radius_km": 150, "days": 3,
               "team": {"OPH": 2, "GEN": 2, "PED": 1}, **body}
    return client.post("/api/v1/plans", json=payload, headers=header)


def test_plan_from_zagora_stays_within_radius(client, db):
    make_areas()
    caravan = make_caravan("08.587.09.23", first_day=dt.date(2026, 10, 3), sites=())
    make_tally(caravan, day=dt.date(2026, 10, 3), specialty="OPH",
               lines=[("consultations", "F", "65+", None, 120),
                      ("turned_away", "F", "65+", None, 30)])
    planner = make_user("planner", organization="Union")
    header = auth(planner)
    response = _plan(client, header)
    assert response.status_code == 200, response.json
    plan = response.json
    codes = [stop["code"] for stop in plan["stops"]]
    assert len(codes) == len(set(codes)) and codes
    assert "01.511.01.01" not in codes and "07.351.02.07" not in codes  # far away
    for stop in plan["stops"]:
        assert geodesic(ZAGORA, (stop["lat"], stop["lon"])).km <= 150
        assert 1 <= stop["day"] <= 3
    legs = sum(s["km_from_previous"] for s in plan["stops"])
    back = geodesic((plan["stops"][-1]["lat"], plan["stops"][-1]["lon"]), ZAGORA).km
    assert abs(plan["total_km"] - (legs + back)) < 1.0
    assert plan["total_km"] <= plan["nearest_neighbour_km"] + 1e-6
    assert set(plan["specialties"]) >= {"OPH", "GEN", "PED"}
    for code, item in plan["specialties"].items():
        assert item["advice"] in {"add", "drop", "keep"}
        if code == "OPH":
            assert item["capacity"] == 2 * 3 * 40
    narrow = _plan(client, header, radius_km=60).json
    assert {s["code"] for s in narrow["stops"]} <= {"08.587.01.13", "08.587.09.23"}


def test_plan_as_geojson(client, db):
    make_areas()
    admin = make_user("admin")
    response = _plan(client, {**auth(admin), "Accept": "application/geo+json"},
                     base="30.33, -5.84", radius_km=200)
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    collection = response.json
    assert collection["type"] == "FeatureCollection"
    roles = [f["properties"]["role"] for f in collection["features"]]
    assert roles[0] == "base" and roles[-1] == "route" and "stop" in roles


def test_plan_refuses_a_base_outside_morocco(client, db):
    admin = make_user("admin")
    response = _plan(client, auth(admin), base="50 24 N, 24 0 W")
    assert response.status_code == 422
    assert "base" in response.json["errors"]


def test_plan_base_in_dms_is_read_as_a_site_is(client, db):
    """A base written 30 19 48 N, 5 50 24 W was refused as 50°N 24°W; sites read it right."""
    admin = make_user("admin")
    response = _plan(client, auth(admin), base="30 19 48 N, 5 50 24 W")
    assert response.status_code == 200, response.json
    assert (response.json["base"]["lat"], response.json["base"]["lon"]) == (30.33, -5.84)


def test_plans_are_bounded(client, db):
    make_areas()
    header = auth(make_user("planner", organization="Union"))
    too_big = {"radius_km": 301, "days": 11, "stops_per_day": 5,
               "team": {code: 1 for code in ("GEN", "PED", "GYN", "OPH", "DEN", "CAR", "DER",
                                             "ENT", "END", "PSY", "RHU")}}
    for field, value in too_big.items():
        response = _plan(client, header, **{field: value})
        assert response.status_code == 422, (field, response.json)
        assert field in response.json["errors"], response.json
    assert _plan(client, header, team={}).status_code == 422
    assert _plan(client, header, radius_km=300, days=10, stops_per_day=4).status_code == 200


def test_plans_are_throttled_per_caller(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "PLAN_MAX_PER_MINUTE", 2)
    make_areas()
    planner = auth(make_user("planner", organization="Union"))
    coordinator = auth(make_user("coordinator", regions=["08"]))
    assert [_plan(client, planner, days=1).status_code for _ in range(2)] == [200, 200]
    refused = _plan(client, planner, days=1)
    assert refused.status_code == 429 and refused.content_type == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another caller is not held up, nor is anything else the planner does.
    assert _plan(client, coordinator, days=1).status_code == 200
    assert client.get("/api/v1/catalog", headers=planner).status_code == 200


def test_busy_plan_slots_answer_503_and_never_hold_up_the_health_check(app, client, db,
                                                                        monkeypatch):
    monkeypatch.setitem(app.config, "PLAN_WAIT_SECONDS", 0.05)
    make_areas()
    header = auth(make_user("planner", organization="Union"))
    assert _plan(client, header, days=1).status_code == 200  # makes this process's gate
    gate = app.extensions["fieldsvc_plan_slots"]
    taken = 0
    while gate.acquire(blocking=False):  # every slot busy with another plan
        taken += 1
    try:
        assert taken == app.config["PLAN_CONCURRENCY"]
        busy = _plan(client, header, days=1)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
        assert client.get("/healthz").status_code == 200
    finally:
        for _ in range(taken):
            gate.release()
    assert _plan(client, header, days=1).status_code == 200


def test_ophthalmology_only_team_from_zagora_by_name(client, db):
    """A team of ophthalmologists planned from 'Zagora' keeps ophthalmology, with its numbers."""
    make_areas()
    caravan = make_caravan("08.587.09.23", first_day=dt.date(2026, 10, 3), sites=())
    make_tally(caravan, day=dt.date(2026, 10, 3), specialty="OPH", status="approved",
               lines=[("consultations", "F", "65+", None, 120)])
    planner = make_user("planner", organization="Union")
    header = auth(planner)
    for doctors in (1, 2, 3):
        response = _plan(client, header, base="Zagora", team={"OPH": doctors}, days=3)
        assert response.status_code == 200, response.json
        plan = response.json
        assert plan["base"]["code"] == "08.587.01.13"
        oph = plan["specialties"]["OPH"]
        assert oph["expected_patients"] > 0
        assert oph["advice"] != "drop"
        assert str(oph["expected_patients"]) in oph["reason"]
        assert str(oph["capacity"]) in oph["reason"]
        for stop in plan["stops"]:
            assert set(stop["expected_patients"]) == {"OPH"}
        if oph["expected_patients"] < oph["capacity"] * 0.5 and oph["suggested_doctors"] < doctors:
            assert oph["advice"] == "reduce"
    french = client.post("/api/v1/plans?lang=fr", headers=header, json={
        "base": "zagora", "radius_km": 150, "days": 3, "team": {"OPH": 1}}).json
    assert french["specialties"]["OPH"]["advice_label"] in {"Ajouter des médecins", "Garder",
                                                            "Moins de médecins"}


def test_an_overstaffed_team_is_told_how_many_doctors_would_do(client, db):
    make_areas()
    caravan = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), sites=())
    make_tally(caravan, day=dt.date(2026, 10, 3), specialty="OPH", status="approved",
               lines=[("consultations", "F", "65+", None, 120)])
    admin = make_user("admin")
    plan = _plan(client, auth(admin), team={"OPH": 40, "GEN": 1}).json
    oph = plan["specialties"]["OPH"]
    assert oph["advice"] == "reduce" and 1 <= oph["suggested_doctors"] < 40


def test_an_ambiguous_or_unknown_base_name_is_refused_with_choices(client, db):
    from fieldsvc.areas.models import Area
    from fieldsvc.areas.text import search_key

    make_areas()
    db.session.add(Area(code="08.577.05.05", level="commune", parent_code="08.577",
                        region_code="08", province_code="08.577", name_fr="Zagora",
                        name_ar="زاكورة", search_text=search_key("Zagora", "زاكورة"),
                        population_legal=100, lat=31.4, lon=-5.5))
    admin = make_user("admin")
    response = _plan(client, auth(admin), base="Zagora")
    assert response.status_code == 422
    assert "08.577.05.05" in response.json["detail"] and "08.587.01.13" in response.json["detail"]
    assert _plan(client, auth(admin), base="Nowhere-sur-Mer").status_code == 422


def test_stops_are_chosen_by_patients_reached_per_kilometre(client, db):
    """A 305-person commune far away with a higher score loses to a large one at the base."""
    from fieldsvc.areas.models import Area, Facility, FacilityDistance
    from fieldsvc.areas.text import search_key

    make_areas()
    db.session.add(Area(code="08.587.09.99", level="commune", parent_code="08.587",
                        region_code="08", province_code="08.587", name_fr="Lamssid",
                        name_ar="لمسيد", search_text=search_key("Lamssid", "لمسيد"),
                        population_legal=305, lat=29.7, lon=-5.3))
    db.session.flush()
    facility = Facility(name="Hôpital provincial", category="HP", commune_code="08.587.01.13")
    db.session.add(facility)
    db.session.flush()
    for code, distance in (("08.587.09.99", 190.0), ("08.587.01.13", 1.0),
                           ("08.587.09.23", 95.0)):
        db.session.add(FacilityDistance(commune_code=code, specialty_code="OPH",
                                        facility_id=facility.id, km=distance))
    admin = make_user("admin")
    plan = _plan(client, auth(admin), team={"OPH": 1}, days=1, radius_km=150).json
    assert [stop["code"] for stop in plan["stops"]] == ["08.587.01.13"]
    assert plan["stops"][0]["patients_reached"] > 0
