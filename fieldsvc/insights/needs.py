"""Where needs are greatest: the need score, per commune, province or region.

Five components, each oriented so that more means more need, each turned into a percentile
(``percent_rank`` with ties at their mean rank) over all communes nationally before any filter:

* ``demand`` — consultations per caravan-day per 1,000 people of the ages the specialty serves
  (:data:`DEMAND_POPULATION`), over the window;
* ``unmet`` — (turned_away + referrals) / (consultations + turned_away);
* ``access`` — geodesic km to the nearest facility able to treat the specialty
  (``FacilityDistance``, computed when areas or facilities change). A commune without a distance
  (no point, or no facility imported yet) is *estimated* like a never-visited commune;
* ``recency`` — days since a caravan last offered the specialty there (planned it, or tallied it),
  the window plus one day if never within the window;
* ``vulnerability`` — the mean of the percentiles of the census indicators the commune has
  (``VULNERABILITY_INDICATORS``: distance to a paved road, no running water, illiteracy); none →
  estimated.

A commune with nothing observed for demand or unmet (never visited for the specialty), or with no
distance or indicator, takes the population-weighted median of its province's communes that have
the value, else its region's, else the nation's, and is flagged ``estimated``. Only rates that
small-cell suppression would show (at least k people) enter those medians. Province and region
rows are population-weighted means of their communes (values, percentiles, scores); they are
``estimated`` when communes holding more than half of their population are.

Suppression (callers without full detail on a commune — planners and coordinators outside their
regions): ``demand`` with 1..k-1 consultations and ``unmet`` whose numerator (when not zero) or
denominator is below k are ``null`` with ``"suppressed": "primary"``; their percentile is hidden
too and the row's score uses the other components with their weights renormalised, because
adjustable weights would otherwise let ``weights=unmet:1`` read the hidden percentile back.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select, union_all
from sqlalchemy.orm import aliased

from fieldsvc.areas.models import (
    VULNERABILITY_INDICATORS,
    Area,
    AreaIndicator,
    AreaPopulation,
    FacilityDistance,
)
from fieldsvc.caravans.models import Caravan, Site, caravan_specialty
from fieldsvc.errors import DomainError, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.insights import suppression
from fieldsvc.insights.queries import counted_lines
from fieldsvc.security import Principal

COMPONENTS = ("demand", "unmet", "access", "recency", "vulnerability")
LEVELS = ("commune", "province", "region")
DEFAULT_WINDOW_MONTHS = 24

ALL_SEXES = ("F", "M")
ALL_BANDS = ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")
# The people whose consultations a specialty's demand is measured against:
#   PED  children 0-14 (bands 0-4, 5-14), both sexes;
#   GYN  women 15-49 (bands 15-24, 25-49, women only);
#   OPH  people 50 and over (bands 50-64, 65+): cataract and presbyopia drive the queue;
#   every other specialty: everyone. A commune without population bands uses its legal population.
DEMAND_POPULATION: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PED": (ALL_SEXES, ("0-4", "5-14")),
    "GYN": (("F",), ("15-24", "25-49")),
    "OPH": (ALL_SEXES, ("50-64", "65+")),
}


def demand_population(specialty: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return DEMAND_POPULATION.get(specialty, (ALL_SEXES, ALL_BANDS))


@dataclass
class CommuneNeed:
    code: str
    name_fr: str
    name_ar: str
    province: str
    region: str
    population: int
    lat: float | None
    lon: float | None
    consultations: int = 0
    turned_away: int = 0
    referrals: int = 0
    caravan_days: int = 0
    people: float | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    estimated: dict[str, bool] = field(default_factory=dict)
    percentiles: dict[str, float] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    # Components resting on a cell the protected release hides (callers without full detail).
    masked: set[str] = field(default_factory=set)
    # What the component would be if unobserved: shown instead of a hidden value in plans.
    fallback: dict[str, float | None] = field(default_factory=dict)
    score: float | None = None


def parse_weights(text: str | None) -> dict[str, float]:
    """Read ``demand:1,unmet:2`` into weights summing to 1 (unnamed components weigh 1)."""
    weights = dict.fromkeys(COMPONENTS, 1.0)
    errors: list[str] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, number = part.partition(":")
        name = name.strip()
        if name not in COMPONENTS:
            errors.append(f"unknown component {name!r}; use {', '.join(COMPONENTS)}")
            continue
        try:
            value = float(number)
        except ValueError:
            errors.append(f"{part.strip()!r}: write component:number, e.g. unmet:2")
            continue
        if value < 0 or value != value or value == float("inf"):
            errors.append(f"{name}: a weight is a finite number of 0 or more")
            continue
        weights[name] = value
    total = sum(weights.values())
    if not errors and total <= 0:
        errors.append("at least one weight must be above 0")
    if errors:
        raise ValidationFailed("Invalid weights: " + "; ".join(errors) + ".",
                               errors={"weights": errors})
    return {name: value / total for name, value in weights.items()}


def months_before(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = (following - dt.timedelta(days=1)).day
    if (day + dt.timedelta(days=1)).day == 1:
        return dt.date(year, month, last)  # a month's end: whole months back
    return dt.date(year, month, min(day.day, last))


def percent_ranks(values: Sequence[float]) -> list[float]:
    """percent_rank with ties at their mean rank: (below + (equal - 1) / 2) / (n - 1)."""
    n = len(values)
    if n <= 1:
        return [0.0] * n
    order = sorted(range(n), key=lambda i: values[i])
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean_rank = (i + j) / 2  # zero-based: below = i, equal = j - i + 1
        for position in range(i, j + 1):
            ranks[order[position]] = mean_rank / (n - 1)
        i = j + 1
    return ranks


def weighted_median(pairs: Iterable[tuple[float, float]]) -> float | None:
    """The population-weighted median of (value, weight) pairs (weights of 0 count as 1)."""
    items = sorted((value, weight if weight and weight > 0 else 1.0) for value, weight in pairs)
    if not items:
        return None
    half = sum(weight for _, weight in items) / 2
    running = 0.0
    for value, weight in items:
        running += weight
        if running >= half:
            return value
    return items[-1][0]


Visits = dict[str, tuple[int, int, int, int, dt.date]]


def _visits(specialty: str, start: dt.date, end: dt.date) -> Visits:
    """Per commune: consultations, turned away, referrals, caravan-days, last day — one query."""
    lines = counted_lines()
    caravan = aliased(Caravan, name="visit_caravan")
    site_commune = select(Site.commune_code).where(Site.id == lines.c.site_id).scalar_subquery()
    commune = func.coalesce(site_commune, caravan.commune_code)

    def measure_sum(code: str) -> Any:
        return func.sum(case((lines.c.measure_code == code, lines.c.count), else_=0))

    per_day = (
        select(
            commune.label("commune"),
            lines.c.caravan_id,
            lines.c.day,
            measure_sum("consultations").label("consultations"),
            measure_sum("turned_away").label("turned_away"),
            measure_sum("referrals").label("referrals"),
        )
        .select_from(lines)
        .join(caravan, caravan.id == lines.c.caravan_id)
        .where(lines.c.specialty_code == specialty, lines.c.day >= start, lines.c.day <= end)
        .group_by(commune, lines.c.caravan_id, lines.c.day)
        .subquery("per_day")
    )
    statement = select(
        per_day.c.commune,
        func.sum(per_day.c.consultations),
        func.sum(per_day.c.turned_away),
        func.sum(per_day.c.referrals),
        func.count(),
        func.max(per_day.c.day),
    ).group_by(per_day.c.commune)
    return {
        row[0]: (int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), int(row[4]), _date(row[5]))
        for row in db.session.execute(statement)
    }


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _last_offered(specialty: str, end: dt.date) -> dict[str, dt.date]:
    """The last day a caravan planning the specialty worked in each commune (caravan or site)."""
    planned = select(Caravan.id, Caravan.commune_code, Caravan.last_day).join(
        caravan_specialty, caravan_specialty.c.caravan_id == Caravan.id
    ).where(caravan_specialty.c.specialty_code == specialty, Caravan.first_day <= end)
    planned_sub = planned.subquery("planned")
    places = union_all(
        select(planned_sub.c.commune_code.label("commune"),
               planned_sub.c.last_day.label("last_day")),
        select(Site.commune_code.label("commune"), planned_sub.c.last_day.label("last_day")).join(
            planned_sub, planned_sub.c.id == Site.caravan_id
        ),
    ).subquery("places")
    statement = select(places.c.commune, func.max(places.c.last_day)).group_by(places.c.commune)
    return {row[0]: min(_date(row[1]), end) for row in db.session.execute(statement)}


def _planned_days(specialty: str, start: dt.date, end: dt.date) -> dict[str, int]:
    """Caravan-days planned for the specialty per commune in the window (caravans are public)."""
    days: dict[str, int] = defaultdict(int)
    caravans = db.session.execute(
        select(Caravan.id, Caravan.commune_code, Caravan.first_day, Caravan.last_day)
        .join(caravan_specialty, caravan_specialty.c.caravan_id == Caravan.id)
        .where(caravan_specialty.c.specialty_code == specialty,
               Caravan.first_day <= end, Caravan.last_day >= start)
    ).all()
    site_communes: dict[int, set[str]] = defaultdict(set)
    for caravan_id, commune in db.session.execute(
        select(Site.caravan_id, Site.commune_code)
        .where(Site.caravan_id.in_([c.id for c in caravans]))
    ):
        site_communes[caravan_id].add(commune)
    for caravan_id, commune, first, last in caravans:
        length = (min(_date(last), end) - max(_date(first), start)).days + 1
        for place in {commune} | site_communes[caravan_id]:
            days[place] += max(length, 0)
    return days


ReleaseVisits = dict[str, tuple[int | None, int | None, int | None]]


def _release_visits(specialty: str, release: Any) -> ReleaseVisits:
    """Consultations, turned away and referrals per commune from the release (None: hidden)."""
    from fieldsvc.insights.release import TABLES_BY_NAME

    spec = TABLES_BY_NAME["commune.specialty.window"]
    visits: dict[str, list[int | None]] = defaultdict(lambda: [0, 0, 0])
    position = {"consultations": 0, "turned_away": 1, "referrals": 2}
    for key, measure, count, _status in release.cells(spec):
        if key[1] == specialty and measure in position:
            visits[key[0]][position[measure]] = count
    return {code: (v[0], v[1], v[2]) for code, v in visits.items()}


def needs_window(principal: Principal, window_months: int | None, as_of: dt.date | None
                 ) -> tuple[Any, dt.date, dt.date]:
    """The window a caller's needs use: any for an admin, the release's for everyone else."""
    if principal.role == "admin":
        end = as_of or dt.date.today()
        start = months_before(end, window_months or DEFAULT_WINDOW_MONTHS) + dt.timedelta(days=1)
        return None, start, end
    if window_months is not None or as_of is not None:
        message = ("The need window is the protected release's (the last eight quarters); "
                   "as_of and window_months are for administrators.")
        raise ValidationFailed(message, errors={"as_of": [message]})
    from fieldsvc.insights.release import current_release

    release = current_release()
    if release is None:
        raise DomainError("No protected release has been built yet; run "
                          "`flask --app wsgi release build`.", status=503,
                          title="Release not built yet")
    built = release.built_at.date()
    return release, release.window_start, min(release.window_end, max(built, release.window_start))


def commune_needs(specialty: str, *, window_months: int | None = None,
                  as_of: dt.date | None = None, principal: Principal | None = None,
                  ) -> tuple[list[CommuneNeed], dict[str, Any]]:
    """Compute every commune's components, estimates and percentiles (no weights yet).

    An admin's counts are exact over any window; everyone else's come from the protected
    release (exact only in communes they have full detail on), over the release's window.
    """
    principal = principal or Principal()
    release, start, end = needs_window(principal, window_months, as_of)
    window_days = (end - start).days + 1

    communes = [
        CommuneNeed(code=r.code, name_fr=r.name_fr, name_ar=r.name_ar,
                    province=r.province_code or r.code[:6], region=r.region_code,
                    population=r.population_legal or 0, lat=r.lat, lon=r.lon)
        for r in db.session.execute(
            select(Area.code, Area.name_fr, Area.name_ar, Area.province_code, Area.region_code,
                   Area.population_legal, Area.lat, Area.lon)
            .where(Area.level == "commune").order_by(Area.code)
        )
    ]
    sexes, bands = demand_population(specialty)
    people = dict(db.session.execute(
        select(AreaPopulation.area_code, func.sum(AreaPopulation.people))
        .where(AreaPopulation.sex.in_(sexes), AreaPopulation.age_band.in_(bands))
        .group_by(AreaPopulation.area_code)
    ).all())
    distances = dict(db.session.execute(
        select(FacilityDistance.commune_code, FacilityDistance.km)
        .where(FacilityDistance.specialty_code == specialty)
    ).all())
    indicators: dict[str, dict[str, float]] = defaultdict(dict)
    for code, name, value in db.session.execute(
        select(AreaIndicator.area_code, AreaIndicator.indicator, AreaIndicator.value)
        .where(AreaIndicator.indicator.in_(VULNERABILITY_INDICATORS))
    ):
        indicators[name][code] = value
    visits = _visits(specialty, start, end)
    released: ReleaseVisits = {}
    planned: dict[str, int] = {}
    if release is not None:
        released = _release_visits(specialty, release)
        planned = _planned_days(specialty, start, end)
    offered = _last_offered(specialty, end)

    indicator_percentiles: dict[str, dict[str, float]] = {}
    commune_codes = {c.code for c in communes}
    for name, by_code in indicators.items():
        codes = [code for code in by_code if code in commune_codes]
        ranks = percent_ranks([by_code[code] for code in codes])
        indicator_percentiles[name] = dict(zip(codes, ranks, strict=True))

    for commune in communes:
        consultations, turned, referrals, days, last_seen = visits.get(
            commune.code, (0, 0, 0, 0, None)
        )
        if release is not None and not suppression.full_detail(principal,
                                                                  regions=[commune.region]):
            counts = released.get(commune.code, (0, 0, 0))
            if counts[0] is None:
                commune.masked.update(("demand", "unmet"))
            elif None in counts:
                commune.masked.add("unmet")
            consultations, turned, referrals = (c or 0 for c in counts)
            days, last_seen = planned.get(commune.code, 0), None
        commune.consultations = consultations
        commune.turned_away, commune.referrals = turned, referrals
        commune.caravan_days = days
        pop = people.get(commune.code)
        commune.people = float(pop) if pop else (float(commune.population) or None)
        values = commune.values
        values["demand"] = (
            consultations / days / (commune.people / 1000.0)
            if days and commune.people and "demand" not in commune.masked else None
        )
        seen = consultations + turned
        values["unmet"] = (
            (turned + referrals) / seen if seen and "unmet" not in commune.masked else None
        )
        values["access"] = distances.get(commune.code)
        last = max(
            (d for d in (offered.get(commune.code), last_seen) if d is not None), default=None
        )
        if last is None or last < start:
            values["recency"] = float(window_days + 1)
        else:
            values["recency"] = float(max((end - last).days, 0))
        shares = [p[commune.code] for p in indicator_percentiles.values() if commune.code in p]
        values["vulnerability"] = sum(shares) / len(shares) if shares else None

    _estimate(communes, suppression.suppression_k())
    for commune in communes:
        for name in commune.masked:
            commune.estimated[name] = False  # hidden, not unobserved
    for name in COMPONENTS:
        ranks = percent_ranks([c.values[name] for c in communes])  # type: ignore[misc]
        for commune, rank in zip(communes, ranks, strict=True):
            commune.percentiles[name] = rank
    meta: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(),
                            "window_days": window_days}
    if release is not None:
        meta["release"] = release.info()
    return communes, meta


def _publishable(c: CommuneNeed, name: str, k: int) -> bool:
    """Whether a rate rests on enough people to be shown to anyone (see suppression)."""
    if name == "demand":
        return suppression.suppress_rate(c.consultations, c.people, k)[0]
    if name == "unmet":
        return suppression.suppress_rate(
            c.turned_away + c.referrals, c.consultations + c.turned_away, k
        )[0]
    return True


def _estimate(communes: list[CommuneNeed], k: int) -> None:
    """Fill missing components from the province, else region, else national weighted median.

    Only rates resting on at least k people enter the medians, so that an estimate shown for a
    never-visited neighbour can never repeat a hidden small commune's rate.
    """
    for name in ("demand", "unmet", "access", "vulnerability"):
        by_province: dict[str, list[tuple[float, float]]] = defaultdict(list)
        by_region: dict[str, list[tuple[float, float]]] = defaultdict(list)
        national: list[tuple[float, float]] = []
        for c in communes:
            value = c.values[name]
            if value is not None and _publishable(c, name, k):
                pair = (value, float(c.population))
                by_province[c.province].append(pair)
                by_region[c.region].append(pair)
                national.append(pair)
        medians = {
            "province": {k: weighted_median(v) for k, v in by_province.items()},
            "region": {k: weighted_median(v) for k, v in by_region.items()},
        }
        fallback = weighted_median(national)
        for c in communes:
            estimate = medians["province"].get(c.province)
            if estimate is None:
                estimate = medians["region"].get(c.region)
            if estimate is None:
                estimate = fallback
            c.fallback[name] = estimate
            c.estimated[name] = c.values[name] is None
            if c.values[name] is None:
                c.values[name] = estimate if estimate is not None else 0.0
        # recency is never estimated: "never offered" has its own value.
    for c in communes:
        c.estimated["recency"] = False


def _drivers(weights: dict[str, float], percentiles: dict[str, float | None]) -> list[str]:
    weighted = [
        (-(weights[name] * percentiles[name]), position, name)  # type: ignore[operator]
        for position, name in enumerate(COMPONENTS)
        if percentiles.get(name) is not None
    ]
    return [name for _, _, name in sorted(weighted)[:2]]


def _score(weights: dict[str, float], percentiles: dict[str, float | None]) -> float | None:
    used = {name: w for name, w in weights.items() if percentiles.get(name) is not None}
    total = sum(used.values())
    if total <= 0:
        return None
    return sum(w * percentiles[name] for name, w in used.items()) / total  # type: ignore[operator]


def _hide_small(commune: CommuneNeed, k: int) -> None:
    shown, _ = suppression.suppress_rate(commune.consultations, commune.people, k)
    if not shown and not commune.estimated["demand"]:
        commune.hidden.add("demand")
    shown, _ = suppression.suppress_rate(
        commune.turned_away + commune.referrals, commune.consultations + commune.turned_away, k
    )
    if not shown and not commune.estimated["unmet"]:
        commune.hidden.add("unmet")


def apply_view(communes: list[CommuneNeed], principal: Principal, weights: dict[str, float],
               k: int) -> None:
    """Hide what this caller may not see, re-rank without it, and score every commune.

    A hidden value must not steer anyone's percentile either: where it moved other communes'
    ranks, the visible percentiles would bound it between two published values. So, for each
    component something is hidden in, the percentiles this caller gets rank the hidden values at
    their commune's estimate (the median of publishable neighbours) instead.
    """
    for commune in communes:
        if not suppression.full_detail(principal, regions=[commune.region]):
            _hide_small(commune, k)
            commune.hidden |= commune.masked
    for name in {name for commune in communes for name in commune.hidden}:
        values = [
            (commune.fallback.get(name) or 0.0) if name in commune.hidden
            else commune.values[name]
            for commune in communes
        ]
        for commune, rank in zip(communes, percent_ranks(values), strict=True):  # type: ignore[arg-type]
            commune.percentiles[name] = rank
    for commune in communes:
        shown = {n: (None if n in commune.hidden else commune.percentiles[n]) for n in COMPONENTS}
        commune.score = _score(weights, shown)


def need_rows(specialty: str, *, level: str = "commune", weights: dict[str, float] | None = None,
              window_months: int | None = None, as_of: dt.date | None = None,
              principal: Principal | None = None, regions: Sequence[str] = (),
              provinces: Sequence[str] = ()) -> dict[str, Any]:
    """Rank communes, provinces or regions by need for one specialty."""
    weights = weights or parse_weights(None)
    principal = principal or Principal()
    communes, meta = commune_needs(specialty, window_months=window_months, as_of=as_of,
                                   principal=principal)
    k = suppression.suppression_k()
    apply_view(communes, principal, weights, k)

    if level == "commune":
        rows = [_commune_row(c, weights) for c in communes]
    else:
        rows = _grouped_rows(communes, level, weights)
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["code"]))
    for position, row in enumerate(rows, start=1):
        row["rank"] = position if row["score"] is not None else None
    if regions:
        rows = [r for r in rows if r["code"][:2] in set(regions)]
    if provinces:
        rows = [r for r in rows if r["code"][:6] in set(provinces) or r["code"] in set(provinces)]
    return {
        "level": level, "specialty": specialty,
        "window_months": window_months or DEFAULT_WINDOW_MONTHS,
        "weights": {n: round(w, 6) for n, w in weights.items()}, **meta,
        "rows": rows, "row_count": len(rows),
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _commune_row(c: CommuneNeed, weights: dict[str, float]) -> dict[str, Any]:
    components: dict[str, Any] = {}
    percentiles: dict[str, float | None] = {}
    for name in COMPONENTS:
        if name in c.hidden:
            components[name] = {"value": None, "percentile": None, "suppressed": "primary"}
            percentiles[name] = None
        else:
            components[name] = {"value": _round(c.values[name]),
                                "percentile": _round(c.percentiles[name])}
            percentiles[name] = c.percentiles[name]
        components[name]["estimated"] = c.estimated[name]
    return {
        "code": c.code, "name_fr": c.name_fr, "name_ar": c.name_ar,
        "score": _round(c.score), "rank": None,
        "estimated": any(c.estimated.values()),
        "drivers": _drivers(weights, percentiles), "components": components,
        "lat": c.lat, "lon": c.lon, "population": c.population,
    }


def _grouped_rows(communes: list[CommuneNeed], level: str,
                  weights: dict[str, float]) -> list[dict[str, Any]]:
    groups: dict[str, list[CommuneNeed]] = defaultdict(list)
    for c in communes:
        groups[c.province if level == "province" else c.region].append(c)
    names = {
        row.code: row
        for row in db.session.execute(
            select(Area.code, Area.name_fr, Area.name_ar, Area.lat, Area.lon, Area.population_legal)
            .where(Area.level == level)
        )
    }
    rows = []
    for code, members in groups.items():
        components: dict[str, Any] = {}
        percentiles: dict[str, float | None] = {}
        for name in COMPONENTS:
            visible = [c for c in members if name not in c.hidden]
            value = _weighted_mean((c.values[name], c.population) for c in visible)
            pct = _weighted_mean((c.percentiles[name], c.population) for c in visible)
            components[name] = {"value": _round(value), "percentile": _round(pct)}
            percentiles[name] = pct
        score = _weighted_mean(
            (c.score, c.population) for c in members if c.score is not None
        )
        population = sum(c.population for c in members)
        estimated_people = sum(c.population for c in members if any(c.estimated.values()))
        area = names.get(code)
        rows.append({
            "code": code,
            "name_fr": area.name_fr if area else code,
            "name_ar": area.name_ar if area else code,
            "score": _round(score), "rank": None,
            "estimated": estimated_people * 2 > population if population else True,
            "drivers": _drivers(weights, percentiles), "components": components,
            "lat": area.lat if area else None, "lon": area.lon if area else None,
            "population": population,
        })
    return rows


def _weighted_mean(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    total = 0.0
    weight_sum = 0.0
    for value, weight in pairs:
        if value is None:
            continue
        weight = weight if weight and weight > 0 else 1.0
        total += value * weight
        weight_sum += weight
    return total / weight_sum if weight_sum else None
