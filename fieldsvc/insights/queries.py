"""The summary query: one SQL statement over the counted tally lines, the same on both databases.

Callers go through :func:`summary_rows` only, so that faster storage (rollups by day) can replace
the raw lines later without touching them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import Integer, String, any_, cast, func, literal, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement

from fieldsvc.accounts.models import Organization
from fieldsvc.areas.models import Area
from fieldsvc.caravans.models import Caravan, Site, caravan_organizer
from fieldsvc.extensions import db
from fieldsvc.tallies.models import REVIEW_STATUSES

AREA_DIMENSIONS = ("region", "province", "commune")
PERIOD_DIMENSIONS = ("day", "week", "month", "quarter", "year")
DIMENSIONS = (
    "region", "province", "commune", "site", "caravan", "organization", "specialty", "measure",
    "sex", "age_band", "condition", "day", "week", "month", "quarter", "year",
)
DEFAULT_MEASURE = "consultations"
COUNTED_STATUSES = tuple(s for s in REVIEW_STATUSES if s != "rejected")


@dataclass
class SummaryQuery:
    """What to group by and what to keep; list filters mean "any of these"."""

    by: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    provinces: list[str] = field(default_factory=list)
    communes: list[str] = field(default_factory=list)
    caravans: list[int] = field(default_factory=list)
    organizations: list[int] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)
    sexes: list[str] = field(default_factory=list)
    age_bands: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    start: dt.date | None = None
    end: dt.date | None = None

    def effective_measures(self) -> list[str]:
        """Never add glasses to consultations: without a measure asked for, count consultations."""
        if self.measures or "measure" in self.by:
            return self.measures
        return [DEFAULT_MEASURE]


@dataclass(frozen=True)
class ReleaseInfo:
    """Which protected release, and which of its tables, an answer was selected from."""

    version: int
    built_at: dt.datetime
    k: int
    window_start: dt.date
    window_end: dt.date
    table: str


@dataclass
class SummaryResult:
    """A summary: one row per group (dimension keys, area names, `count`) and the total.

    Without full detail, `count` is None in a suppressed cell and `suppressed` says why
    (primary or complementary); `release` names the release the rows come from.
    """

    query: SummaryQuery
    measures: list[str] | None
    full_detail: bool
    rows: list[dict[str, Any]]
    total: int | None
    release: ReleaseInfo | None = None
    total_suppressed: str | None = None

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def suppression(self) -> dict[str, int] | None:
        return None if self.release is None else {"k": self.release.k}


def counted_lines() -> Any:
    """The lines that count: the tallies domain's selectable (latest, non-rejected versions)."""
    from fieldsvc.tallies.services import counted_lines as tallies_counted_lines

    return tallies_counted_lines()


def period_key(unit: str, day: Any) -> ColumnElement[str]:
    """The text key of a day's period (2026-11-28, week 2026-11-23, 2026-11, 2026-Q4, 2026).

    SQLite and PostgreSQL spell date arithmetic differently; both give the same strings.
    """
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        formats = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}
        if unit == "week":
            return func.to_char(func.date_trunc("week", day), "YYYY-MM-DD")
        return func.to_char(day, formats[unit])
    if unit == "week":
        # strftime('%w') is 0 on Sunday; go back to the Monday of ISO weeks.
        back = (cast(func.strftime("%w", day), Integer) + 6) % 7
        return func.date(day, literal("-") + cast(back, String) + literal(" days"))
    if unit == "quarter":
        quarter = (cast(func.strftime("%m", day), Integer) + 2) // 3
        return func.strftime("%Y", day) + literal("-Q") + cast(quarter, String)
    formats_sqlite = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
    return func.strftime(formats_sqlite[unit], day)


def _area_prefix(commune: Any, level: str) -> Any:
    # HCP codes nest: region "08", province "08.587", commune "08.587.01.13".
    if level == "region":
        return func.substr(commune, 1, 2)
    if level == "province":
        return func.substr(commune, 1, 6)
    return commune


def _region_range(commune: Any, regions: list[str]) -> list[Any]:
    """The same regions as a range of codes, which an index led by the commune code can scan
    (the rollups' slice indexes) where ``substr(...) IN`` reads the whole table: codes of
    region "08" are at least "08" and below "09" in any collation (their first two characters
    are digits). Added to the exact condition, never instead of it; none for odd codes."""
    if not all(len(code) == 2 and code.isdigit() for code in regions):
        return []
    low, high = min(regions), max(regions)
    return [commune >= low, commune < f"{int(high) + 1:02d}"]


def _line_source() -> tuple[Any, Any, Any]:
    """The counted lines, their caravan, and the commune each line counts in.

    A line counts in its site's commune when it has a site, else in its caravan's commune.
    """
    lines = counted_lines()
    site_commune = select(Site.commune_code).where(Site.id == lines.c.site_id).scalar_subquery()
    caravan = aliased(Caravan, name="line_caravan")
    return lines, caravan, func.coalesce(site_commune, caravan.commune_code)


def _organized_by(caravan_id: Any, organizations: list[int]) -> Any:
    """The lines of caravans these organizations organized (each line once).

    On PostgreSQL the caravans are read first (``= ANY(ARRAY(SELECT ...))``, an InitPlan), so
    that the caravan index finds their lines: as a semi-join, the planner scanned every line.
    """
    caravans = select(caravan_organizer.c.caravan_id).where(
        caravan_organizer.c.organization_id.in_(organizations))
    if db.session.get_bind().dialect.name == "postgresql":
        return caravan_id == any_(func.array(caravans.scalar_subquery()))
    return caravan_id.in_(caravans)


def _conditions(query: SummaryQuery, lines: Any, commune: Any,
                grouped_by_organization: bool | None = None) -> list[Any]:
    """The WHERE conditions of a summary query's filters (measure defaults included)."""
    if grouped_by_organization is None:
        grouped_by_organization = "organization" in query.by
    conditions: list[Any] = []
    if query.regions:
        conditions.append(_area_prefix(commune, "region").in_(query.regions))
        conditions.extend(_region_range(commune, query.regions))
    if query.provinces:
        conditions.append(_area_prefix(commune, "province").in_(query.provinces))
    if query.communes:
        conditions.append(commune.in_(query.communes))
    if query.caravans:
        conditions.append(lines.c.caravan_id.in_(query.caravans))
    if query.organizations and grouped_by_organization:
        conditions.append(caravan_organizer.c.organization_id.in_(query.organizations))
    elif query.organizations:
        conditions.append(_organized_by(lines.c.caravan_id, query.organizations))
    if query.specialties:
        conditions.append(lines.c.specialty_code.in_(query.specialties))
    measures = query.effective_measures()
    if measures:
        conditions.append(lines.c.measure_code.in_(measures))
    if query.sexes:
        conditions.append(lines.c.sex.in_(query.sexes))
    if query.age_bands:
        conditions.append(lines.c.age_band.in_(query.age_bands))
    if query.statuses:
        conditions.append(lines.c.review_status.in_(query.statuses))
    if query.start is not None:
        conditions.append(lines.c.day >= query.start)
    if query.end is not None:
        conditions.append(lines.c.day <= query.end)
    return conditions


def summary_rows(query: SummaryQuery) -> list[dict[str, Any]]:
    """Sum the counted lines by the query's dimensions, in one SQL statement.

    Each row has the dimension keys (area codes with ``<level>_name_fr``/``_name_ar``, site and
    caravan ids with their names, organization ids with names) and ``count``. Grouped by
    organization, a caravan with two organizers counts under each (so the rows then add up to
    more than the lines); filtered by organization, its lines count once.

    Read from the summary rollup (``insights.rollup``: exact, with the tallies not yet folded
    added from their raw lines) when it has every dimension and filter; from the raw lines
    otherwise (site, review status).
    """
    statement = summary_statement(query)
    rows = []
    for row in db.session.execute(statement).mappings():
        item = dict(row)
        item["count"] = int(item["count"] or 0)
        rows.append(item)
    # Sorted here: the two databases place NULL keys (no condition, no site) differently.
    rows.sort(key=lambda item: tuple(
        (0, 0) if item[name] is None else (1, item[name]) for name in query.by
    ))
    return rows


def ordered_summary_statement(query: SummaryQuery) -> Any:
    """The summary statement ordered in SQL as :func:`summary_rows` sorts (for streaming).

    NULL keys first and strings in code-point order (PostgreSQL's "C" collation), as Python
    compares them.
    """
    statement = summary_statement(query)
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    order = []
    for name in query.by:
        column = statement.selected_columns[name]
        if postgresql and name not in ("site", "caravan", "organization"):
            column = column.collate("C")
        order.append(column.asc().nulls_first())
    return statement.order_by(*order)


def summary_statement(query: SummaryQuery) -> Any:
    """The one SELECT that sums the counted lines by the query's dimensions, with names."""
    from fieldsvc.insights import rollup

    keys: dict[str, Any] = {}
    having: list[Any] = []
    lines = rollup.rollup_lines(query) if current_app.config.get("SUMMARY_ROLLUP", True) else None
    if lines is not None:
        commune = lines.c.commune_code
        base = select().select_from(lines)
        if query.by:  # without keys, the raw lines answer one row even when there are none
            having.append(func.sum(lines.c.line_count) > 0)
    else:
        lines, caravan, commune = _line_source()
        base = select().select_from(lines).join(caravan, caravan.id == lines.c.caravan_id)
    if "organization" in query.by:
        base = base.join(caravan_organizer, caravan_organizer.c.caravan_id == lines.c.caravan_id)
    for dimension in query.by:
        if dimension in AREA_DIMENSIONS:
            keys[dimension] = _area_prefix(commune, dimension)
        elif dimension in PERIOD_DIMENSIONS:
            keys[dimension] = period_key(dimension, lines.c.day)
        elif dimension == "site":
            keys[dimension] = lines.c.site_id
        elif dimension == "caravan":
            keys[dimension] = lines.c.caravan_id
        elif dimension == "organization":
            keys[dimension] = caravan_organizer.c.organization_id
        elif dimension == "specialty":
            keys[dimension] = lines.c.specialty_code
        elif dimension == "measure":
            keys[dimension] = lines.c.measure_code
        else:  # sex, age_band, condition
            keys[dimension] = lines.c[dimension]

    conditions = _conditions(query, lines, commune)

    labelled = [expression.label(name) for name, expression in keys.items()]
    grouped = (
        base.add_columns(*labelled, func.sum(lines.c.count).label("count"))
        .where(*conditions)
        .group_by(*keys.values())
        .having(*having)
        .subquery("grouped")
    )
    columns: list[Any] = [grouped.c[name] for name in keys] + [grouped.c["count"]]
    statement = select(*columns).select_from(grouped)
    for dimension in keys:
        if dimension in AREA_DIMENSIONS:
            area = aliased(Area, name=f"{dimension}_area")
            statement = statement.outerjoin(area, area.code == grouped.c[dimension])
            statement = statement.add_columns(
                area.name_fr.label(f"{dimension}_name_fr"),
                area.name_ar.label(f"{dimension}_name_ar"),
            )
        elif dimension == "site":
            site = aliased(Site, name="named_site")
            statement = statement.outerjoin(site, site.id == grouped.c.site).add_columns(
                site.name.label("site_name")
            )
        elif dimension == "caravan":
            named = aliased(Caravan, name="named_caravan")
            statement = statement.outerjoin(named, named.id == grouped.c.caravan).add_columns(
                named.title.label("caravan_title")
            )
        elif dimension == "organization":
            statement = statement.outerjoin(
                Organization, Organization.id == grouped.c.organization
            ).add_columns(Organization.name.label("organization_name"))
    return statement
