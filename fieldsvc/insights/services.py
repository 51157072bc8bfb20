"""Summaries: exact for full detail, a selection of the protected release for everyone else."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from fieldsvc.areas.models import Area
from fieldsvc.catalog.services import known_codes, unknown_codes
from fieldsvc.errors import ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.insights import release as release_module
from fieldsvc.insights import suppression
from fieldsvc.insights.queries import (
    DEFAULT_MEASURE,
    ReleaseInfo,
    SummaryQuery,
    SummaryResult,
    summary_rows,
)
from fieldsvc.security import Principal


def check_codes(query: SummaryQuery) -> None:
    """Refuse specialty and measure codes the catalog does not know (a 422 naming each)."""
    errors: dict[str, list[str]] = {}
    for field, kind, values in (("specialty", "specialties", query.specialties),
                                ("measure", "measures", query.measures)):
        unknown = unknown_codes(kind, values)
        if unknown:
            errors[field] = [_("Unknown %(codes)s; use one of %(choices)s.",
                               codes=", ".join(unknown),
                               choices=", ".join(sorted(known_codes(kind))))]
    if errors:
        raise ValidationFailed(
            _("Some summary parameters are invalid: %(fields)s",
              fields="; ".join(f"{f}: {' '.join(m)}" for f, m in errors.items())),
            errors=errors,
        )


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
    """Admins; coordinators inside their regions; planners inside their organization's caravans.

    Decided by the query alone, never by the data: an answer whose kind changed with whether
    someone else's line exists would tell that it exists.
    """
    if principal.role == "admin":
        return True
    for regions in query_regions(query):
        if suppression.full_detail(principal, regions=regions):
            return True
    if query.caravans and suppression.full_detail(principal, caravan_ids=query.caravans):
        return True
    return len(query.organizations) == 1 and suppression.full_detail(
        principal, organization_id=query.organizations[0]
    )


def summary(query: SummaryQuery, principal: Principal) -> SummaryResult:
    """Group the counted lines exactly for full detail; else select from the protected release."""
    check_codes(query)
    if not has_full_detail(principal, query):
        return release_summary(query)
    rows = summary_rows(query)
    return SummaryResult(query=query, measures=query.effective_measures() or None,
                         full_detail=True, rows=rows, total=sum(row["count"] for row in rows))


RELEASE_DIMENSIONS = ("region", "province", "commune", "specialty", "measure", "sex", "age_band",
                      "quarter", "year")
_AREA_ORDER = ("region", "province", "commune")
_AREA_FILTERS = (("regions", "region"), ("provinces", "province"), ("communes", "commune"))


def _refuse(message: str, field: str, nearest: str | None = None) -> ValidationFailed:
    if nearest:
        message = _("%(message)s The nearest table you can ask for: %(nearest)s.",
                    message=message, nearest=nearest)
    return ValidationFailed(message, errors={field: [message]})


def release_summary(query: SummaryQuery) -> SummaryResult:
    """Answer without full detail: a selection of one table of the protected release.

    Nothing here depends on the data: a query the release cannot serve is refused the same way
    whether or not anything was counted.
    """
    fine = [d for d in query.by if d not in RELEASE_DIMENSIONS]
    if fine:
        raise _refuse(
            _("Without full detail, counts come from the protected release, grouped by area "
              "(region, province), specialty, measure, sex and age band, quarter or year; "
              "remove %(dimensions)s.", dimensions=", ".join(fine)), "by", "by=" + ",".join(
                d if d not in ("day", "week", "month") else "quarter"
                for d in query.by if d in RELEASE_DIMENSIONS or d in ("day", "week", "month")
            ) or "by=region,specialty")
    for attribute, name in (("caravans", "caravan"), ("organizations", "organization")):
        if getattr(query, attribute):
            raise _refuse(_("Without full detail, only your own caravans and organizations can "
                            "be selected: remove %(name)s.", name=name), name)
    if query.statuses:
        raise _refuse(_("Without full detail, the review status cannot be filtered on."),
                      "status")
    for attribute, name in (*_AREA_FILTERS, ("specialties", "specialty"), ("measures", "measure"),
                            ("sexes", "sex"), ("age_bands", "age_band")):
        if len(getattr(query, attribute)) > 1:
            raise _refuse(_("Without full detail, filter on one %(name)s at a time, or add "
                            "%(name)s to by.", name=name), name)
    release = release_module.current_release()

    by_area = [d for d in query.by if d in _AREA_ORDER]
    if len(by_area) > 1:
        raise _refuse(_("Group by one area level."), "by")
    filters = {name: getattr(query, attribute)[0]
               for attribute, name in _AREA_FILTERS if getattr(query, attribute)}
    for name, code in filters.items():
        if len(code) != release_module.AREA_LENGTH[name]:
            raise _refuse(_("%(code)s is not a %(name)s code.", code=code, name=name), name)
    levels = by_area + list(filters)
    if not levels:
        raise _refuse(_("Without full detail, group by region or province, or filter on one."),
                      "by", "by=" + ",".join(["region", *query.by]))
    level = max(levels, key=_AREA_ORDER.index)
    if by_area and _AREA_ORDER.index(level) > _AREA_ORDER.index(by_area[0]):
        raise _refuse(_("Filter areas at the level you group by or coarser; add %(level)s to by "
                        "instead of %(grouped)s.", level=level, grouped=by_area[0]), level)

    specialty = "specialty" in query.by or bool(query.specialties)
    sex = "sex" in query.by or bool(query.sexes)
    band = "age_band" in query.by or bool(query.age_bands)
    if sex != band:
        missing = "age_band" if sex else "sex"
        raise _refuse(_("Sex and age band are published together: add %(missing)s to by or "
                        "filter on one %(missing)s.", missing=missing), missing)

    units = [d for d in query.by if d in ("quarter", "year")]
    if len(units) > 1:
        raise _refuse(_("Group by one period: quarter or year."), "by")
    fixed_period: str | None = None
    if units:
        unit = units[0]
        _check_aligned(query.start, query.end, unit)
    else:
        unit, fixed_period = _one_period(query.start, query.end, release)

    if level == "commune" or unit == "window":
        if level != "commune" or unit != "window" or not specialty or sex:
            raise _refuse(
                _("Communes are published by specialty over the need window only: %(window)s.",
                  window=f"from={release.window_start.isoformat()}"
                         f"&to={release.window_end.isoformat()}"),
                "commune", f"by=commune,specialty&from={release.window_start.isoformat()}"
                f"&to={release.window_end.isoformat()}")
    spec = release_module.TableSpec(level, specialty, sex, unit)
    spec = next((t for t in release_module.TABLES if t.dims == spec.dims), None)  # type: ignore[assignment]
    if spec is None:
        raise _refuse(_("Sex and age band are published by region, for a year or for all time."),
                      "by", "by=region,sex,age_band,year")
    measures = query.measures or ([] if "measure" in query.by else [DEFAULT_MEASURE])
    if spec.measures is not None and measures and measures[0] not in spec.measures:
        raise _refuse(_("Communes are published for %(measures)s only.",
                        measures=", ".join(spec.measures)), "measure")

    wanted: dict[int, str] = {}
    dims = spec.dims
    if query.specialties:
        wanted[dims.index("specialty")] = query.specialties[0]
    if query.sexes:
        wanted[dims.index("sex")] = query.sexes[0]
    if query.age_bands:
        wanted[dims.index("age_band")] = query.age_bands[0]
    if fixed_period is not None:
        wanted[len(dims) - 1] = fixed_period
    rows: list[dict[str, Any]] = []
    for key, measure, count, status in release.cells(spec):
        if measures and measure != measures[0]:
            continue
        if any(key[position] != value for position, value in wanted.items()):
            continue
        if any(key[0][:len(code)] != code for code in filters.values()):
            continue
        if units and not _within(key[-1], unit, query.start, query.end):
            continue
        row: dict[str, Any] = {}
        for dimension in query.by:
            row[dimension] = measure if dimension == "measure" else key[dims.index(dimension)]
        row["count"] = count
        if status:
            row["suppressed"] = status
        rows.append(row)
    _name_areas(rows, by_area[0] if by_area else None)
    rows.sort(key=lambda r: tuple(str(r[d]) for d in query.by))
    total, total_status = _release_total(query, release, spec, filters, fixed_period, measures)
    if total is None and total_status is None and measures and all(
            row["count"] is not None for row in rows):
        # No margin cell equals this selection, but every row of one measure is shown: their sum
        # is what any reader would add up, so it publishes nothing new.
        total = sum(row["count"] for row in rows)
    built = release.built_at if release.built_at.tzinfo else release.built_at.replace(
        tzinfo=dt.UTC)
    info = ReleaseInfo(version=release.id, built_at=built.replace(microsecond=0), k=release.k,
                       window_start=release.window_start, window_end=release.window_end,
                       table=spec.name)
    return SummaryResult(query=query, measures=measures or None, full_detail=False, rows=rows,
                         total=total, release=info, total_suppressed=total_status)


def _check_aligned(start: dt.date | None, end: dt.date | None, unit: str) -> None:
    """From and to, grouped by quarter or year, must fall on that period's edges."""
    message = (_("Grouped by quarter, from must be the first day of a quarter and to the last "
                 "(e.g. from=2026-10-01&to=2026-12-31), or be left out.") if unit == "quarter"
               else _("Grouped by year, from must be the first day of a year and to the last "
                      "(e.g. from=2026-01-01&to=2026-12-31), or be left out."))
    first_months = (1, 4, 7, 10) if unit == "quarter" else (1,)
    if start is not None and (start.day != 1 or start.month not in first_months):
        raise _refuse(message, "from")
    if end is not None:
        following = end + dt.timedelta(days=1)
        if following.day != 1 or following.month not in first_months:
            raise _refuse(message, "to")


def _one_period(start: dt.date | None, end: dt.date | None,
                release: release_module.LoadedRelease) -> tuple[str, str | None]:
    """The one table period that from/to select: all time, one quarter, one year, the window."""
    if start is None and end is None:
        return "all", None
    if start is not None and end is not None:
        quarter = release_module.quarter_of(start)
        if (start, end) == release_module.quarter_bounds(quarter):
            return "quarter", quarter
        if (start, end) == (dt.date(start.year, 1, 1), dt.date(start.year, 12, 31)):
            return "year", str(start.year)
        if (start, end) == (release.window_start, release.window_end):
            return "window", "window"
    raise _refuse(_("Without full detail, from and to select one whole quarter or year (e.g. "
                    "from=2026-10-01&to=2026-12-31) or are left out; group by quarter to see a "
                    "longer stretch."), "from", "by=quarter")


def _within(period: str, unit: str, start: dt.date | None, end: dt.date | None) -> bool:
    if unit == "quarter":
        first, last = release_module.quarter_bounds(period)
    else:
        first, last = dt.date(int(period), 1, 1), dt.date(int(period), 12, 31)
    return (start is None or first >= start) and (end is None or last <= end)


def _name_areas(rows: list[dict[str, Any]], level: str | None) -> None:
    if level is None or not rows:
        return
    codes = {row[level] for row in rows}
    names = {code: (fr, ar) for code, fr, ar in db.session.execute(
        select(Area.code, Area.name_fr, Area.name_ar).where(Area.code.in_(codes)))}
    for row in rows:
        fr, ar = names.get(row[level], (None, None))
        row[f"{level}_name_fr"], row[f"{level}_name_ar"] = fr, ar


def _release_total(query: SummaryQuery, release: release_module.LoadedRelease,
                   spec: release_module.TableSpec, filters: dict[str, str],
                   fixed_period: str | None, measures: list[str]
                   ) -> tuple[int | None, str | None]:
    """The selection's total as the release publishes it: the margin cell it equals, if any."""
    if not measures:
        return None, None  # measures are never added together
    if not filters:
        return None, None  # a national margin is not in the release
    area = max(filters, key=_AREA_ORDER.index)
    specialty = bool(query.specialties) and "specialty" not in query.by
    demographics = bool(query.sexes) and bool(query.age_bands) and not (
        {"sex", "age_band"} & set(query.by))
    if (query.sexes or query.age_bands) and not demographics:
        return None, None
    if fixed_period is not None:
        period = spec.period
    elif query.start is None and query.end is None:
        period = "all"
    else:
        return None, None
    margin = release_module.TableSpec(area, specialty, demographics, period)
    margin = next((t for t in release_module.TABLES if t.dims == margin.dims), None)  # type: ignore[assignment]
    if margin is None:
        return None, None
    key: list[Any] = [filters[area]]
    if specialty:
        key.append(query.specialties[0])
    if demographics:
        key += [query.sexes[0], query.age_bands[0]]
    if period != "all":
        key.append(fixed_period)
    for cell_key, measure, count, status in release.cells(margin):
        if measure == measures[0] and list(cell_key) == key:
            return count, status
    return 0, None


def public_summary(query: SummaryQuery) -> SummaryResult:
    """The anonymous summary: by region and specialty, always from the protected release."""
    check_codes(query)
    return release_summary(query)
