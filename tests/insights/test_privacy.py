"""A planner (or anyone without full detail) never receives an unsuppressed small count."""

from __future__ import annotations

import datetime as dt

from tests.factories import auth, make_areas, make_caravan, make_tally, make_user

K = 5


def _season(db):
    """Small and large cells in two regions, two organizations."""
    make_areas()
    zagora = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), sites=(),
                          organizers=("Wahat Al-Khair",))
    tinghir = make_caravan("08.577.01.11", first_day=dt.date(2026, 10, 10), sites=(),
                           organizers=("Union",))
    ouahat = make_caravan("07.351.02.07", first_day=dt.date(2026, 11, 7), sites=(),
                          organizers=("Union",))
    make_tally(zagora, day=dt.date(2026, 10, 3), specialty="OPH", lines=[
        ("consultations", "F", "50-64", None, 3), ("consultations", "M", "65+", None, 40),
        ("turned_away", "F", "50-64", None, 2), ("referrals", "M", "65+", None, 1)])
    make_tally(zagora, day=dt.date(2026, 10, 4), specialty="GEN", lines=[
        ("consultations", "F", "25-49", None, 55), ("consultations", "M", "0-4", None, 2)])
    make_tally(tinghir, day=dt.date(2026, 10, 10), specialty="OPH", lines=[
        ("consultations", "F", "50-64", None, 1), ("consultations", "M", "50-64", None, 4)])
    make_tally(tinghir, day=dt.date(2026, 10, 11), specialty="PED", lines=[
        ("consultations", "F", "0-4", None, 30), ("turned_away", "F", "0-4", None, 3)])
    make_tally(ouahat, day=dt.date(2026, 11, 7), specialty="GEN", lines=[
        ("consultations", "M", "65+", None, 2), ("consultations", "F", "65+", None, 90)])
    db.session.commit()
    return zagora, tinghir, ouahat


def _small(value):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < K


def _walk_counts(body):
    """Every number a summary response shows as a count or total."""
    yield body.get("total")
    for row in body.get("rows", []):
        yield row.get("count")


SUMMARY_QUERIES = [
    "by=province,specialty", "by=region,specialty", "by=commune,specialty,sex",
    "by=specialty,sex,age_band", "by=commune,month", "by=measure,specialty",
    "by=specialty&measure=turned_away", "by=quarter,region", "by=year", "",
    "by=commune&region=08", "by=sex&specialty=OPH", "by=commune,measure&region=07",
    "by=age_band&from=2026-10-03&to=2026-10-03",
]


def test_planner_summary_shows_no_small_count(client, db):
    _season(db)
    planner = make_user("planner", organization="Autre association")
    header = auth(planner)
    for query in SUMMARY_QUERIES:
        response = client.get(f"/api/v1/summary?{query}", headers=header)
        if response.status_code == 422:
            continue  # not a table of the release: refused, whatever the data
        assert response.status_code == 200, (query, response.json)
        body = response.json
        assert body["full_detail"] is False
        for value in _walk_counts(body):
            assert not _small(value), (query, body)
    public = client.get("/api/v1/public/summary")
    assert public.status_code == 200
    assert not any(_small(v) for v in _walk_counts(public.json))
    unmet = client.get("/api/v1/public/summary?measure=turned_away").json
    assert not any(_small(v) for v in _walk_counts(unmet))
    assert any(row.get("suppressed") == "primary" for row in unmet["rows"])


def test_suppressed_cells_are_marked(client, db):
    _season(db)
    planner = make_user("planner", organization="Autre association")
    body = client.get("/api/v1/summary?by=specialty,sex,age_band&region=08",
                      headers=auth(planner)).json
    statuses = {row.get("suppressed") for row in body["rows"]}
    assert "primary" in statuses
    for row in body["rows"]:
        if row.get("suppressed"):
            assert row["count"] is None


def test_too_fine_for_a_planner_is_a_422(client, db):
    zagora, _, _ = _season(db)
    header = auth(make_user("planner", organization="Autre association"))
    for query in ("by=day", "by=week", "by=site", "by=caravan", "by=organization",
                  f"by=specialty&caravan={zagora.id}", "by=province,specialty,sex,age_band",
                  f"by=specialty&organization={zagora.organizers[0].id}"):
        response = client.get(f"/api/v1/summary?{query}", headers=header)
        assert response.status_code == 422, query
        assert response.json["errors"]
    one_day = client.get("/api/v1/summary?by=specialty&region=08&from=2026-10-04&to=2026-10-04",
                         headers=header)
    assert one_day.status_code == 422 and "quarter" in one_day.json["detail"]


def test_full_detail_for_own_caravans_and_coordinators_in_scope(client, db):
    zagora, _, _ = _season(db)
    organization_id = zagora.organizers[0].id
    planner = make_user("planner", organization="Wahat Al-Khair")
    body = client.get(f"/api/v1/summary?by=day,specialty,sex&organization={organization_id}",
                      headers=auth(planner)).json
    assert body["full_detail"] is True
    assert body["total"] == 3 + 40 + 55 + 2
    coordinator = make_user("coordinator", regions=["08"])
    inside = client.get("/api/v1/summary?by=province,specialty&region=08",
                        headers=auth(coordinator)).json
    assert inside["full_detail"] is True
    assert {(r["province"], r["specialty"]): r["count"] for r in inside["rows"]} == {
        ("08.587", "OPH"): 43, ("08.587", "GEN"): 57, ("08.577", "OPH"): 5,
        ("08.577", "PED"): 30}
    outside = client.get("/api/v1/summary?by=province,specialty&region=07",
                         headers=auth(coordinator)).json
    assert outside["full_detail"] is False
    assert not any(_small(v) for v in _walk_counts(outside))


def test_planner_needs_and_plans_show_no_small_count(client, db):
    _season(db)
    planner = make_user("planner", organization="Autre association")
    header = auth(planner)
    response = client.get("/api/v1/needs?specialty=OPH", headers=header)
    assert response.status_code == 200
    rows = {row["code"]: row for row in response.json["rows"]}
    # Tinghir's OPH: 5 consultations (shown) but 0 turned away + 0 referrals (zero is real);
    # Zagora's unmet rests on 3 people: hidden.
    zagora = rows["08.587.01.13"]["components"]
    assert zagora["unmet"] == {"value": None, "percentile": None, "suppressed": "primary",
                               "estimated": False}
    coordinator = make_user("coordinator", regions=["08"])
    full = client.get("/api/v1/needs?specialty=OPH",
                      headers=auth(coordinator)).json
    assert {r["code"]: r for r in full["rows"]}["08.587.01.13"]["components"]["unmet"][
        "value"] == round(3 / 45, 4)
    ped = client.get("/api/v1/needs?specialty=PED", headers=header).json
    tinghir = {r["code"]: r for r in ped["rows"]}["08.577.01.11"]["components"]
    assert tinghir["unmet"]["value"] is None  # 3 turned away
    plan = client.post("/api/v1/plans", headers=header, json={
        "base": "08.587.01.13", "radius_km": 150, "days": 2, "team": {"OPH": 1, "PED": 1}})
    assert plan.status_code == 200
    # A plan shows model estimates only, never an observed count.
    for item in plan.json["specialties"].values():
        assert set(item) == {"doctors", "expected_patients", "capacity", "advice",
                             "suggested_doctors", "advice_label", "reason"}
    assert "count" not in str(plan.json)


def test_full_detail_when_everything_counted_is_in_scope(client, db):
    _season(db)
    coordinator = make_user("coordinator", regions=["08", "07"])
    body = client.get("/api/v1/summary?by=province,specialty&region=08,07",
                      headers=auth(coordinator)).json
    assert body["full_detail"] is True
    assert body["total"] == 3 + 40 + 55 + 2 + 1 + 4 + 30 + 2 + 90
    # Without a filter the answer is the release's, whatever the lines: no presence oracle.
    unfiltered = client.get("/api/v1/summary?by=province,specialty", headers=auth(coordinator))
    assert unfiltered.json["full_detail"] is False
    narrow = make_user("coordinator", regions=["08"])
    body = client.get("/api/v1/summary?by=province,specialty", headers=auth(narrow)).json
    assert body["full_detail"] is False
    assert not any(_small(v) for v in _walk_counts(body))
    body = client.get("/api/v1/summary?by=province,specialty&specialty=PED&region=08",
                      headers=auth(narrow)).json
    assert body["full_detail"] is True, body


def test_no_group_by_gives_a_planner_a_small_count(client, db):
    """Every allowed group-by of up to three dimensions, each checked against the total too."""
    import itertools

    _season(db)
    header = auth(make_user("planner", organization="Autre association"))
    allowed = ["region", "province", "commune", "specialty", "measure", "sex", "age_band",
               "condition", "month", "quarter", "year"]
    combinations = [c for size in (1, 2, 3) for c in itertools.combinations(allowed, size)]
    for combination in combinations[::3] + [("commune", "specialty", "sex")]:
        response = client.get(f"/api/v1/summary?by={','.join(combination)}", headers=header)
        if response.status_code == 422:
            continue
        body = response.json
        assert body["full_detail"] is False
        for value in _walk_counts(body):
            assert not _small(value), (combination, body)
        hidden = [r for r in body["rows"] if r["count"] is None]
        if hidden and body["total"] is not None:
            published = sum(r["count"] for r in body["rows"] if r["count"] is not None)
            assert len(hidden) >= 2 and body["total"] - published >= K, (combination, body)
