"""The next caravan's plan: where to go within reach, in which order, with which specialties.

* **Candidates**: communes with a point whose geodesic distance from the base is within the radius
  (a great-circle prefilter, then geopy's geodesic answer).
* **Ranking**: the need score of each specialty of the team (needs.py, the caller's own view of it),
  averaged with the team's doctors as weights; the best ``days × stops_per_day`` communes are kept.
* **Order**: nearest neighbour from the base, then 2-opt on the closed tour base → stops → base,
  on geodesic km; 2-opt only accepts a strictly shorter tour, so it never lengthens the route.
* **Expected patients** per specialty: the commune's ``demand`` component (consultations per
  caravan-day per 1,000 people of the specialty's ages, observed or estimated like never-visited
  communes) × those people / 1,000 × the caravan-days spent there, summed over the stops; against
  capacity = doctors × days × capacity_per_doctor_day (40 by default).
* **Advice**: ``add`` when expected patients exceed capacity by more than 20 %, ``drop`` when they
  would fill under half a doctor's days (or the team has no doctor for a specialty with demand of at
  least one doctor's capacity: then it is listed with ``add``), ``keep`` otherwise.

Suppression: expected patients are model estimates rounded to whole patients over a whole plan,
not cells of tallies. For a caller without full detail, a stop whose observed demand is suppressed
(1..k-1 consultations) contributes the national median of the demands that caller may see
instead, so no small count can be read back from a plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask_babel import gettext as _
from geopy.distance import geodesic, great_circle

from fieldsvc.areas.models import Area
from fieldsvc.areas.points import in_morocco, parse_point
from fieldsvc.errors import ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.insights import needs as needs_module
from fieldsvc.security import Principal

DEFAULT_CAPACITY = 40
# Specialties looked at when suggesting one the team lacks.
SUGGESTED_SPECIALTIES = ("GEN", "PED", "GYN", "OPH", "DEN")

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


def parse_base(base: str) -> tuple[Coordinate, dict[str, Any]]:
    """A commune code (its point) or a "lat, lon" / degrees-minutes-seconds text."""
    text = base.strip()
    area = db.session.get(Area, text)
    if area is not None:
        if area.lat is None or area.lon is None:
            raise ValidationFailed(
                f"{area.name_fr} ({area.code}) has no known point yet; "
                "give the base as 'lat, lon'.",
                errors={"base": ["this area has no point; give 'lat, lon'"]},
            )
        return (area.lat, area.lon), {"code": area.code, "name_fr": area.name_fr,
                                      "name_ar": area.name_ar}
    point = parse_point(text)
    if point is None:
        raise ValidationFailed(
            f"Could not read the base {text!r}: give a commune code like 08.587.01.13 or "
            "'30.33, -5.84'.",
            errors={"base": ["a commune code or 'lat, lon'"]},
        )
    lat, lon = point
    if not in_morocco(lat, lon):
        raise ValidationFailed(
            f"The base was read as {lat:.5f}, {lon:.5f}, outside Morocco.",
            errors={"base": [f"understood as {lat:.5f}, {lon:.5f}, outside Morocco"]},
        )
    return (lat, lon), {"code": None, "name_fr": None, "name_ar": None}


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


def make_plan(body: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """Choose, order and staff the stops of a caravan from a base."""
    base_point, base_info = parse_base(body["base"])
    radius = float(body["radius_km"])
    days = int(body["days"])
    stops_per_day = int(body.get("stops_per_day") or 1)
    capacity_per_day = float(body.get("capacity_per_doctor_day") or DEFAULT_CAPACITY)
    team: dict[str, int] = {code: int(n) for code, n in body["team"].items()}
    from fieldsvc.catalog.services import specialty_codes

    known = specialty_codes()
    unknown = sorted(set(team) - known)
    if unknown:
        raise ValidationFailed(f"Unknown specialties {', '.join(unknown)}.",
                               errors={"team": [f"unknown: {', '.join(unknown)}"]})
    window = body.get("window_months")

    by_specialty: dict[str, dict[str, needs_module.CommuneNeed]] = {}
    for code in sorted(set(team) | set(SUGGESTED_SPECIALTIES) & known):
        communes, _ = needs_module.commune_needs(code, window_months=window, principal=principal)
        k = _k()
        weights = needs_module.parse_weights(None)
        needs_module.apply_view(communes, principal, weights, k)
        by_specialty[code] = {c.code: c for c in communes}

    any_specialty = next(iter(by_specialty.values()))
    candidates = []
    for c in any_specialty.values():
        if c.lat is None or c.lon is None:
            continue
        if great_circle(base_point, (c.lat, c.lon)).kilometers > radius * 1.01 + 1:
            continue
        distance = km(base_point, (c.lat, c.lon))
        if distance > radius:
            continue
        doctors = sum(team.values()) or 1
        score = sum(
            (by_specialty[s][c.code].score or 0.0) * n for s, n in team.items()
        ) / doctors
        candidates.append((score, c.code, distance))
    candidates.sort(key=lambda item: (-item[0], item[1]))
    chosen = candidates[: max(days * stops_per_day, 1)]

    points: list[Coordinate] = [base_point] + [
        (any_specialty[code].lat, any_specialty[code].lon) for _, code, _ in chosen  # type: ignore[misc]
    ]
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

    stops = []
    previous = 0
    per_stop_days = 1.0 / stops_per_day
    for position, index in enumerate(order):
        score, code, from_base = chosen[index - 1]
        c = any_specialty[code]
        stops.append({
            "code": code, "name_fr": c.name_fr, "name_ar": c.name_ar,
            "lat": c.lat, "lon": c.lon,
            "km_from_previous": round(distance(previous, index), 1),
            "km_from_base": round(from_base, 1),
            "day": min(position // stops_per_day + 1, days),
            "need_score": round(score, 4),
            "estimated": any(any(by_specialty[s][code].estimated.values()) for s in team),
        })
        previous = index
    total_km = tour_length(order, distance) if order else 0.0

    specialties: dict[str, Any] = {}
    for code, communes in by_specialty.items():
        # A hidden demand is replaced by the national median of the demands this caller may see,
        # never by a median its own small count could dominate.
        safe = needs_module.weighted_median(
            (c.values["demand"], float(c.population)) for c in communes.values()
            if "demand" not in c.hidden and not c.estimated["demand"]
            and c.values["demand"] is not None
        ) or 0.0
        expected = 0.0
        for stop in stops:
            c = communes[stop["code"]]
            rate = safe if "demand" in c.hidden else (c.values.get("demand") or 0.0)
            expected += rate * (c.people or 0.0) / 1000.0 * per_stop_days
        doctors = team.get(code, 0)
        capacity = doctors * days * capacity_per_day
        expected_int = int(round(expected))
        if doctors == 0:
            if expected_int >= days * capacity_per_day:
                specialties[code] = {"doctors": 0, "expected_patients": expected_int,
                                     "capacity": 0, "advice": "add"}
            continue
        if expected > capacity * 1.2:
            advice = "add"
        elif expected < days * capacity_per_day * 0.5:
            advice = "drop"
        else:
            advice = "keep"
        specialties[code] = {"doctors": doctors, "expected_patients": expected_int,
                             "capacity": int(round(capacity)), "advice": advice}
    return {
        "base": {**base_info, "lat": base_point[0], "lon": base_point[1]},
        "radius_km": radius, "days": days, "stops_per_day": stops_per_day,
        "capacity_per_doctor_day": capacity_per_day,
        "candidates": len(candidates),
        "stops": stops,
        "total_km": round(total_km, 1),
        "nearest_neighbour_km": round(tour_length(greedy, distance), 1) if greedy else 0.0,
        "specialties": specialties,
    }


def _k() -> int:
    from fieldsvc.insights import suppression

    return suppression.suppression_k()


def as_geojson(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan as a FeatureCollection: the base, each stop, and the route line."""
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
