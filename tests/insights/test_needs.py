"""Need scores: constructed cases whose answer is known, and the exact rules of the need score."""

from __future__ import annotations

import datetime as dt

import pytest

from fieldsvc.areas.models import Area, AreaIndicator, Facility, FacilityDistance
from fieldsvc.errors import ValidationFailed
from fieldsvc.insights.needs import _drivers, need_rows, parse_weights, percent_ranks
from fieldsvc.security import Principal  # noqa: E402
from tests.factories import auth, make_areas, make_caravan, make_tally, make_user

ADMIN = Principal(role="admin")
AS_OF = dt.date(2026, 12, 15)


def _rows(body):
    return {row["code"]: row for row in body["rows"]}


def test_percent_rank_ties_take_their_mean_rank():
    assert percent_ranks([10, 20, 20, 30]) == [0.0, 0.5, 0.5, 1.0]
    assert percent_ranks([5, 5, 5]) == [0.5, 0.5, 0.5]
    assert percent_ranks([7]) == [0.0]


def test_weights_are_normalised_and_checked():
    weights = parse_weights("demand:1,unmet:2,access:1,recency:0,vulnerability:0")
    assert weights == {"demand": 0.25, "unmet": 0.5, "access": 0.25, "recency": 0.0,
                       "vulnerability": 0.0}
    with pytest.raises(ValidationFailed):
        parse_weights("happiness:3")
    with pytest.raises(ValidationFailed):
        parse_weights("demand:0,unmet:0,access:0,recency:0,vulnerability:0")


def test_drivers_break_ties_in_the_documented_order():
    weights = dict.fromkeys(("demand", "unmet", "access", "recency", "vulnerability"), 0.2)
    percentiles = {"demand": 0.5, "unmet": 0.9, "access": 0.9, "recency": 0.9, "vulnerability": 0.1}
    assert _drivers(weights, percentiles) == ["unmet", "access"]


def _distance(code, km, specialty="OPH"):
    from fieldsvc.extensions import db

    facility = db.session.query(Facility).first()
    if facility is None:
        facility = Facility(name="Hôpital provincial", category="HP", commune_code="08.577.01.11")
        db.session.add(facility)
        db.session.flush()
    db.session.add(FacilityDistance(commune_code=code, specialty_code=specialty,
                                    facility_id=facility.id, km=km))


def test_farther_from_a_hospital_ranks_higher(app, db):
    make_areas()
    _distance("08.587.01.13", 12.0)
    _distance("08.587.09.23", 95.0)
    db.session.commit()
    rows = _rows(need_rows("OPH", as_of=AS_OF, principal=ADMIN))
    far, near = rows["08.587.09.23"], rows["08.587.01.13"]
    assert far["components"]["access"]["value"] == 95.0
    assert far["components"]["access"]["percentile"] > near["components"]["access"]["percentile"]
    assert far["score"] > near["score"] and far["rank"] < near["rank"]
    assert "access" in far["drivers"]


def test_more_turned_away_ranks_higher(app, db):
    areas = make_areas()
    for code in ("08.587.01.13", "08.577.01.11"):
        areas[code].population_legal = 20000
    for code, turned in (("08.587.01.13", 60), ("08.577.01.11", 5)):
        caravan = make_caravan(code, first_day=dt.date(2026, 10, 3), specialties=("OPH",),
                               sites=())
        make_tally(caravan, day=dt.date(2026, 10, 3), specialty="OPH", status="approved", lines=[
            ("consultations", "F", "50-64", None, 150), ("turned_away", "F", "50-64", None, turned),
        ])
    admin = make_user("admin")
    db.session.commit()
    response = app.test_client().get(
        f"/api/v1/needs?level=commune&specialty=OPH&as_of={AS_OF}", headers=auth(admin))
    assert response.status_code == 200, response.json
    rows = _rows(response.json)
    more, fewer = rows["08.587.01.13"], rows["08.577.01.11"]
    assert more["components"]["unmet"]["value"] == round(60 / 210, 4)
    assert more["components"]["unmet"]["percentile"] > fewer["components"]["unmet"]["percentile"]
    assert more["score"] > fewer["score"]
    assert not more["components"]["unmet"]["estimated"]
    # The caravan's last day (4 October) was 72 days before as_of; demand = 150 consultations
    # / 1 caravan-day / 20 thousand people (no census bands: the legal population).
    assert more["components"]["recency"]["value"] == 72
    assert more["components"]["demand"]["value"] == 7.5


def test_never_visited_vulnerable_commune_is_estimated(app, db):
    make_areas()
    caravan = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), specialties=("OPH",))
    make_tally(caravan, day=dt.date(2026, 10, 3), specialty="OPH",
               lines=[("consultations", "M", "65+", None, 80)])
    for code, road, water in (("08.587.09.23", 40.0, 70.0), ("08.587.01.13", 2.0, 5.0),
                              ("07.351.02.07", 1.0, 3.0)):
        db.session.add(AreaIndicator(area_code=code, indicator="distance_paved_road_km",
                                     value=road))
        db.session.add(AreaIndicator(area_code=code, indicator="no_running_water_pct",
                                     value=water))
    db.session.commit()
    body = need_rows("OPH", as_of=AS_OF, principal=ADMIN)
    row = _rows(body)["08.587.09.23"]
    assert row["estimated"] is True
    assert row["components"]["demand"]["estimated"] is True
    # Estimated from its province: Zagora's demand is the only one in 08.587.
    assert row["components"]["demand"]["value"] == _rows(body)["08.587.01.13"]["components"][
        "demand"]["value"]
    assert row["components"]["recency"]["value"] == body["window_days"] + 1
    assert row["components"]["vulnerability"]["percentile"] == 1.0
    assert row["rank"] == 1


def test_province_and_region_are_population_weighted(app, db):
    make_areas()
    _distance("08.587.01.13", 10.0)
    _distance("08.587.09.23", 100.0)
    db.session.commit()
    communes = _rows(need_rows("OPH", as_of=AS_OF, principal=ADMIN))
    provinces = _rows(need_rows("OPH", level="province", as_of=AS_OF, principal=ADMIN))
    zagora, mhamid = communes["08.587.01.13"], communes["08.587.09.23"]
    expected = (zagora["score"] * 40069 + mhamid["score"] * 9456) / (40069 + 9456)
    assert provinces["08.587"]["score"] == pytest.approx(expected, abs=1e-3)
    assert provinces["08.587"]["components"]["access"]["value"] == pytest.approx(
        (10 * 40069 + 100 * 9456) / 49525, abs=1e-3)
    regions = need_rows("OPH", level="region", as_of=AS_OF, principal=ADMIN)
    assert {r["code"] for r in regions["rows"]} == {"01", "07", "08"}


def test_needs_route_checks_its_parameters(client, db):
    planner = make_user("planner", organization="Wahat Al-Khair")
    db.session.commit()
    assert client.get("/api/v1/needs?specialty=XYZ", headers=auth(planner)).status_code == 422
    assert client.get("/api/v1/needs?specialty=OPH&weights=demand:x",
                      headers=auth(planner)).status_code == 422
    assert client.get("/api/v1/needs?specialty=OPH&level=douar",
                      headers=auth(planner)).status_code == 422
    assert client.get("/api/v1/needs?specialty=OPH").status_code == 401
    assert db.session.get(Area, "08") is None


def _population(code, bands):
    from fieldsvc.areas.models import AreaPopulation
    from fieldsvc.extensions import db

    for (sex, band), people in bands.items():
        db.session.add(AreaPopulation(area_code=code, sex=sex, age_band=band, people=people))


def test_rows_name_their_province_and_region_and_rank_within_the_filter(client, db):
    make_areas()
    admin = make_user("admin")
    db.session.commit()
    body = client.get(f"/api/v1/needs?specialty=OPH&region=08&as_of={AS_OF}",
                      headers=auth(admin)).json
    assert [row["rank"] for row in body["rows"]] == list(range(1, len(body["rows"]) + 1))
    assert {row["region"] for row in body["rows"]} == {"08"}
    assert body["national_row_count"] == 5 and body["row_count"] == 3
    mhamid = _rows(body)["08.587.09.23"]
    assert (mhamid["province_name_fr"], mhamid["region_name_fr"]) == ("Zagora", "Drâa-Tafilalet")
    assert mhamid["national_rank"] >= mhamid["rank"]
    assert body["components"]["access"]["unit"].startswith("km")
    provinces = client.get(f"/api/v1/needs?specialty=OPH&level=province&as_of={AS_OF}",
                           headers=auth(admin)).json
    assert _rows(provinces)["08.587"]["region_name_ar"] == "درعة تافيلالت"


def test_labels_and_reasons_come_in_the_callers_language(client, db):
    make_areas()
    admin = make_user("admin")
    db.session.commit()
    english = client.get(f"/api/v1/needs?specialty=OPH&as_of={AS_OF}&lang=en",
                         headers=auth(admin)).json
    arabic = client.get(f"/api/v1/needs?specialty=OPH&as_of={AS_OF}&lang=ar",
                        headers=auth(admin)).json
    assert english["components"]["demand"]["label"] == "Demand"
    assert english["components"]["demand"]["unit"] == (
        "consultations per caravan-day per 1,000 people aged 50 and over")
    assert arabic["components"]["demand"]["label"] != "Demand"
    assert arabic["rows"][0]["name"] == arabic["rows"][0]["name_ar"]
    # Nothing was ever observed and no facility imported: every estimate says why, in words.
    demand = english["rows"][0]["components"]["demand"]
    assert demand["estimated"] and demand["why"] == "not_visited"
    assert demand["estimated_from"] == "prior"
    access = english["rows"][0]["components"]["access"]
    assert access["why"] == "no_facility_data"
    assert "facility" in access["reason"]
    assert "why" not in english["rows"][0]["components"]["recency"]
    assert arabic["rows"][0]["components"]["access"]["reason"] != access["reason"]


def test_with_no_data_each_specialty_counts_its_own_population(app, db):
    """A fresh install: no caravan, no facility. OPH and GYN must not share one ranking."""
    make_areas()
    # Tinghir: many older people, few young women; Assilah: the reverse.
    _population("08.577.01.11", {("F", "50-64"): 6000, ("M", "65+"): 5000,
                                 ("F", "15-24"): 1000, ("F", "25-49"): 1000})
    _population("01.511.01.01", {("F", "50-64"): 500, ("M", "65+"): 500,
                                 ("F", "15-24"): 6000, ("F", "25-49"): 7000})
    db.session.commit()
    oph = need_rows("OPH", as_of=AS_OF, principal=ADMIN, sort="expected_patients")
    gyn = need_rows("GYN", as_of=AS_OF, principal=ADMIN, sort="expected_patients")
    assert [r["code"] for r in oph["rows"]] != [r["code"] for r in gyn["rows"]]
    oph_rows, gyn_rows = _rows(oph), _rows(gyn)
    assert oph_rows["08.577.01.11"]["rank"] < oph_rows["01.511.01.01"]["rank"]
    assert gyn_rows["01.511.01.01"]["rank"] < gyn_rows["08.577.01.11"]["rank"]
    assert oph_rows["08.577.01.11"]["expected_patients"] > 0
    sizes = [r["expected_patients"] for r in oph["rows"]]
    assert sizes == sorted(sizes, reverse=True) and oph["sort"] == "expected_patients"


# Two communes as far from a hospital for OPH as for GYN (the same hospitals treat both) and
# the other three near one: before their ages counted, both specialties ranked them alike.
_FAR = {"08.587.09.23": 95.0, "08.577.01.11": 90.0, "08.587.01.13": 5.0, "07.351.02.07": 3.0,
        "01.511.01.01": 1.0}


def _same_hospitals_for_oph_and_gyn():
    for code, km in _FAR.items():
        for specialty in ("OPH", "GYN"):
            _distance(code, km, specialty)


def _before(body, first, second):
    """Whether ``first`` ranks above ``second`` (by score: the default order)."""
    order = [row["code"] for row in body["rows"]]
    return order.index(first) < order.index(second)


def test_with_no_data_the_ages_of_each_specialtys_people_move_its_score(app, db):
    """A fresh install with facilities: equal access and vulnerability, different ages."""
    make_areas()
    _same_hospitals_for_oph_and_gyn()
    # M'Hamid: people of 50-64 rather than 65+ (less cataract), women of 25-49 (pregnancies);
    # Tinghir the reverse.
    _population("08.587.09.23", {("M", "50-64"): 5000, ("F", "65+"): 500,
                                 ("F", "15-24"): 1000, ("F", "25-49"): 5000})
    _population("08.577.01.11", {("M", "50-64"): 1000, ("F", "65+"): 4000,
                                 ("F", "15-24"): 5000, ("F", "25-49"): 1000})
    db.session.commit()
    oph = need_rows("OPH", as_of=AS_OF, principal=ADMIN)
    gyn = need_rows("GYN", as_of=AS_OF, principal=ADMIN)
    assert _before(oph, "08.577.01.11", "08.587.09.23")
    assert _before(gyn, "08.587.09.23", "08.577.01.11")
    tinghir = _rows(oph)["08.577.01.11"]["components"]["demand"]
    assert tinghir["estimated_from"] == "prior" and tinghir["value"] > 130.0
    # A commune without census bands is the typical commune: between the two.
    demand = {code: row["components"]["demand"]["value"] for code, row in _rows(oph).items()}
    assert demand["08.587.09.23"] < demand["01.511.01.01"] < demand["08.577.01.11"]


def test_a_handful_of_people_cannot_make_an_extreme_prior(app, db):
    make_areas()
    for code, younger, older in (("08.587.09.23", 5000, 5000), ("08.587.01.13", 6000, 4000),
                                 ("01.511.01.01", 4000, 6000)):
        _population(code, {("M", "50-64"): younger, ("F", "65+"): older})
    # Twenty people, all over 65: their ages are noise, not a reason to rank first.
    _population("08.577.01.11", {("F", "65+"): 20})
    db.session.commit()
    demand = {code: row["components"]["demand"]["value"]
              for code, row in _rows(need_rows("OPH", as_of=AS_OF, principal=ADMIN)).items()}
    others = [demand[code] for code in ("08.587.09.23", "08.587.01.13", "01.511.01.01")]
    assert min(others) < demand["08.577.01.11"] < max(others)


def test_with_data_each_specialtys_observed_demand_orders_its_ranking(app, db):
    make_areas()
    _same_hospitals_for_oph_and_gyn()
    day = dt.date(2026, 10, 3)
    for commune, oph, gyn in (("08.587.09.23", 5, 90), ("08.577.01.11", 200, 5)):
        caravan = make_caravan(commune, first_day=day, specialties=("OPH", "GYN"))
        make_tally(caravan, day=day, specialty="OPH", lines=[("consultations", "F", "65+", None, oph)])
        make_tally(caravan, day=day, specialty="GYN",
                   lines=[("consultations", "F", "25-49", None, gyn)])
    db.session.commit()
    oph = need_rows("OPH", as_of=AS_OF, principal=ADMIN)
    gyn = need_rows("GYN", as_of=AS_OF, principal=ADMIN)
    assert _before(oph, "08.577.01.11", "08.587.09.23")
    assert _before(gyn, "08.587.09.23", "08.577.01.11")


def test_a_small_commune_shows_its_small_need_beside_its_score(app, db):
    areas = make_areas()
    tiny = Area(code="08.587.09.99", level="commune", parent_code="08.587", region_code="08",
                province_code="08.587", name_fr="Lamssid", name_ar="لمسيد", search_text="lamssid",
                population_legal=305, population_municipal=305, lat=30.0, lon=-5.6)
    db.session.add(tiny)
    db.session.flush()
    _distance("08.587.09.99", 190.0)
    _distance("08.587.01.13", 2.0)
    db.session.commit()
    del areas
    rows = _rows(need_rows("OPH", as_of=AS_OF, principal=ADMIN))
    assert rows["08.587.09.99"]["score"] > rows["08.587.01.13"]["score"]
    assert rows["08.587.09.99"]["expected_patients"] < rows["08.587.01.13"]["expected_patients"]
    by_size = _rows(need_rows("OPH", as_of=AS_OF, principal=ADMIN, sort="expected_patients"))
    assert by_size["08.587.01.13"]["rank"] < by_size["08.587.09.99"]["rank"]


def test_with_data_elsewhere_unvisited_communes_are_ordered_by_their_own_ages(app, db):
    """Caravans came to Drâa-Tafilalet only: Assilah and Ouahat Sidi Brahim both take the national
    median, and used to tie on demand for every specialty, so OPH and GYN ordered them alike."""
    make_areas()
    _same_hospitals_for_oph_and_gyn()
    day = dt.date(2026, 10, 3)
    caravan = make_caravan("08.587.01.13", first_day=day, specialties=("OPH", "GYN"))
    make_tally(caravan, day=day, specialty="OPH", lines=[("consultations", "F", "65+", None, 90)])
    make_tally(caravan, day=day, specialty="GYN", lines=[("consultations", "F", "25-49", None, 90)])
    # Assilah: its people of 50+ mostly over 65, its women mostly under 25; Ouahat the reverse.
    _population("01.511.01.01", {("M", "50-64"): 1000, ("F", "65+"): 4000,
                                 ("F", "15-24"): 5000, ("F", "25-49"): 1000})
    _population("07.351.02.07", {("M", "50-64"): 4000, ("F", "65+"): 1000,
                                 ("F", "15-24"): 1000, ("F", "25-49"): 5000})
    db.session.commit()
    oph = need_rows("OPH", as_of=AS_OF, principal=ADMIN)
    gyn = need_rows("GYN", as_of=AS_OF, principal=ADMIN)
    assert _before(oph, "01.511.01.01", "07.351.02.07")
    assert _before(gyn, "07.351.02.07", "01.511.01.01")
    demand = _rows(oph)["01.511.01.01"]["components"]["demand"]
    assert demand["estimated_from"] == "national" and "âges" in demand["reason"]  # French


@pytest.mark.parametrize("sort", ["score", "expected_patients"])
def test_one_communes_row_carries_the_ranks_of_the_whole_ranking(app, db, sort):
    """The map's panel builds one row; its ranks must be those the full ranking gives."""
    from fieldsvc.insights.needs import NeedsQuery, need_ranking

    make_areas()
    _same_hospitals_for_oph_and_gyn()
    _population("08.587.09.23", {("M", "50-64"): 5000, ("F", "65+"): 500})
    _population("08.577.01.11", {("M", "50-64"): 1000, ("F", "65+"): 4000})
    db.session.commit()
    query = NeedsQuery(specialty="OPH", regions=["08"], sort=sort, as_of=AS_OF)
    whole = need_ranking(query, ADMIN)
    assert len(whole.rows) == 3
    for row in whole.rows:
        one = need_ranking(query, ADMIN, only=row.code)
        assert [(r.code, r.rank, r.national_rank, r.score, r.components["demand"].reason)
                for r in one.rows] == [(row.code, row.rank, row.national_rank, row.score,
                                        row.components["demand"].reason)]
    assert need_ranking(query, ADMIN, only="01.511.01.01").rows == []  # outside the filter
    assert need_ranking(query, ADMIN, only="99.999.99.99").rows == []
