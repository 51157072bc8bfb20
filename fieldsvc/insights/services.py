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
    rows = summary_rows(query)
    body: dict[str, Any] = {
        "by": query.by,
        "measure": query.effective_measures() or None,
        "from": _iso(query.start),
        "to": _iso(query.end),
        "full_detail": full,
    }
    if full:
        total: int | None = sum(row["count"] for row in rows)
        total_status = None
    else:
        limit = int(current_app.config.get("SUPPRESSED_EXPORT_MAX_CELLS", 50000))
        if len(rows) > limit:
            raise ValidationFailed(
                f"This query has {len(rows)} cells; without full detail at most {limit} can be "
                "suppressed together. Group by fewer or coarser dimensions, or filter.",
                errors={"by": [f"more than {limit} cells"]},
            )
        k = suppression.suppression_k()
        rows, total, total_status = suppression.suppress_rows(rows, query.by, k)
        body["suppression"] = {"k": k}
    body.update(rows=rows, total=total, row_count=len(rows))
    if total_status:
        body["total_suppressed"] = total_status
    return body


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
