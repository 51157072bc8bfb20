"""The protected release: the three recorded attacks, the presence oracle, refresh, needs."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_tally, make_user, publish

K = 5


def _season(db):
    make_areas()
    zagora = make_caravan("08.587.01.13", first_day=dt.date(2026, 7, 3), sites=(),
                          organizers=("Wahat Al-Khair",))
    make_tally(zagora, day=dt.date(2026, 7, 3), specialty="GEN", lines=[
        ("consultations", "F", "25-49", None, 40), ("consultations", "M", "25-49", None, 35),
        ("consultations", "F", "50-64", None, 20), ("consultations", "M", "50-64", None, 18),
        ("consultations", "F", "15-24", None, 12), ("consultations", "M", "65+", None, 10),
        ("turned_away", "F", "25-49", None, 4)])
    make_tally(zagora, day=dt.date(2026, 7, 3), specialty="DEN", lines=[
        ("consultations", "M", "65+", None, 4), ("consultations", "F", "25-49", None, 12),
        ("consultations", "M", "25-49", None, 9), ("consultations", "F", "50-64", None, 7)])
    make_tally(zagora, day=dt.date(2026, 7, 4), specialty="OPH", lines=[
        ("consultations", "F", "50-64", None, 30), ("consultations", "M", "50-64", None, 25),
        ("consultations", "F", "65+", None, 22), ("consultations", "M", "65+", None, 19),
        ("turned_away", "F", "50-64", None, 9)])
    ouahat = make_caravan("07.351.02.07", first_day=dt.date(2026, 4, 10), sites=(),
                          organizers=("Wahat Al-Khair",))
    make_tally(ouahat, day=dt.date(2026, 4, 10), specialty="GYN", lines=[
        ("consultations", "F", "25-49", None, 25), ("turned_away", "F", "25-49", None, 4)])
    make_tally(ouahat, day=dt.date(2026, 4, 10), specialty="PED", lines=[
        ("consultations", "F", "0-4", None, 3), ("consultations", "M", "5-14", None, 20)])
    db.session.commit()
    publish(dt.date(2026, 11, 29))
    return zagora


def _cells(body):
    return {tuple((d, row[d]) for d in body["by"]): row["count"] for row in body["rows"]}


def test_public_all_time_and_one_quarter_hide_alike(app, client, db):
    """Attack 1: the all-time and a one-month public answer hid different complementary cells,
    so subtracting them gave turned_away, region 07, GYN = 4. Months are now refused, and every
    period is a table of one release protected together."""
    _season(db)
    month = client.get("/api/v1/public/summary?measure=turned_away&from=2026-04-01&to=2026-04-30")
    assert month.status_code == 422
    assert "quarter" in month.json["detail"]
    every = client.get("/api/v1/public/summary?measure=turned_away").json
    quarter = client.get(
        "/api/v1/public/summary?measure=turned_away&from=2026-04-01&to=2026-06-30").json
    assert every["release"]["version"] == quarter["release"]["version"]
    first, second = _cells(every), _cells(quarter)
    for key in set(first) & set(second):
        if first[key] is not None and second[key] is not None:
            assert not 1 <= first[key] - second[key] < K, key
    region_07_gyn = (("region", "07"), ("specialty", "GYN"))
    assert first.get(region_07_gyn) is None and second.get(region_07_gyn) is None


def test_planner_cannot_combine_age_band_tables(app, client, db):
    """Attack 2: by=age_band,year beside specialty,age_band,year and specialty,age_band,month
    gave dentistry, 65+, July 2026 = 4. Sex and age band are published together, by region, for a
    year or all time; months are refused."""
    _season(db)
    planner = auth(make_user("planner", organization="Autre association"))
    for query in ("by=age_band,year", "by=specialty,age_band,month&region=08",
                  "by=specialty,sex,age_band,year&region=08",
                  "by=province,specialty,sex,age_band&region=08"):
        response = client.get(f"/api/v1/summary?{query}", headers={**planner, "Accept-Language": "en"})
        assert response.status_code == 422, query
        assert "nearest table" in response.json["detail"] or "together" in response.json[
            "detail"], response.json
    body = client.get("/api/v1/summary?by=specialty,sex,age_band&region=08",
                      headers=planner).json
    dentistry_65 = [r for r in body["rows"] if (r["specialty"], r["sex"], r["age_band"]) == (
        "DEN", "M", "65+")]
    assert dentistry_65 and dentistry_65[0]["count"] is None


def test_needs_window_cannot_move_without_full_detail(app, client, db):
    """Attack 3: as_of and window_months chose any whole-month window, so two windows a month
    apart gave one month's consultations. The window is now the release's for everyone but an
    admin, and demand resting on a hidden cell is hidden."""
    _season(db)
    for header in (auth(make_user("planner", organization="Autre association")),
                   auth(make_user("coordinator", regions=["01"]))):
        for query in ("&as_of=2026-10-31", "&window_months=12"):
            response = client.get(f"/api/v1/needs?specialty=DEN{query}", headers=header)
            assert response.status_code == 422, query
        body = client.get("/api/v1/needs?specialty=DEN", headers=header).json
        assert body["release"]["window"] == {"from": "2025-01-01", "to": "2026-12-31"}
        assert (body["from"], body["to"]) == ("2025-01-01", "2026-11-29")
        zagora = {r["code"]: r for r in body["rows"]}["08.587.01.13"]
        summary = client.get("/api/v1/summary?by=commune&specialty=DEN&from=2025-01-01"
                             "&to=2026-12-31", headers=header).json
        cell = {r["commune"]: r["count"] for r in summary["rows"]}["08.587.01.13"]
        if cell is None:
            assert zagora["components"]["demand"]["value"] is None
            assert zagora["components"]["demand"]["percentile"] is None
    admin = auth(make_user("admin"))
    moved = client.get("/api/v1/needs?specialty=DEN&as_of=2026-10-31&window_months=12",
                       headers=admin)
    assert moved.status_code == 200 and moved.json["to"] == "2026-10-31"


def test_no_presence_oracle_on_another_organizations_commune(app, client, db):
    """Attack 4: a day-level query on another organization's commune answered 422 or 200
    depending on whether a hidden line existed. Now the answer depends on the query alone."""
    _season(db)
    planner = auth(make_user("planner", organization="Autre association"))
    answers = set()
    for commune in ("08.587.01.13", "08.587.09.23", "01.511.01.01"):
        response = client.get(f"/api/v1/summary?by=day&commune={commune}", headers=planner)
        answers.add((response.status_code, response.json["title"]))
        same = client.get(f"/api/v1/summary?by=specialty&province={commune[:6]}",
                          headers=planner)
        assert same.status_code == 200
        assert same.json["full_detail"] is False
    assert len(answers) == 1 and answers.pop()[0] == 422


def test_release_refreshes_after_a_new_submission(app, client, db):
    zagora = _season(db)
    planner = auth(make_user("planner", organization="Autre association"))
    before = client.get("/api/v1/summary?by=region,specialty", headers=planner).json
    today = dt.date.today()
    zagora.first_day = today
    zagora.last_day = today
    _, volunteer = make_enrollment(zagora)
    db.session.commit()
    tally = {"id": str(uuid.uuid4()), "caravan_id": zagora.id, "day": today.isoformat(),
             "specialty": "GEN",
             "lines": [{"measure": "consultations", "sex": "M", "age_band": "25-49",
                        "count": 50}]}
    assert client.post("/api/v1/submissions", json=tally, headers=volunteer).status_code == 201
    still = client.get("/api/v1/summary?by=region,specialty", headers=planner).json
    assert still["release"] == before["release"]  # nothing rebuilt on the request path

    from fieldsvc.insights.release import refresh

    assert refresh() is not None
    assert refresh() is None  # nothing new: no new version
    after = client.get("/api/v1/summary?by=region,specialty", headers=planner).json
    assert after["release"]["version"] > before["release"]["version"]
    regions = client.get("/api/v1/summary?by=region", headers=planner).json
    assert {r["region"]: r["count"] for r in regions["rows"]}["08"] == 135 + 32 + 96 + 50


def test_full_detail_stays_exact_and_flexible(app, client, db):
    _season(db)
    coordinator = auth(make_user("coordinator", regions=["08"]))
    body = client.get("/api/v1/summary?by=day,specialty&region=08&from=2026-07-03"
                      "&to=2026-07-03", headers=coordinator).json
    assert body["full_detail"] is True and "release" not in body
    assert {(r["day"], r["specialty"]): r["count"] for r in body["rows"]} == {
        ("2026-07-03", "DEN"): 32, ("2026-07-03", "GEN"): 135}
    outside = client.get("/api/v1/summary?by=region,specialty&region=07",
                         headers=coordinator).json
    assert outside["full_detail"] is False and outside["release"]["version"] >= 1


def test_a_planner_still_learns_which_specialties_a_region_needed_by_quarter(app, client, db):
    _season(db)
    planner = auth(make_user("planner", organization="Autre association"))
    body = client.get("/api/v1/summary?by=specialty,quarter&region=08", headers=planner).json
    shown = {(r["specialty"], r["quarter"]): r["count"] for r in body["rows"]}
    assert shown[("GEN", "2026-Q3")] == 135 and shown[("OPH", "2026-Q3")] == 96
    assert body["release"]["table"] == "region.specialty.quarter"
