"""The areas API: search by French or Arabic name, figures of one area, public to all."""

from __future__ import annotations

import pytest

from fieldsvc.areas.models import AreaIndicator, AreaPopulation
from tests.factories import auth, make_areas, make_user


@pytest.fixture
def areas(db):
    rows = make_areas()
    db.session.add_all([
        AreaPopulation(area_code="07.351.02.07", sex="F", age_band="0-4", people=1649),
        AreaPopulation(area_code="07.351.02.07", sex="M", age_band="0-4", people=1890),
        AreaPopulation(area_code="07.351.02.07", sex="F", age_band="65+", people=824),
        AreaIndicator(area_code="07.351.02.07", indicator="illiteracy_rate_pct", value=20.8),
        AreaIndicator(area_code="07.351.02.07", indicator="no_running_water_pct", value=6.9),
    ])
    db.session.commit()
    return rows


@pytest.mark.parametrize(
    "q", ["sidi brahim", "ouahat", "واحة", "SIDI  Brahim", "Ouahât", "ابراهيم"]
)
def test_search_finds_ouahat_sidi_brahim_in_french_and_arabic(client, areas, q):
    response = client.get("/api/v1/areas", query_string={"q": q})
    assert response.status_code == 200
    codes = [item["code"] for item in response.json["items"]]
    assert codes == ["07.351.02.07"]
    item = response.json["items"][0]
    assert item["name_ar"] == "واحة سيدي ابراهيم"
    assert item["population_legal"] == 36493
    assert item["point"] == {"lat": 31.70, "lon": -7.95, "source": "geonames"}


def test_search_by_level_and_parent_paginates(client, areas):
    response = client.get("/api/v1/areas", query_string={"level": "region"})
    assert [i["code"] for i in response.json["items"]] == ["01", "07", "08"]
    response = client.get("/api/v1/areas", query_string={"parent": "08.587"})
    assert [i["code"] for i in response.json["items"]] == ["08.587.01.13", "08.587.09.23"]
    first = client.get("/api/v1/areas", query_string={"limit": 5}).json
    second = client.get("/api/v1/areas", query_string={"limit": 5, "offset": 5}).json
    assert first["total"] == second["total"] == 12
    assert len(first["items"]) == 5
    assert not {i["code"] for i in first["items"]} & {i["code"] for i in second["items"]}
    # Regions come before provinces, provinces before communes.
    assert [i["level"] for i in first["items"]][:3] == ["region"] * 3
    zagora = client.get("/api/v1/areas", query_string={"q": "zagora"}).json["items"]
    assert [(i["level"], i["code"]) for i in zagora] == [
        ("province", "08.587"), ("commune", "08.587.01.13")
    ]


def test_search_refuses_bad_parameters(client, areas):
    response = client.get("/api/v1/areas", query_string={"level": "village", "limit": 0})
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert set(response.json["errors"]) == {"level", "limit"}


def test_search_treats_like_wildcards_as_text(client, areas):
    assert client.get("/api/v1/areas", query_string={"q": "%"}).json["total"] == 0
    assert client.get("/api/v1/areas", query_string={"q": "_"}).json["total"] == 0


def test_area_detail_has_population_bands_indicators_and_point(client, areas):
    response = client.get("/api/v1/areas/07.351.02.07")
    assert response.status_code == 200
    body = response.json
    assert body["name_fr"] == "Ouahat Sidi Brahim"
    assert body["population_legal"] == 36493
    assert body["point"]["source"] == "geonames"
    assert body["age_bands"] == [
        {"age_band": "0-4", "F": 1649, "M": 1890, "total": 3539},
        {"age_band": "65+", "F": 824, "M": None, "total": None},
    ]
    # A missing indicator is absent, never zero.
    assert body["indicators"] == {"illiteracy_rate_pct": 20.8, "no_running_water_pct": 6.9}


def test_area_without_point_says_so(client, db, areas):
    areas["08.587.09.23"].lat = areas["08.587.09.23"].lon = None
    areas["08.587.09.23"].point_source = None
    db.session.commit()
    assert client.get("/api/v1/areas/08.587.09.23").json["point"] is None


def test_unknown_area_is_a_404_problem(client, areas):
    response = client.get("/api/v1/areas/99.999.99.99")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert "99.999.99.99" in response.json["detail"]


@pytest.mark.parametrize("role", ["admin", "coordinator", "planner"])
def test_areas_are_open_to_every_role(client, db, areas, role):
    headers = auth(make_user(role, organization="Wahat Al-Khair" if role == "planner" else None))
    assert client.get("/api/v1/areas/07.351.02.07", headers=headers).status_code == 200
    assert client.get("/api/v1/areas?q=zagora", headers=headers).status_code == 200
