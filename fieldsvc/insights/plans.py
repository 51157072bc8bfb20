"""The next caravan's plan: where to go within reach, in which order, with which specialties.

* **Candidates**: communes with a point whose geodesic distance from the base is within the radius
  (a great-circle prefilter, then geopy's geodesic answer).
* **Expected patients** of a specialty at a stop: the commune's ``expected_patients`` per
  caravan-day from needs.py (the specialty's relevant people × its demand rate, observed or
  estimated, in the caller's own view) × the caravan-days spent there (1 / ``stops_per_day``).
* **Choice**: stops are chosen for the specialties the team brings, by patients reached per
  kilometre. A stop reaches, for each specialty of the team, its expected patients up to what
  the team's doctors of that specialty can see there; that is weighted by need (× (0.5 + the
  doctor-weighted need score), so the neediest commune counts three times the least needy) and
  divided by the kilometres it adds to the route (cheapest insertion into the round trip, great
  circle, plus 10 km for the day's local travel). The best stop is added, and again, until every
  day has its stops.
* **Order**: nearest neighbour from the base (``nearest_neighbour_km``), then 2-opt on the closed
  tour base → stops → base (``total_km``), on geodesic km; 2-opt only accepts a strictly shorter
  tour, so ``total_km`` ≤ ``nearest_neighbour_km``, equal when the greedy order was already best.
* **Advice** per specialty, against capacity = doctors × days × ``capacity_per_doctor_day`` (40):
  ``add`` when expected patients exceed capacity by more than 20 % (or the team has no doctor of
  a specialty that would fill one doctor's days); ``reduce`` when they would fill under half of
  the capacity and fewer doctors would do; ``drop`` when they would fill under half of one
  doctor's days and the team brings other specialties (never the team's only specialty while
  patients are expected); ``keep`` otherwise. Each comes with its numbers and a sentence.

Suppression: expected patients are model estimates rounded over a whole plan, never cells of
tallies. For a caller without full detail, a stop whose observed demand is hidden contributes
its estimate (the median of the publishable demands around it), never its own small count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from geopy.distance import geodesic, great_circle
from sqlalchemy import select

from fieldsvc.areas.models import Area
from fieldsvc.areas.points import in_morocco, parse_point
from fieldsvc.areas.services import communes_named
from fieldsvc.errors import ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.insights import needs as needs_module
from fieldsvc.insights import suppression
from fieldsvc.security import Principal

DEFAULT_CAPACITY = 40
# Specialties looked at when suggesting one the team lacks.
SUGGESTED_SPECIALTIES = ("GEN", "PED", "GYN", "OPH", "DEN")
ADVICE = ("add", "keep", "reduce", "drop")
LOCAL_TRAVEL_KM = 10.0

Coordinate = tuple[float, float]


def plan_slot() -> Any:
    """Hold one of the process's PLAN_CONCURRENCY plan slots (a context manager), or answer
    503 with Retry-After when none frees within PLAN_WAIT_SECONDS: plans never take every
    thread of the single SQLite worker, so /healthz and the phones' submissions still answer."""
    import threading
    from contextlib import contextmanager

    from flask import current_app

    from fieldsvc.errors import DomainError

    gate = current_app.extensions.get("fieldsvc_plan_slots")
    if gate is None:
        gate = current_app.extensions.setdefault(
            "fieldsvc_plan_slots",
            threading.BoundedSemaphore(max(1, int(current_app.config["PLAN_CONCURRENCY"]))))
    wait = float(current_app.config["PLAN_WAIT_SECONDS"])

    @contextmanager
    def slot() -> Any:
        if not gate.acquire(timeout=wait):
            raise DomainError(_("Other plans are being computed; try again in a few seconds."),
                              status=503, title="Busy", headers={"Retry-After": "5"},
                              retry_after=5)
        try:
            yield
        finally:
            gate.release()

    return slot()



@dataclass
class PlanRequest:
    """What a caller asks of a plan (loaded by ``PlanSchema``)."""

    base: str
    radius_km: float
    days: int
    team: dict[str, int]
    capacity_per_doctor_day: float = DEFAULT_CAPACITY
    stops_per_day: int = 1
    window_months: int | None = None


@dataclass
class PlanBase:
    lat: float
    lon: float
    code: str | None = None
    name_fr: str | None = None
    name_ar: str | None = None


@dataclass
class PlanStop:
    code: str
    name_fr: str
    name_ar: str
    lat: float
    lon: float
    day: int
    km_from_previous: float
    km_from_base: float
    need_score: float
    estimated: bool
    expected_patients: dict[str, int]
    patients_reached: int
    province: str | None = None
    province_name_fr: str | None = None
    province_name_ar: str | None = None


@dataclass
class SpecialtyAdvice:
    doctors: int
    expected_patients: int
    capacity: int
    advice: str
    suggested_doctors: int
    advice_label: str
    reason: str


@dataclass
class Plan:
    base: PlanBase
    radius_km: float
    days: int
    stops_per_day: int
    capacity_per_doctor_day: float
    candidates: int
    stops: list[PlanStop]
    total_km: float
    nearest_neighbour_km: float
    specialties: dict[str, SpecialtyAdvice] = field(default_factory=dict)


def parse_base(base: str) -> tuple[Coordinate, PlanBase]:
    """A commune code, an unambiguous commune name, or a "lat, lon" / DMS text."""
    text = base.strip()
    area = db.session.get(Area, text)
    if area is None:
        named = communes_named(text)
        if len(named) == 1:
            area = named[0]
        elif len(named) > 1:
            choices = ", ".join(f"{a.name_fr} ({a.code})" for a in named[:8])
            raise ValidationFailed(
                _("Several communes are named %(name)s: give the code of one of %(choices)s.",
                  name=text, choices=choices),
                errors={"base": [_("ambiguous name: %(choices)s", choices=choices)]},
            )
    if area is not None:
        if area.lat is None or area.lon is None:
            raise ValidationFailed(
                _("%(name)s (%(code)s) has no known point yet; give the base as 'lat, lon'.",
                  name=area.name_fr, code=area.code),
                errors={"base": [_("this area has no point; give 'lat, lon'")]},
            )
        return (area.lat, area.lon), PlanBase(area.lat, area.lon, area.code, area.name_fr,
                                              area.name_ar)
    point = parse_point(text)
    if point is None:
        raise ValidationFailed(
            _("Could not read the base %(text)r: give a commune name or code like Zagora or "
              "08.587.01.13, or a point like '30.33, -5.84'.", text=text),
            errors={"base": [_("a commune name or code, or 'lat, lon'")]},
        )
    lat, lon = point
    if not in_morocco(lat, lon):
        where = f"{lat:.5f}, {lon:.5f}"
        raise ValidationFailed(
            _("The base was read as %(point)s, outside Morocco.", point=where),
            errors={"base": [_("understood as %(point)s, outside Morocco", point=where)]},
        )
    return (lat, lon), PlanBase(lat, lon)


def km(a: Coordinate, b: Coordinate) -> float:
    return geodesic(a, b).kilometers


def tour_length(order: Sequence[int], distance: Callable[[int, int], float]) -> float:
    """Length of the closed tour 0 → order… → 0 (0 is the base)."""
    path = [0, *order, 0]
    return sum(distance(path[i], path[i + 1]) for i in range(len(path) - 1))


def nearest_neighbour(count: int, distance: Callable[[int, int], float]) -> list[int]:
    """Visit stops 1..count greedily from the base 0."""
    left = set(range(1, count + 1))
    order: list[int] = []
    here = 0
    while left:
        step = min(left, key=lambda j: (distance(here, j), j))
        order.append(step)
        left.remove(step)
        here = step
    return order


def two_opt(order: list[int], distance: Callable[[int, int], float]) -> list[int]:
    """Reverse segments while that strictly shortens the closed tour through the base."""
    path = [0, *order, 0]
    improved = True
    while improved:
        improved = False
        for i in range(1, len(path) - 2):
            for j in range(i + 1, len(path) - 1):
                a, b, c, d = path[i - 1], path[i], path[j], path[j + 1]
                delta = distance(a, c) + distance(b, d) - distance(a, b) - distance(c, d)
                if delta < -1e-9:
                    path[i:j + 1] = reversed(path[i:j + 1])
                    improved = True
    return path[1:-1]


def make_plan(request: PlanRequest, principal: Principal) -> Plan:
    """Choose, order and staff the stops of a caravan from a base."""
    base_point, base = parse_base(request.base)
    days, radius = request.days, request.radius_km
    stops_per_day = request.stops_per_day or 1
    per_day = request.capacity_per_doctor_day or DEFAULT_CAPACITY
    team = {code: int(n) for code, n in request.team.items()}
    from fieldsvc.catalog.services import specialty_codes

    known = specialty_codes()
    unknown = sorted(set(team) - known)
    if unknown:
        raise ValidationFailed(
            _("Unknown specialties %(codes)s.", codes=", ".join(unknown)),
            errors={"team": [_("unknown: %(codes)s", codes=", ".join(unknown))]})
    if not team:
        raise ValidationFailed(_("Name at least one specialty in the team, e.g. {\"OPH\": 2}."),
                               errors={"team": [_("at least one specialty")]})

    by_specialty: dict[str, dict[str, needs_module.CommuneNeed]] = {}
    weights = needs_module.parse_weights(None)
    k = suppression.suppression_k()
    for code in sorted(set(team) | set(SUGGESTED_SPECIALTIES) & known):
        communes, _meta = needs_module.commune_needs(code, window_months=request.window_months,
                                                     principal=principal)
        needs_module.apply_view(communes, principal, weights, k)
        by_specialty[code] = {c.code: c for c in communes}

    any_specialty = next(iter(by_specialty.values()))
    per_stop_days = 1.0 / stops_per_day
    doctors_total = sum(team.values())
    candidates: list[tuple[str, Coordinate, float, float, float]] = []
    for c in any_specialty.values():
        if c.lat is None or c.lon is None:
            continue
        if great_circle(base_point, (c.lat, c.lon)).kilometers > radius * 1.01 + 1:
            continue
        from_base = km(base_point, (c.lat, c.lon))
        if from_base > radius:
            continue
        need = sum((by_specialty[s][c.code].score or 0.0) * max(n, 1) for s, n in team.items()) \
            / sum(max(n, 1) for n in team.values())
        reached = sum(
            min(by_specialty[s][c.code].expected_patients, n * per_day) * per_stop_days
            for s, n in team.items()
        )
        candidates.append((c.code, (c.lat, c.lon), from_base, need, reached))

    chosen = _choose(candidates, base_point, days * stops_per_day,
                     use_patients=doctors_total > 0)
    points: list[Coordinate] = [base_point] + [point for _, point, _, _, _ in chosen]
    cache: dict[tuple[int, int], float] = {}

    def distance(i: int, j: int) -> float:
        if i == j:
            return 0.0
        key = (min(i, j), max(i, j))
        if key not in cache:
            cache[key] = km(points[key[0]], points[key[1]])
        return cache[key]

    greedy = nearest_neighbour(len(chosen), distance)
    order = two_opt(list(greedy), distance)

    names = {row.code: (row.name_fr, row.name_ar) for row in db.session.execute(
        select(Area.code, Area.name_fr, Area.name_ar)
        .where(Area.code.in_(sorted({c[0][:6] for c in chosen}))))}
    stops: list[PlanStop] = []
    previous = 0
    for position, index in enumerate(order):
        code, point, from_base, need, reached = chosen[index - 1]
        c = any_specialty[code]
        province = names.get(code[:6], (None, None))
        stops.append(PlanStop(
            code=code, name_fr=c.name_fr, name_ar=c.name_ar, lat=point[0], lon=point[1],
            day=min(position // stops_per_day + 1, days),
            km_from_previous=round(distance(previous, index), 1),
            km_from_base=round(from_base, 1), need_score=round(need, 4),
            estimated=any(any(by_specialty[s][code].estimated.values()) for s in team),
            expected_patients={
                s: int(round(by_specialty[s][code].expected_patients * per_stop_days))
                for s in team},
            patients_reached=int(round(reached)),
            province=code[:6], province_name_fr=province[0], province_name_ar=province[1],
        ))
        previous = index
    total_km = tour_length(order, distance) if order else 0.0

    specialties: dict[str, SpecialtyAdvice] = {}
    for code, communes in by_specialty.items():
        expected = sum(communes[stop.code].expected_patients * per_stop_days for stop in stops)
        advice = advise(code, expected, team.get(code, 0), days, per_day,
                        others=sum(n for s, n in team.items() if s != code))
        if advice is not None:
            specialties[code] = advice
    return Plan(
        base=base, radius_km=radius, days=days, stops_per_day=stops_per_day,
        capacity_per_doctor_day=per_day, candidates=len(candidates), stops=stops,
        total_km=round(total_km, 1),
        nearest_neighbour_km=round(tour_length(greedy, distance), 1) if greedy else 0.0,
        specialties=specialties,
    )


def _choose(candidates: list[tuple[str, Coordinate, float, float, float]], base: Coordinate,
            count: int, *, use_patients: bool) -> list[tuple[str, Coordinate, float, float, float]]:
    """Add, one at a time, the stop reaching the most need-weighted patients per added km."""
    left = list(candidates)
    tour: list[Coordinate] = []
    chosen: list[tuple[str, Coordinate, float, float, float]] = []

    def gc(a: Coordinate, b: Coordinate) -> float:
        return great_circle(a, b).kilometers

    while left and len(chosen) < count:
        ring = [base, *tour, base]
        best: tuple[float, str] | None = None
        best_at = (0, 0)
        for position, (code, point, _from_base, need, reached) in enumerate(left):
            added, slot = min(
                (gc(ring[i], point) + gc(point, ring[i + 1]) - gc(ring[i], ring[i + 1]), i)
                for i in range(len(ring) - 1)
            )
            value = (reached if use_patients else 1.0) * (0.5 + need)
            priority = value / (max(added, 0.0) + LOCAL_TRAVEL_KM)
            if best is None or (priority, code) > best:
                best, best_at = (priority, code), (position, slot)
        position, slot = best_at
        picked = left.pop(position)
        tour.insert(slot, picked[1])
        chosen.append(picked)
    return chosen


def advise(code: str, expected: float, doctors: int, days: int, per_day: float, *,
           others: int) -> SpecialtyAdvice | None:
    """Whether the team should add, keep, reduce or drop a specialty, with its numbers."""
    expected_int = int(round(expected))
    one_doctor = days * per_day
    capacity = doctors * one_doctor
    needed = max(1, math.ceil(expected / one_doctor)) if expected > 0 else 0
    numbers = {"expected": expected_int, "capacity": int(round(capacity)), "doctors": doctors,
               "days": days, "per_day": int(round(per_day)), "needed": needed}
    if doctors == 0:
        if expected < one_doctor:
            return None
        advice = "add"
        reason = _("About %(expected)s patients are expected and the team has no doctor for them;"
                   " one doctor sees %(per_day)s a day: %(needed)s doctor(s) for %(days)s days.",
                   **numbers)
    elif expected > capacity * 1.2:
        advice = "add"
        reason = _("About %(expected)s patients are expected for a capacity of %(capacity)s "
                   "(%(doctors)s doctor(s) × %(days)s days × %(per_day)s a day): bring "
                   "%(needed)s doctor(s).", **numbers)
    elif expected_int == 0 or (expected < one_doctor * 0.5 and others > 0):
        advice, needed = "drop", 0
        numbers["needed"] = 0
        reason = _("About %(expected)s patients are expected, under half of what one doctor sees"
                   " in %(days)s days (%(per_day)s a day): these doctors would be more useful in"
                   " another specialty.", **numbers)
    elif expected < capacity * 0.5 and needed < doctors:
        advice = "reduce"
        reason = _("About %(expected)s patients are expected for a capacity of %(capacity)s "
                   "(%(doctors)s doctor(s) × %(days)s days × %(per_day)s a day): %(needed)s "
                   "doctor(s) would be enough.", **numbers)
    else:
        advice, needed = "keep", doctors
        numbers["needed"] = doctors
        reason = _("About %(expected)s patients are expected for a capacity of %(capacity)s "
                   "(%(doctors)s doctor(s) × %(days)s days × %(per_day)s a day): the team fits.",
                   **numbers)
    return SpecialtyAdvice(doctors=doctors, expected_patients=expected_int,
                           capacity=int(round(capacity)), advice=advice,
                           suggested_doctors=needed, advice_label=advice_label(advice),
                           reason=reason)


def advice_label(advice: str) -> str:
    labels = {"add": _("Add doctors"), "keep": _("Keep"), "reduce": _("Fewer doctors"),
              "drop": _("Drop")}
    return labels[advice]


def as_geojson(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan (as dumped) as a FeatureCollection: the base, each stop, and the route line."""
    base = plan["base"]
    features: list[dict[str, Any]] = [{
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [base["lon"], base["lat"]]},
        "properties": {"role": "base", "code": base.get("code"), "name_fr": base.get("name_fr")},
    }]
    for number, stop in enumerate(plan["stops"], start=1):
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [stop["lon"], stop["lat"]]},
            "properties": {"role": "stop", "order": number,
                           **{k: v for k, v in stop.items() if k not in {"lat", "lon"}}},
        })
    line = [[base["lon"], base["lat"]]] + [[s["lon"], s["lat"]] for s in plan["stops"]] + [
        [base["lon"], base["lat"]]
    ]
    features.append({
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": line},
        "properties": {"role": "route", "total_km": plan["total_km"]},
    })
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {k: v for k, v in plan.items() if k not in {"stops"}},
    }
