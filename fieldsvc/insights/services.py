"""What insights do: summaries with small-cell suppression (needs and plans live beside it)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app

from fieldsvc.catalog.codes import AGE_BANDS, SEXES
from fieldsvc.catalog.services import measure_codes, specialty_codes
from fieldsvc.errors import ValidationFailed
from fieldsvc.insights import suppression
from fieldsvc.insights.queries import DIMENSIONS, SummaryQuery, lines_outside, summary_rows
from fieldsvc.security import Principal
from fieldsvc.tallies.models import REVIEW_STATUSES

COUNTED_STATUSES = tuple(s for s in REVIEW_STATUSES if s != "rejected")


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _ints(field: str, value: str | None, errors: dict[str, list[str]]) -> list[int]:
    numbers = []
    for part in _split(value):
        try:
            numbers.append(int(part))
        except ValueError:
            errors.setdefault(field, []).append(f"{part!r} is not an id; use numbers, e.g. 12.")
    return numbers


def _check_codes(field: str, values: list[str], allowed: set[str] | tuple[str, ...],
                 errors: dict[str, list[str]]) -> None:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        errors.setdefault(field, []).append(
            f"Unknown {', '.join(unknown)}; use one of {', '.join(sorted(allowed))}."
        )


def parse_summary_args(args: dict[str, Any]) -> SummaryQuery:
    """Read the summary's query parameters, or raise a 422 naming each bad one."""
    errors: dict[str, list[str]] = {}
    by = _split(args.get("by"))
    _check_codes("by", [d for d in by if d not in DIMENSIONS], DIMENSIONS, errors)
    if len(set(by)) != len(by):
        errors.setdefault("by", []).append("Name each dimension once.")
    query = SummaryQuery(
        by=by,
        regions=_split(args.get("region")),
        provinces=_split(args.get("province")),
        communes=_split(args.get("commune")),
        caravans=_ints("caravan", args.get("caravan"), errors),
        organizations=_ints("organization", args.get("organization"), errors),
        specialties=_split(args.get("specialty")),
        measures=_split(args.get("measure")),
        sexes=_split(args.get("sex")),
        age_bands=_split(args.get("age_band")),
        statuses=_split(args.get("status")),
        start=args.get("from"),
        end=args.get("to"),
    )
    _check_codes("specialty", query.specialties, specialty_codes(), errors)
    _check_codes("measure", query.measures, measure_codes(), errors)
    _check_codes("sex", query.sexes, tuple(SEXES), errors)
    _check_codes("age_band", query.age_bands, AGE_BANDS, errors)
    _check_codes("status", query.statuses, COUNTED_STATUSES, errors)
    if query.start and query.end and query.start > query.end:
        errors["from"] = ["from must be on or before to."]
    if errors:
        raise ValidationFailed(
            "Some summary parameters are invalid: "
            + "; ".join(f"{f}: {' '.join(m)}" for f, m in errors.items()),
            errors=errors,
        )
    return query


def query_regions(query: SummaryQuery) -> list[set[str]]:
    """The region sets each area filter restricts the query to (any one of them bounds it)."""
    restrictions = []
    if query.regions:
        restrictions.append(set(query.regions))
    if query.provinces:
        restrictions.append({code[:2] for code in query.provinces})
    if query.communes:
        restrictions.append({code[:2] for code in query.communes})
    return restrictions


def has_full_detail(principal: Principal, query: SummaryQuery) -> bool:
    """Admins; coordinators inside their regions; planners inside their organization's caravans."""
    if principal.role == "admin":
        return True
    for regions in query_regions(query):
        if suppression.full_detail(principal, regions=regions):
            return True
    if query.caravans and suppression.full_detail(principal, caravan_ids=query.caravans):
        return True
    if len(query.organizations) == 1 and suppression.full_detail(
        principal, organization_id=query.organizations[0]
    ):
        return True
    # Without such a filter: full detail still when everything the query counts is theirs.
    if principal.role == "coordinator" and principal.region_codes:
        return not lines_outside(query, regions=list(principal.region_codes))
    if principal.role == "planner" and principal.organization_id is not None:
        return not lines_outside(query, organization_id=principal.organization_id)
    return False


def summary(query: SummaryQuery, principal: Principal, *, force_suppression: bool = False
            ) -> dict[str, Any]:
    """Group the counted lines; hide small cells unless the caller has full detail."""
    full = not force_suppression and has_full_detail(principal, query)
    if not full:
        suppression.check_granularity(
            query.by,
            caravan=query.caravans or None,
            organization=query.organizations or None,
        )
        query.start, query.end = suppression.snap_to_months(query.start, query.end)
        return _suppressed_summary(query)
    rows = summary_rows(query)
    body: dict[str, Any] = {
        "by": query.by,
        "measure": query.effective_measures() or None,
        "from": _iso(query.start),
        "to": _iso(query.end),
        "full_detail": True,
    }
    body.update(rows=rows, total=sum(row["count"] for row in rows), row_count=len(rows))
    return body


# Filters a suppressed caller may use, and the dimension each one selects a slice of.
_SLICE_FILTERS = {
    "regions": "region", "provinces": "province", "communes": "commune",
    "specialties": "specialty", "sexes": "sex", "age_bands": "age_band",
}
_AREA_ORDER = ("region", "province", "commune")


def _check_suppressed_filters(query: SummaryQuery) -> None:
    """Refuse filters whose answers, set beside another query's, would difference a small cell.

    A filter answered from its own smaller table gets its own (weaker) complementary suppression,
    and a sum over some values of a dimension is no margin of the full table: so, without full
    detail, each filter takes one value, the review status is not a filter, and measures are
    never added together.
    """
    errors: dict[str, list[str]] = {}
    names = {"regions": "region", "provinces": "province", "communes": "commune",
             "specialties": "specialty", "sexes": "sex", "age_bands": "age_band",
             "measures": "measure"}
    for attribute, name in names.items():
        if len(getattr(query, attribute)) > 1:
            errors[name] = [f"Without full detail, filter on one {name} at a time, or add "
                            f"{name} to by."]
    if query.statuses:
        errors["status"] = ["Without full detail, the review status cannot be filtered on."]
    if errors:
        raise ValidationFailed(
            "These filters are finer than small-cell suppression allows for your account: "
            + " ".join(msg for msgs in errors.values() for msg in msgs),
            errors=errors,
        )


def _suppressed_summary(query: SummaryQuery) -> dict[str, Any]:
    """The suppressed view: every filter is a slice of the one unfiltered table it belongs to.

    The table (by + the filtered dimensions, without those filters) is suppressed as a whole,
    then the slice asked for is cut out of it: two queries that share cells then hide them
    alike, and a slice's total is a margin of that table, which its suppression protects.
    """
    _check_suppressed_filters(query)
    by = list(query.by)
    slices: list[tuple[str, str]] = []
    table = SummaryQuery(by=list(by), measures=query.measures)
    area_in_by = [d for d in _AREA_ORDER if d in by]
    for attribute, dimension in _SLICE_FILTERS.items():
        values = getattr(query, attribute)
        if not values:
            continue
        slices.append((dimension, values[0]))
    area_slices = [(d, v) for d, v in slices if d in _AREA_ORDER]
    finest_filter = max((_AREA_ORDER.index(d) for d, _ in area_slices), default=-1)
    finest_by = max((_AREA_ORDER.index(d) for d in area_in_by), default=-1)
    if area_slices and finest_filter > finest_by:
        if finest_by >= 0:
            level = _AREA_ORDER[finest_filter]
            raise ValidationFailed(
                f"Without full detail, filter areas at the level you group by or coarser; "
                f"add {level} to by instead of {_AREA_ORDER[finest_by]}.",
                errors={level: [f"add {level} to by"]})
        table.by.append(_AREA_ORDER[finest_filter])
    for dimension, _value in slices:
        if dimension not in _AREA_ORDER and dimension not in table.by:
            table.by.append(dimension)
    period = _period_slice(query.start, query.end)
    period_key = None
    if period is not None:
        unit, value = period
        in_by = [d for d in _PERIOD_ORDER if d in by]
        if in_by and _PERIOD_ORDER.index(in_by[0]) > _PERIOD_ORDER.index(unit):
            raise ValidationFailed(
                f"Without full detail, from and to select a whole {unit}: group by {unit} or "
                f"a shorter period, not {in_by[0]}.", errors={"from": [f"group by {unit}"]})
        if not in_by:
            table.by.append(unit)
        period_key = in_by[0] if in_by else unit
        slices.append(("period", value))
    if len(table.by) > suppression.MAX_SUPPRESSED_DIMENSIONS:
        raise ValidationFailed(
            f"Without full detail, group by and filter on at most "
            f"{suppression.MAX_SUPPRESSED_DIMENSIONS} dimensions together (a from/to period "
            "counts as one); drop a filter or a dimension.",
            errors={"by": ["too many dimensions with the filters"]})
    area_key = next((d for d in reversed(_AREA_ORDER) if d in table.by), None)

    rows = summary_rows(table)
    limit = int(current_app.config.get("SUPPRESSED_EXPORT_MAX_CELLS", 50000))
    if len(rows) > limit:
        raise ValidationFailed(
            f"This query has {len(rows)} cells; without full detail at most {limit} can be "
            "suppressed together. Group by fewer or coarser dimensions, or filter.",
            errors={"by": [f"more than {limit} cells"]},
        )
    k = suppression.suppression_k()
    counts = [row["count"] for row in rows]
    rows, total, total_status = suppression.suppress_rows(rows, table.by, k)

    def in_slice(row: dict[str, Any]) -> bool:
        for dimension, value in slices:
            if dimension == "period":
                if _period_of(period_key, row[period_key], period[0]) != value:
                    return False
            elif dimension in _AREA_ORDER:
                code = row[area_key] or ""
                if code[:len(value)] != value or len(value) != _AREA_LENGTH[dimension]:
                    return False
            elif row[dimension] != value:
                return False
        return True

    if slices:
        kept = [(row, count) for row, count in zip(rows, counts, strict=True) if in_slice(row)]
        rows = [row for row, _count in kept]
        slice_total = sum(count for _row, count in kept)
        hidden = [count for row, count in kept if row.get("suppressed")]

        total, total_status = slice_total, None
        if 0 < slice_total < k:
            total_status = suppression.PRIMARY
        elif hidden and (len(hidden) < 2 or sum(hidden) < k):
            total_status = suppression.COMPLEMENTARY
        if total_status:
            total = None
        added = [d for d in table.by if d not in by]
        for row in rows:
            for dimension in added:
                for key in (dimension, f"{dimension}_name_fr", f"{dimension}_name_ar"):
                    row.pop(key, None)
    body: dict[str, Any] = {
        "by": by,
        "measure": query.effective_measures() or None,
        "from": _iso(query.start),
        "to": _iso(query.end),
        "full_detail": False,
        "suppression": {"k": k},
        "rows": rows, "total": total, "row_count": len(rows),
    }
    if total_status:
        body["total_suppressed"] = total_status
    return body


_AREA_LENGTH = {"region": 2, "province": 6, "commune": 12}
_PERIOD_ORDER = ("month", "quarter", "year")


def _period_slice(start: dt.date | None, end: dt.date | None) -> tuple[str, str] | None:
    """The one month, quarter or year a suppressed caller's from/to select (already snapped to
    whole months), as (unit, key); None without dates.

    Any other range is a sum over some months, which is no margin of the by-month table: two
    such ranges would difference a month's small cell out. So it is refused with a 422.
    """
    if start is None and end is None:
        return None
    if start is not None and end is not None:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        if months == 1:
            return "month", f"{start.year}-{start.month:02d}"
        if months == 3 and start.month % 3 == 1:
            return "quarter", f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        if months == 12 and start.month == 1:
            return "year", str(start.year)
    message = ("Without full detail, from and to select one whole month, quarter or year "
               "(e.g. from=2026-10-01&to=2026-12-31), or are left out; group by month to see "
               "a longer stretch.")
    raise ValidationFailed(message, errors={"from": [message]})


def _period_of(dimension: str, key: Any, unit: str) -> str:
    """The month, quarter or year key a row's period key falls in."""
    text = str(key or "")
    if dimension == unit:
        return text
    if unit == "year":
        return text[:4]
    return f"{text[:4]}-Q{(int(text[5:7]) - 1) // 3 + 1}"  # a month within its quarter


def public_summary(args: dict[str, Any]) -> dict[str, Any]:
    """The anonymous summary: by region and specialty, always suppressed."""
    query = SummaryQuery(
        by=["region", "specialty"],
        measures=_split(args.get("measure")),
        start=args.get("from"),
        end=args.get("to"),
    )
    errors: dict[str, list[str]] = {}
    _check_codes("measure", query.measures, measure_codes(), errors)
    if errors:
        raise ValidationFailed("Unknown measure.", errors=errors)
    return summary(query, Principal(), force_suppression=True)


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()
