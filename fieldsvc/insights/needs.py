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
the value, else its region's, else the nation's, and is flagged ``estimated``; while nothing has
been observed anywhere, demand is a first guess that follows the ages of the commune's relevant
people (``age_factors``), and so does every estimated demand (the median of the province, region
or nation × how much the commune's own relevant ages consult): each specialty's own population
moves its score, observed or not. Only rates that
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
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import gettext
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
from fieldsvc.errors import ValidationFailed
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


# Consultations per caravan-day per 1,000 people of the relevant ages, used only while no caravan
# anywhere has been observed for the specialty (a fresh install): a first guess from a typical
# caravan day (about 1,000 people in a commune of 10,000: general medicine ~40 %, ophthalmology
# ~20 % from the 15 % aged 50+, paediatrics ~12 % from the 27 % under 15, gynaecology ~8 % from the
# 26 % who are women of 15-49, dentistry and dermatology ~8 % each). It is the national rate; each
# commune's own estimate follows the ages of its relevant people (``age_factors``), as estimates
# from observed medians do, so that the demand component, and through it the score, follows the
# specialty's own population structure: two specialties never share a ranking by accident. The
# first observed caravan replaces it by the observed medians.
PRIOR_DEMAND: dict[str, float] = {
    "GEN": 40.0, "OPH": 130.0, "PED": 44.0, "GYN": 30.0, "DEN": 8.0, "DER": 8.0,
}
DEFAULT_PRIOR_DEMAND = 3.0

# The relevant people at which a commune's own ages weigh as much as the nation's in its prior.
PRIOR_CREDIBILITY = 1000.0

# How much more one person of an age band consults than another, within a specialty's relevant
# people (first guesses, relative; only their ratios matter): cataract grows steeply after 65,
# the youngest children and the women of 25-49 (pregnancies) consult most, general medicine is
# U-shaped, teeth and chronic diseases follow their own ages. A specialty not named here uses the
# general medicine profile; a band not named weighs 1.
AGE_PROFILE: dict[str, dict[str, float]] = {
    "OPH": {"50-64": 1.0, "65+": 2.5},
    "PED": {"0-4": 1.5, "5-14": 1.0},
    "GYN": {"15-24": 0.7, "25-49": 1.0},
    "GEN": {"0-4": 1.4, "5-14": 0.7, "15-24": 0.6, "25-49": 0.8, "50-64": 1.2, "65+": 1.6},
    "DEN": {"0-4": 0.3, "5-14": 1.4, "15-24": 1.0, "25-49": 1.0, "50-64": 1.1, "65+": 0.8},
    "DER": {"0-4": 1.2, "5-14": 1.1, "15-24": 1.3, "25-49": 0.9, "50-64": 0.9, "65+": 1.0},
    "CAR": {"0-4": 0.05, "5-14": 0.05, "15-24": 0.2, "25-49": 0.6, "50-64": 1.5, "65+": 2.2},
    "END": {"0-4": 0.05, "5-14": 0.1, "15-24": 0.2, "25-49": 0.8, "50-64": 1.6, "65+": 1.5},
    "RHU": {"0-4": 0.02, "5-14": 0.1, "15-24": 0.3, "25-49": 0.7, "50-64": 1.4, "65+": 1.8},
    "ENT": {"0-4": 1.6, "5-14": 1.3, "15-24": 0.6, "25-49": 0.6, "50-64": 0.8, "65+": 1.1},
    "PSY": {"0-4": 0.1, "5-14": 0.5, "15-24": 1.2, "25-49": 1.1, "50-64": 0.9, "65+": 0.8},
    "PNE": {"0-4": 1.2, "5-14": 0.6, "15-24": 0.4, "25-49": 0.6, "50-64": 1.3, "65+": 1.9},
}


def demand_population(specialty: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return DEMAND_POPULATION.get(specialty, (ALL_SEXES, ALL_BANDS))


def prior_demand(specialty: str) -> float:
    return PRIOR_DEMAND.get(specialty, DEFAULT_PRIOR_DEMAND)


def age_factors(specialty: str, bands_by_commune: dict[str, dict[str, float]],
                communes: Iterable[str]) -> dict[str, float]:
    """How much more each commune's relevant people consult than the nation's, by their ages.

    The relative rate of a commune's relevant people (AGE_PROFILE, weighted by their bands) over
    the nation's. Its own ages count as much as the people they rest on allow
    (n / (n + PRIOR_CREDIBILITY)), the rest is the typical commune's (the median of their
    factors; a commune without bands takes it whole): the ages of 20 women in a hamlet are noise,
    and must put it in the middle of the ranks, neither first nor last. The nation's own rate would
    not do: its cities' ages weigh on it, and a hamlet pulled to it ranked fourth.
    """
    profile = AGE_PROFILE.get(specialty) or AGE_PROFILE["GEN"]
    codes = list(communes)
    nation: dict[str, float] = defaultdict(float)
    for code in codes:
        for band, people in bands_by_commune.get(code, {}).items():
            nation[band] += people

    def rate(by_band: dict[str, float]) -> float | None:
        people = sum(by_band.values())
        if people <= 0:
            return None
        return sum(profile.get(band, 1.0) * n for band, n in by_band.items()) / people

    national = rate(nation)
    own = {code: rate(bands_by_commune.get(code, {})) for code in codes}
    known = [value / national for value in own.values() if value is not None and national]
    if not known:
        return dict.fromkeys(codes, 1.0)
    typical = statistics.median(known)
    factors = {}
    for code in codes:
        value = own[code]
        if value is None:
            factors[code] = typical
            continue
        people = sum(bands_by_commune[code].values())
        trust = people / (people + PRIOR_CREDIBILITY)
        factors[code] = typical + (value / national - typical) * trust
    return factors


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
    # Where an estimate came from (province, region, national, prior) and why it was needed.
    estimated_from: dict[str, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)
    score: float | None = None
    # Consultations to expect per caravan-day: relevant people × the demand this caller may see.
    expected_patients: float = 0.0
    # How much more this commune's relevant people consult than the nation's, by their ages.
    age_factor: float = 1.0

    def shown_demand(self) -> float:
        """The demand rate this caller may use: a hidden one is replaced by its estimate."""
        if "demand" in self.hidden:
            return self.fallback.get("demand") or 0.0
        return self.values.get("demand") or 0.0


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
            errors.append(gettext("unknown component %(name)r; use %(components)s", name=name,
                                  components=", ".join(COMPONENTS)))
            continue
        try:
            value = float(number)
        except ValueError:
            errors.append(gettext("%(part)r: write component:number, e.g. unmet:2",
                                  part=part.strip()))
            continue
        if value < 0 or value != value or value == float("inf"):
            errors.append(gettext("%(name)s: a weight is a finite number of 0 or more",
                                  name=name))
            continue
        weights[name] = value
    total = sum(weights.values())
    if not errors and total <= 0:
        errors.append(gettext("at least one weight must be above 0"))
    if errors:
        raise ValidationFailed(gettext("Invalid weights: %(errors)s.", errors="; ".join(errors)),
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
    """Per commune: consultations, turned away, referrals, caravan-days, last day — one query.

    Read from the summary rollup by day and caravan (exact: a caravan-day is a group whose raw
    line count adds up to more than zero), or from the raw lines when ``SUMMARY_ROLLUP`` is off.
    """
    from fieldsvc.insights import rollup

    if current_app.config.get("SUMMARY_ROLLUP", True):
        lines = rollup.day_lines()
        commune = lines.c.commune_code
        source = select().select_from(lines)
        having = [func.sum(lines.c.line_count) > 0]
    else:
        lines = counted_lines()
        caravan = aliased(Caravan, name="visit_caravan")
        site_commune = select(Site.commune_code).where(
            Site.id == lines.c.site_id).scalar_subquery()
        commune = func.coalesce(site_commune, caravan.commune_code)
        source = select().select_from(lines).join(caravan, caravan.id == lines.c.caravan_id)
        having = []

    def measure_sum(code: str) -> Any:
        return func.sum(case((lines.c.measure_code == code, lines.c.count), else_=0))

    per_day = (
        source.add_columns(
            commune.label("commune"),
            lines.c.caravan_id,
            lines.c.day,
            measure_sum("consultations").label("consultations"),
            measure_sum("turned_away").label("turned_away"),
            measure_sum("referrals").label("referrals"),
        )
        .where(lines.c.specialty_code == specialty, lines.c.day >= start, lines.c.day <= end)
        .group_by(commune, lines.c.caravan_id, lines.c.day)
        .having(*having)
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
        message = gettext("The need window is the protected release's (the last eight "
                          "quarters); as_of and window_months are for administrators.")
        raise ValidationFailed(message, errors={"as_of": [message]})
    from fieldsvc.insights.release import current_release

    release = current_release()  # an empty release (version 0) before the first build
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
    bands_by_commune: dict[str, dict[str, float]] = defaultdict(dict)
    for code, band, count in db.session.execute(
        select(AreaPopulation.area_code, AreaPopulation.age_band, func.sum(AreaPopulation.people))
        .where(AreaPopulation.sex.in_(sexes), AreaPopulation.age_band.in_(bands))
        .group_by(AreaPopulation.area_code, AreaPopulation.age_band)
    ):
        bands_by_commune[code][band] = float(count or 0)
    people = {code: sum(by_band.values()) for code, by_band in bands_by_commune.items()}
    # A commune without census bands counts the nation's share of the relevant ages of its legal
    # population (all of it when no commune has bands).
    everyone = db.session.scalar(select(func.sum(AreaPopulation.people))) or 0
    relevant_share = sum(people.values()) / everyone if everyone else 1.0
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
        commune.people = float(pop) if pop else (
            float(commune.population) * relevant_share or None)
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

    for commune, factor in zip(communes, age_factors(specialty, bands_by_commune,
                                                     [c.code for c in communes]).values(),
                               strict=True):
        commune.age_factor = factor
    _estimate(communes, suppression.suppression_k(), prior_demand(specialty))
    facilities_known = bool(distances)
    for commune in communes:
        for name, estimated in commune.estimated.items():
            if estimated:
                commune.why[name] = _why(name, commune, facilities_known)
    for commune in communes:
        for name in commune.masked:
            commune.estimated[name] = False  # hidden, not unobserved
            commune.why.pop(name, None)
            commune.estimated_from.pop(name, None)
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


def _why(name: str, commune: CommuneNeed, facilities_known: bool) -> str:
    """The reason a component had to be estimated, as a stable code."""
    if name in ("demand", "unmet"):
        return "not_visited" if not commune.caravan_days else "nothing_seen"
    if name == "access":
        if commune.lat is None:
            return "no_point"
        return "no_able_facility" if facilities_known else "no_facility_data"
    return "no_census_indicator"


def _estimate(communes: list[CommuneNeed], k: int, prior: float | None = None) -> None:
    """Fill missing components from the province, else region, else national weighted median.

    ``prior``: the national first-guess demand, used when no demand was observed anywhere. An
    estimated demand is multiplied by the commune's ``age_factor`` (how much its own relevant
    ages consult): without it every unvisited commune of a province would tie, and the order
    within the province would be the access and vulnerability every specialty shares.

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
        use_prior = fallback is None and name == "demand" and prior is not None
        for c in communes:
            estimate, source = medians["province"].get(c.province), "province"
            if estimate is None:
                estimate, source = medians["region"].get(c.region), "region"
            if estimate is None and use_prior:
                estimate, source = prior, "prior"
            if estimate is None:
                estimate, source = fallback, "national"
            if estimate is not None and name == "demand":
                estimate *= c.age_factor
            c.fallback[name] = estimate
            if c.values[name] is None:
                c.estimated_from[name] = source if estimate is not None else "none"
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
        commune.expected_patients = (commune.people or 0.0) * commune.shown_demand() / 1000.0


# --- The ranking a caller gets: typed rows that insights.schemas dump -------------------------

SORTS = ("score", "expected_patients")


@dataclass
class NeedsQuery:
    """What a caller asks of the ranking (loaded by ``NeedsArgs``)."""

    specialty: str
    level: str = "commune"
    weights: dict[str, float] = field(default_factory=lambda: parse_weights(None))
    regions: list[str] = field(default_factory=list)
    provinces: list[str] = field(default_factory=list)
    sort: str = "score"
    limit: int | None = None
    window_months: int | None = None
    as_of: dt.date | None = None


@dataclass
class ComponentInfo:
    """What a component measures, in the caller's language, and its unit."""

    label: str
    unit: str


@dataclass
class Component:
    value: float | None
    percentile: float | None
    estimated: bool
    suppressed: str | None = None
    estimated_from: str | None = None
    why: str | None = None  # a stable code: not_visited, nothing_seen, no_facility_data…
    reason: str | None = None  # the same, in words, in the caller's language


@dataclass
class NeedRow:
    code: str
    name_fr: str
    name_ar: str
    name: str
    level: str
    population: int
    relevant_population: float | None
    lat: float | None
    lon: float | None
    score: float | None
    expected_patients: float
    estimated: bool
    drivers: list[str]
    driver_labels: list[str]
    components: dict[str, Component]
    province: str | None = None
    province_name_fr: str | None = None
    province_name_ar: str | None = None
    region: str | None = None
    region_name_fr: str | None = None
    region_name_ar: str | None = None
    rank: int | None = None
    national_rank: int | None = None


@dataclass
class NeedRanking:
    specialty: str
    specialty_label: str
    level: str
    sort: str
    window_months: int
    weights: dict[str, float]
    start: dt.date
    end: dt.date
    window_days: int
    components: dict[str, ComponentInfo]
    rows: list[NeedRow]
    national_row_count: int
    release: dict[str, Any] | None = None

    @property
    def row_count(self) -> int:
        return len(self.rows)


def relevant_people_label(specialty: str) -> str:
    """Who a specialty's demand is counted against, in the caller's language."""
    from flask_babel import gettext as _

    labels = {"PED": _("children under 15"), "GYN": _("women aged 15 to 49"),
              "OPH": _("people aged 50 and over")}
    return labels.get(specialty, _("people of all ages"))


def component_labels(specialty: str) -> dict[str, ComponentInfo]:
    """Each component's name and unit, in the caller's language."""
    from flask_babel import gettext as _

    people = relevant_people_label(specialty)
    return {
        "demand": ComponentInfo(
            _("Demand"),
            _("consultations per caravan-day per 1,000 %(people)s", people=people)),
        "unmet": ComponentInfo(
            _("Unmet demand"),
            _("share of people turned away or referred (0 to 1)")),
        "access": ComponentInfo(
            _("Distance to care"),
            _("km to the nearest facility able to treat this specialty")),
        "recency": ComponentInfo(
            _("Time since a caravan"),
            _("days since a caravan last offered this specialty (window + 1 = never)")),
        "vulnerability": ComponentInfo(
            _("Vulnerability"),
            _("mean percentile of census indicators: paved road, running water, literacy "
              "(0 to 1)")),
    }


def estimate_reason(why: str, source: str | None, aged: bool = False) -> str:
    """Why a component was estimated and from what, in words (``aged``: demand adjusted for the
    ages of the commune's relevant people)."""
    from flask_babel import gettext as _

    whys = {
        "not_visited": _("No caravan offered this specialty here in the window."),
        "nothing_seen": _("Caravans came but recorded no consultation for this specialty."),
        "no_point": _("This commune has no known point, so no distance could be measured."),
        "no_facility_data": _("No health facility list has been imported yet."),
        "no_able_facility": _("No imported facility can treat this specialty."),
        "no_census_indicator": _("The census gives none of the indicators for this commune."),
    }
    sources = {
        "province": _("Estimated from the province's communes (population-weighted median)."),
        "region": _("Estimated from the region's communes (population-weighted median)."),
        "national": _("Estimated from all communes (population-weighted median)."),
        "prior": _("Nothing has been observed anywhere yet: a first guess from a typical "
                   "caravan day, following the ages of the specialty's own people here."),
        "none": _("Nothing to estimate from: counted as zero."),
    }
    text = whys.get(why, why)
    if source in sources:
        text = f"{text} {sources[source]}"
    if aged and source in ("province", "region", "national"):
        adjusted = _("Adjusted for the ages of the specialty's own people here.")
        text = f"{text} {adjusted}"
    return text


def _local_name(name_fr: str | None, name_ar: str | None) -> str:
    from flask_babel import get_locale

    locale = get_locale()
    if locale is not None and locale.language == "ar" and name_ar:
        return name_ar
    return name_fr or name_ar or ""


def need_ranking(query: NeedsQuery, principal: Principal | None = None, *,
                 only: str | None = None) -> NeedRanking:
    """Rank communes, provinces or regions by need for one specialty, with the reasons.

    ``only``: a commune code whose row alone is wanted (the map's panel): its ranks are those of
    the whole ranking, but no other row is built.
    """
    from fieldsvc.catalog.services import specialty_codes

    if query.specialty not in specialty_codes():
        raise ValidationFailed(gettext("Unknown specialty %(code)s.", code=query.specialty),
                               errors={"specialty": [gettext("unknown specialty %(code)s",
                                                             code=query.specialty)]})
    if query.sort not in SORTS:
        choices = ", ".join(SORTS)
        raise ValidationFailed(gettext("Sort by one of %(choices)s.", choices=choices),
                               errors={"sort": [gettext("Must be one of: %(choices)s.",
                                                        choices=choices)]})
    principal = principal or Principal()
    communes, meta = commune_needs(query.specialty, window_months=query.window_months,
                                   as_of=query.as_of, principal=principal)
    apply_view(communes, principal, query.weights, suppression.suppression_k())
    names = _area_names()
    labels = component_labels(query.specialty)
    reasons: dict[tuple[str, str | None, bool], str] = {}

    def order(score: float | None, expected: float, code: str) -> tuple[Any, ...]:
        if query.sort == "expected_patients":
            return (-expected, score is None, -(score or 0.0), code)
        # Equal scores: the larger need first (a fresh install ties every score).
        return (score is None, -(score or 0.0), -expected, code)

    if query.level == "commune" and only is not None:
        keys = sorted((order(_round(c.score), round(c.expected_patients, 1), c.code), c)
                      for c in communes)
        rows = []
        national = filtered = 0
        for _key, c in keys:
            national += 1
            filtered += _in_filter(c.code, query)
            if c.code == only:
                if _in_filter(c.code, query):  # as the whole ranking: none outside the filter
                    row = _commune_row(c, query.weights, names, labels, reasons)
                    if row.score is not None:
                        row.national_rank, row.rank = national, filtered
                    rows = [row]
                break
        national_count = len(communes)
    else:
        if query.level == "commune":
            rows = [_commune_row(c, query.weights, names, labels, reasons) for c in communes]
        else:
            rows = _grouped_rows(communes, query.level, query.weights, names, labels)
        rows.sort(key=lambda row: order(row.score, row.expected_patients, row.code))
        for position, row in enumerate(rows, start=1):
            row.national_rank = position if row.score is not None else None
        national_count = len(rows)
        rows = [row for row in rows if _in_filter(row.code, query)]
        for position, row in enumerate(rows, start=1):
            row.rank = position if row.score is not None else None
        if query.limit:
            rows = rows[: query.limit]
    from fieldsvc.catalog.models import Specialty

    specialty = db.session.get(Specialty, query.specialty)
    return NeedRanking(
        specialty=query.specialty, specialty_label=_specialty_label(specialty),
        level=query.level, sort=query.sort,
        window_months=query.window_months or DEFAULT_WINDOW_MONTHS,
        weights={n: round(w, 6) for n, w in query.weights.items()},
        start=dt.date.fromisoformat(meta["from"]), end=dt.date.fromisoformat(meta["to"]),
        window_days=meta["window_days"], release=meta.get("release"),
        components=labels, rows=rows, national_row_count=national_count,
    )


def _in_filter(code: str, query: NeedsQuery) -> bool:
    """Whether an area is inside the query's regions and provinces (all of them when none)."""
    if query.regions and code[:2] not in query.regions:
        return False
    return not query.provinces or code[:6] in query.provinces or code in query.provinces


def _specialty_label(specialty: Any) -> str:
    from flask_babel import get_locale

    if specialty is None:
        return ""
    locale = get_locale()
    language = locale.language if locale is not None else "fr"
    return getattr(specialty, f"label_{language}", None) or specialty.label_fr


def need_rows(specialty: str, **options: Any) -> dict[str, Any]:
    """The ranking as the API's JSON (for Python callers that want the dumped answer)."""
    from fieldsvc.insights.schemas import NeedRankingSchema

    principal = options.pop("principal", None)
    query = NeedsQuery(specialty=specialty, **options)
    return NeedRankingSchema().dump(need_ranking(query, principal))


def _area_names() -> dict[str, tuple[str, str]]:
    return {
        row.code: (row.name_fr, row.name_ar)
        for row in db.session.execute(
            select(Area.code, Area.name_fr, Area.name_ar).where(Area.level != "commune"))
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _place(row: NeedRow, names: dict[str, tuple[str, str]], province: str | None,
           region: str | None) -> None:
    if province:
        row.province = province
        row.province_name_fr, row.province_name_ar = names.get(province, (province, province))
    if region:
        row.region = region
        row.region_name_fr, row.region_name_ar = names.get(region, (region, region))


def _commune_row(c: CommuneNeed, weights: dict[str, float], names: dict[str, tuple[str, str]],
                 labels: dict[str, ComponentInfo],
                 reasons: dict[tuple[str, str | None, bool], str]) -> NeedRow:
    components: dict[str, Component] = {}
    percentiles: dict[str, float | None] = {}
    for name in COMPONENTS:
        if name in c.hidden:
            component = Component(None, None, c.estimated[name], suppressed="primary")
            percentiles[name] = None
        else:
            component = Component(_round(c.values[name]), _round(c.percentiles[name]),
                                  c.estimated[name])
            percentiles[name] = c.percentiles[name]
        if c.estimated[name] and name in c.why:
            component.why = c.why[name]
            component.estimated_from = c.estimated_from.get(name)
            # Translated once per ranking: a sentence per (why, source), not per commune.
            said = (component.why, component.estimated_from,
                    name == "demand" and c.age_factor != 1.0)
            if said not in reasons:
                reasons[said] = estimate_reason(*said)
            component.reason = reasons[said]
        components[name] = component
    drivers = _drivers(weights, percentiles)
    row = NeedRow(
        code=c.code, name_fr=c.name_fr, name_ar=c.name_ar, name=_local_name(c.name_fr, c.name_ar),
        level="commune", population=c.population, relevant_population=_round(c.people, 0),
        lat=c.lat, lon=c.lon, score=_round(c.score),
        expected_patients=round(c.expected_patients, 1),
        estimated=any(c.estimated.values()), drivers=drivers,
        driver_labels=[labels[d].label for d in drivers], components=components,
    )
    _place(row, names, c.province, c.region)
    return row


def _grouped_rows(communes: list[CommuneNeed], level: str, weights: dict[str, float],
                  names: dict[str, tuple[str, str]],
                  labels: dict[str, ComponentInfo]) -> list[NeedRow]:
    groups: dict[str, list[CommuneNeed]] = defaultdict(list)
    for c in communes:
        groups[c.province if level == "province" else c.region].append(c)
    areas = {
        row.code: row
        for row in db.session.execute(
            select(Area.code, Area.name_fr, Area.name_ar, Area.lat, Area.lon, Area.population_legal)
            .where(Area.level == level)
        )
    }
    rows = []
    for code, members in groups.items():
        components: dict[str, Component] = {}
        percentiles: dict[str, float | None] = {}
        for name in COMPONENTS:
            visible = [c for c in members if name not in c.hidden]
            value = _weighted_mean((c.values[name], c.population) for c in visible)
            pct = _weighted_mean((c.percentiles[name], c.population) for c in visible)
            estimated_people = sum(c.population for c in members if c.estimated.get(name))
            total_people = sum(c.population for c in members)
            components[name] = Component(
                _round(value), _round(pct),
                estimated_people * 2 > total_people if total_people else True)
            percentiles[name] = pct
        score = _weighted_mean(
            (c.score, c.population) for c in members if c.score is not None
        )
        population = sum(c.population for c in members)
        estimated_people = sum(c.population for c in members if any(c.estimated.values()))
        area = areas.get(code)
        drivers = _drivers(weights, percentiles)
        row = NeedRow(
            code=code,
            name_fr=area.name_fr if area else code,
            name_ar=area.name_ar if area else code,
            name=_local_name(area.name_fr, area.name_ar) if area else code,
            level=level, population=population,
            relevant_population=_round(sum(c.people or 0.0 for c in members), 0),
            lat=area.lat if area else None, lon=area.lon if area else None,
            score=_round(score),
            expected_patients=round(sum(c.expected_patients for c in members), 1),
            estimated=estimated_people * 2 > population if population else True,
            drivers=drivers, driver_labels=[labels[d].label for d in drivers],
            components=components,
        )
        _place(row, names, None, code[:2] if level == "province" else None)
        rows.append(row)
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


@dataclass
class NearestFacility:
    name: str
    category: str
    commune_code: str
    km: float


def nearest_facility(commune_code: str, specialty: str) -> NearestFacility | None:
    """The facility able to treat the specialty that is nearest to a commune (public lists)."""
    from fieldsvc.areas.models import Facility

    row = db.session.execute(
        select(Facility.name, Facility.category, Facility.commune_code, FacilityDistance.km)
        .join(Facility, Facility.id == FacilityDistance.facility_id)
        .where(FacilityDistance.commune_code == commune_code,
               FacilityDistance.specialty_code == specialty)
    ).first()
    if row is None:
        return None
    return NearestFacility(row.name, row.category, row.commune_code, round(row.km, 1))


@dataclass
class CaravanVisit:
    id: int
    title: str
    first_day: dt.date
    last_day: dt.date
    status: str
    specialties: list[str]


def caravans_reaching(commune_code: str, limit: int = 20) -> list[CaravanVisit]:
    """The caravans that worked in a commune (its own or one of its sites), latest first.

    Caravans are public metadata (title, dates, specialties): no count is read here.
    """
    at_site = select(Site.caravan_id).where(Site.commune_code == commune_code)
    caravans = list(db.session.scalars(
        select(Caravan)
        .where((Caravan.commune_code == commune_code) | Caravan.id.in_(at_site))
        .order_by(Caravan.first_day.desc(), Caravan.id.desc()).limit(limit)
    ))
    return [CaravanVisit(c.id, c.title, c.first_day, c.last_day, c.status,
                         list(c.specialties)) for c in caravans]
