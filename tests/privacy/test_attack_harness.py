"""The attack harness: everything one caller without full detail can fetch, as a linear program.

For each kind of caller (a planner whose organization ran no caravan, a coordinator of another
region, an anonymous caller, and an insider who also reads its own organization's lines exactly)
it asks every query the API allows over a seeded season full of small cells — summaries by every
allowed grouping, filter and period, the public summary, the commune tables the needs read, and
the needs themselves for every specialty, level, area filter, sort and weighting — and turns each
answer into constraints on the unknown counts: published cells and totals are equalities, rows
left out are zeros, and each need rate shown (demand, unmet) bounds the counts it was computed
from (to its four published decimals). The unknowns are what an attacker cannot see: every
specialty × measure × sex × age band of each commune and quarter where a caravan worked
(caravans are public). Each hidden cell is then minimised and maximised with HiGHS; none may be
narrowed below k. The oracle knows nothing of how the release is built.

What the linear program cannot hold — percentiles, ranks, scores, drivers, expected patients,
plans, exports and pages — are functions of the published cells and public metadata:
`test_derived_answers.py` recomputes every one of them after changing every counted line (without
rebuilding the release) and finds them unchanged, so they add nothing to what is learnt here.
Province and region need rows are checked here to be the population-weighted means of the
commune rows shown, so they add nothing either.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from fieldsvc.extensions import db as _db
from tests.factories import auth, make_areas, make_caravan, make_tally, make_user, publish

K = 5
SEED = 20261129
SPECIALTIES = ("GEN", "OPH", "PED", "DEN")
MEASURES = ("consultations", "turned_away")
SEXES = ("F", "M")
BANDS = ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")
COMMUNES = ("08.587.01.13", "08.587.09.23", "08.577.01.11", "07.351.02.07")
TODAY = dt.date(2026, 11, 29)


def _quarter(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


INSIDER = "Wahat Al-Khair"


def _seed_season(db) -> list[tuple[str, dt.date, str]]:
    """Caravans of two associations over two years, most cells small.

    Returns (commune, day, organizer) of each caravan."""
    rng = random.Random(SEED)
    print(f"attack harness seed {SEED}")
    make_areas()
    days = []
    for number in range(8):
        commune = COMMUNES[number % len(COMMUNES)]
        first = dt.date(2025, 1, 10) + dt.timedelta(days=83 * number)
        organizer = INSIDER if number % 2 == 0 else "Zuhur"
        caravan = make_caravan(commune, first_day=first, last_day=first, sites=(),
                               specialties=SPECIALTIES, organizers=(organizer,))
        days.append((commune, first, organizer))
        for specialty in rng.sample(SPECIALTIES, 3):
            lines = []
            for measure, sex, band in itertools.product(MEASURES, SEXES, BANDS):
                if rng.random() < 0.35:
                    count = rng.choice((1, 2, 3, 4, 6, 9, 15, 30))
                    lines.append((measure, sex, band, None, count))
            if lines:
                make_tally(caravan, day=first, specialty=specialty, lines=lines,
                           status="approved")
    db.session.commit()
    publish(TODAY)
    return days


class Attacker:
    """The unknown counts and everything learnt about them.

    An insider (a planner of an organization that ran caravans) knows its own lines exactly:
    the unknowns are then the others' parts of each atom, where other organizations worked, and
    every published figure is read minus its own part.
    """

    def __init__(self, places: list[tuple[str, dt.date]],
                 known: dict[tuple, int] | None = None):
        self.atoms = [
            (commune, specialty, measure, sex, band, _quarter(day))
            for commune, day in sorted(set(places))
            for specialty, measure, sex, band in itertools.product(
                SPECIALTIES, MEASURES, SEXES, BANDS)
        ]
        self.known = known or {}
        self.equalities: dict[frozenset[int], float] = {}
        self.zeros: set[int] = set()
        self.hidden: set[frozenset[int]] = set()
        self.bounds: list[tuple[dict[int, float], float]] = []  # sum(coef * atom) <= upper
        self.answers = 0

    def matching(self, wanted: dict[str, object], start: dt.date | None,
                 end: dt.date | None) -> list[int]:
        return [index for index, atom in enumerate(self.atoms)
                if self._matches(atom, wanted, start, end)]

    @staticmethod
    def _matches(atom: tuple, wanted: dict[str, object], start: dt.date | None,
                 end: dt.date | None) -> bool:
        commune, specialty, measure, sex, band, quarter = atom
        values = {"region": commune[:2], "province": commune[:6], "commune": commune,
                  "specialty": specialty, "measure": measure, "sex": sex,
                  "age_band": band, "quarter": quarter, "year": quarter[:4]}
        if any(values[name] != value for name, value in wanted.items()):
            return False
        year, number = int(quarter[:4]), int(quarter[-1])
        first = dt.date(year, 3 * number - 2, 1)
        return (start is None or first >= start) and (end is None or first <= end)

    def own(self, wanted: dict[str, object], start: dt.date | None, end: dt.date | None) -> int:
        """The insider's own part of a figure (zero for an outsider)."""
        return sum(value for atom, value in self.known.items()
                   if self._matches(atom, wanted, start, end))

    def learn(self, body: dict, filters: dict[str, object], start, end) -> None:
        """Add one summary answer: its cells, its total, and the zeros it implies."""
        self.answers += 1
        measure = body["measure"]
        base = dict(filters)
        if measure:
            base["measure"] = measure[0]
        everything = set(self.matching(base, start, end))
        covered: set[int] = set()
        for row in body["rows"]:
            wanted = dict(base)
            wanted.update({d: row[d] for d in body["by"]})
            members = frozenset(self.matching(wanted, start, end))
            covered |= members
            if row["count"] is None:
                if members:  # without others' atoms, the others' part is zero: nothing to learn
                    self.hidden.add(members)
            else:
                self.equalities[members] = row["count"] - self.own(wanted, start, end)
        self.zeros |= everything - covered  # rows left out are zeros
        if body.get("total") is not None and measure:
            self.equalities[frozenset(everything)] = body["total"] - self.own(base, start, end)

    def bound(self, terms: list[tuple[float, dict[str, object]]], start, end, low: float,
              high: float) -> None:
        """Add low <= sum(coef * figure) <= high, each figure a sum of atoms matching its
        filters (an insider's own part of each figure moves to the bounds)."""
        coefficients: dict[int, float] = {}
        own = 0.0
        for coefficient, wanted in terms:
            for index in self.matching(wanted, start, end):
                coefficients[index] = coefficients.get(index, 0.0) + coefficient
            own += coefficient * self.own(wanted, start, end)
        if high < np.inf:
            self.bounds.append((coefficients, high - own))
        if low > -np.inf:
            self.bounds.append(({i: -c for i, c in coefficients.items()}, own - low))

    def pinned(self, k: int = K) -> list[tuple[list[tuple], float, float]]:
        """Hidden cells whose possible range, given everything learnt, is narrower than k."""
        free = [i for i in range(len(self.atoms)) if i not in self.zeros]
        column = {atom: position for position, atom in enumerate(free)}
        rows, cols, values = [], [], []
        for row, (members, value) in enumerate(self.equalities.items()):
            for member in members:
                if member in column:
                    rows.append(row)
                    cols.append(column[member])
            values.append(value)
        matrix = csr_matrix((np.ones(len(rows)), (rows, cols)),
                            shape=(len(values), len(free)))
        limits: dict[str, object] = {}
        if self.bounds:
            brows, bcols, bvalues, uppers = [], [], [], []
            for row, (coefficients, upper) in enumerate(self.bounds):
                for member, coefficient in coefficients.items():
                    if member in column:
                        brows.append(row)
                        bcols.append(column[member])
                        bvalues.append(coefficient)
                uppers.append(upper)
            limits = {"A_ub": csr_matrix((bvalues, (brows, bcols)),
                                         shape=(len(uppers), len(free))), "b_ub": uppers}
        found = []
        for members in self.hidden:
            objective = np.zeros(len(free))
            inside = [column[m] for m in members if m in column]
            if not inside:
                continue  # every atom of it is known to be zero: there is no count to learn
            objective[inside] = 1.0
            low = linprog(objective, A_eq=matrix, b_eq=values, bounds=(0, None), method="highs",
                          **limits)
            high = linprog(-objective, A_eq=matrix, b_eq=values, bounds=(0, None),
                           method="highs", **limits)
            assert low.status == 0, low.message
            top = np.inf if high.status == 3 else -high.fun
            if top < 1 - 1e-6:
                continue  # only zero fits: nobody else counted anything there (zeros are public)
            if top - low.fun < k - 1e-6:
                found.append(([self.atoms[m] for m in sorted(members)][:3], low.fun, top))
        return found


def _periods() -> list[tuple[dt.date | None, dt.date | None]]:
    periods: list[tuple[dt.date | None, dt.date | None]] = [(None, None)]
    for year in (2025, 2026):
        periods.append((dt.date(year, 1, 1), dt.date(year, 12, 31)))
        for number in range(1, 5):
            start = dt.date(year, 3 * number - 2, 1)
            end = (dt.date(year + (number == 4), (3 * number) % 12 + 1, 1)
                   - dt.timedelta(days=1))
            periods.append((start, end))
    return periods


def _queries():
    """Every summary a caller without full detail may try (the refused ones answer 422)."""
    areas = [("region", {}), ("province", {}), (None, {"region": "08"}),
             ("province", {"region": "08"}), (None, {"province": "08.587"}),
             ("region", {"region": "07"})]
    others = [[], ["specialty"], ["sex", "age_band"], ["specialty", "sex", "age_band"]]
    filters_extra = [{}, {"specialty": "OPH"}, {"sex": "F", "age_band": "50-64"}]
    for (area, area_filter), dims, extra, measure in itertools.product(
            areas, others, filters_extra, MEASURES):
        if set(extra) & set(dims):
            continue
        by = ([area] if area else []) + dims
        for unit in (None, "quarter", "year"):
            full_by = by + ([unit] if unit else [])
            for start, end in ([(None, None)] if unit else _periods()):
                yield full_by, {**area_filter, **extra, "measure": measure}, start, end


NEED_SPECIALTIES = (*SPECIALTIES, "GYN")  # GYN: a specialty nobody counted
NEED_FILTERS = ("", "&region=08", "&region=07&sort=expected_patients", "&province=08.587",
                "&weights=demand:1,unmet:1,access:0,recency:0,vulnerability:0",
                "&weights=unmet:1,demand:0&sort=expected_patients")
RATE_SLACK = 0.5e-4 + 1e-9  # rates are published to four decimals


def _learn_needs(client, header, attacker: Attacker, season, window) -> int:
    """Ask the needs for every specialty, level, area filter, sort and weighting; add what each
    demand and unmet rate shown says about the counts; check that the province and region rows
    are means of the commune rows (so they say nothing more). Returns the answers asked."""
    asked = 0
    communes: dict[tuple[str, str], dict] = {}  # (specialty, code) -> the commune row
    grouped: list[tuple[str, dict]] = []
    for specialty, level, extra in itertools.product(NEED_SPECIALTIES,
                                                     ("commune", "province", "region"),
                                                     NEED_FILTERS):
        response = client.get(f"/api/v1/needs?specialty={specialty}&level={level}{extra}",
                              headers=header)
        assert response.status_code == 200, response.json
        body = response.json
        assert body["release"]["window"] == {"from": window[0].isoformat(),
                                             "to": window[1].isoformat()}
        asked += 1
        for row in body["rows"]:
            if level != "commune":
                grouped.append((specialty, row))
                continue
            seen = communes.setdefault((specialty, row["code"]), row)
            # Filters, sorts and weights select and order rows: a commune's components are the
            # same in every answer, so one set of constraints holds them all.
            assert seen["components"] == row["components"], (specialty, row["code"])
    for (specialty, code), row in communes.items():
        _learn_rates(attacker, specialty, code, row, season, window)
    for specialty, row in grouped:
        members = [r for (s, c), r in communes.items()
                   if s == specialty and c.startswith(row["code"])]
        for name in ("demand", "unmet"):
            shown = [(r["components"][name]["value"], r["population"] or 1) for r in members
                     if r["components"][name]["value"] is not None]
            value = row["components"][name]["value"]
            if not shown:
                assert value is None, (specialty, row["code"], name)
                continue
            mean = sum(v * w for v, w in shown) / sum(w for _, w in shown)
            assert value == pytest.approx(mean, abs=2 * RATE_SLACK), (specialty, row["code"])
    return asked


def _learn_rates(attacker: Attacker, specialty: str, code: str, row: dict, season,
                 window) -> None:
    """demand = consultations / caravan-days / (people / 1000) and unmet = (turned away +
    referrals) / (consultations + turned away), over the window: bounds on the counts."""
    demand, unmet = row["components"]["demand"], row["components"]["unmet"]
    # Caravan-days planned for the specialty (public): every seeded caravan is one day and plans
    # every specialty. The seeded areas have no census bands: the people are the population.
    days = sum(1 for commune, day, _ in season
               if commune == code and specialty in SPECIALTIES and window[0] <= day <= window[1])
    assert row["relevant_population"] == row["population"]
    people = row["population"] / 1000.0
    consultations = {"commune": code, "specialty": specialty, "measure": "consultations"}
    turned = {**consultations, "measure": "turned_away"}
    if demand["value"] is not None and not demand["estimated"]:
        assert days, (specialty, code)
        scale = days * people
        attacker.bound([(1.0, consultations)], *window, (demand["value"] - RATE_SLACK) * scale,
                       (demand["value"] + RATE_SLACK) * scale)
        attacker.answers += 1
    if unmet["value"] is not None and not unmet["estimated"]:
        # No referrals were counted: the release shows none, so the numerator is turned away.
        high, low = unmet["value"] + RATE_SLACK, unmet["value"] - RATE_SLACK
        # turned - high * (consultations + turned) <= 0 <= turned - low * (c + t)
        attacker.bound([(1.0 - high, turned), (-high, consultations)], *window, -np.inf, 0.0)
        attacker.bound([(1.0 - low, turned), (-low, consultations)], *window, 0.0, np.inf)
        attacker.answers += 1


def _ask(client, header, path, by, filters, start, end):
    params = dict(filters)
    if by:
        params["by"] = ",".join(by)
    if start:
        params["from"], params["to"] = start.isoformat(), end.isoformat()
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return client.get(f"{path}?{query}", headers=header)


def _own_lines(client, header) -> dict[tuple, int]:
    """Everything the insider sees exactly: its organization's lines, atom by atom."""
    organization = client.get("/api/v1/me", headers=header).json["organization"]["id"]
    body = client.get("/api/v1/summary?by=commune,specialty,measure,sex,age_band,quarter"
                      f"&organization={organization}", headers=header).json
    assert body["full_detail"] is True
    return {(row["commune"], row["specialty"], row["measure"], row["sex"], row["age_band"],
             row["quarter"]): row["count"] for row in body["rows"] if row["measure"] in MEASURES}


@pytest.mark.parametrize("caller", ["planner", "coordinator", "anonymous", "insider"])
def test_no_hidden_cell_is_pinned_across_every_answer(pg_app, caller):
    """Run once, on PostgreSQL: the release is built from the same summary on both engines."""
    client = pg_app.test_client()
    season = _seed_season(_db)
    headers = {
        "planner": lambda: auth(make_user("planner", organization="Autre association")),
        "coordinator": lambda: auth(make_user("coordinator", regions=["01"])),
        "anonymous": lambda: {},
        "insider": lambda: auth(make_user("planner", organization=INSIDER)),
    }
    header = headers[caller]()
    if caller == "insider":
        known = _own_lines(client, header)
        assert sum(known.values()) > 0
        places = [(commune, day) for commune, day, organizer in season if organizer != INSIDER]
    else:
        known, places = {}, [(commune, day) for commune, day, _ in season]
    attacker = Attacker(places, known)
    refused = 0
    if caller != "anonymous":
        for by, filters, start, end in _queries():
            response = _ask(client, header, "/api/v1/summary", by, filters, start, end)
            if response.status_code == 422:
                refused += 1
                continue
            assert response.status_code == 200, (by, filters, response.json)
            assert response.json["full_detail"] is False
            attacker.learn(response.json, {k: v for k, v in filters.items() if k != "measure"},
                           start, end)
        release = client.get("/api/v1/summary?by=region&measure=consultations",
                             headers=header).json["release"]
        window = (dt.date.fromisoformat(release["window"]["from"]),
                  dt.date.fromisoformat(release["window"]["to"]))
        for measure in ("consultations", "turned_away"):
            for specialty in SPECIALTIES:
                body = _ask(client, header, "/api/v1/summary", ["commune"],
                            {"specialty": specialty, "measure": measure}, *window).json
                attacker.learn(body, {"specialty": specialty}, *window)
        needs_asked = _learn_needs(client, header, attacker, season, window)
        assert needs_asked == len(NEED_SPECIALTIES) * 3 * len(NEED_FILTERS)
        assert attacker.bounds, "the needs must show some rates for the harness to mean anything"
    for measure in MEASURES:
        for start, end in _periods():
            response = _ask(client, header, "/api/v1/public/summary", [], {"measure": measure},
                            start, end)
            assert response.status_code == 200, response.json
            attacker.learn(response.json, {}, start, end)
    assert attacker.answers > (20 if caller == "anonymous" else 200), (attacker.answers, refused)
    assert attacker.hidden, "the season must have hidden cells for the harness to mean anything"
    pinned = attacker.pinned()
    print(f"{caller}: {attacker.answers} answers, {len(attacker.equalities)} equalities, "
          f"{len(attacker.bounds)} rate bounds, {refused} refused; "
          f"{len(pinned)} of {len(attacker.hidden)} hidden cells pinned")
    assert not pinned, f"{len(pinned)} of {len(attacker.hidden)} hidden cells pinned: {pinned[:3]}"


def test_a_rate_that_narrows_a_hidden_cell_is_caught():
    """The oracle itself: a published rate resting on a hidden cell would pin it (no database)."""
    attacker = Attacker([("08.587.01.13", dt.date(2025, 1, 10))])
    everything = frozenset(attacker.matching({}, None, None))
    attacker.equalities[everything] = 40
    dentistry = {"commune": "08.587.01.13", "specialty": "DEN", "measure": "consultations"}
    attacker.hidden.add(frozenset(attacker.matching(dentistry, None, None)))
    assert not attacker.pinned()  # anything from 0 to 40
    turned = {**dentistry, "measure": "turned_away"}
    # unmet = turned / (consultations + turned) = 0.5, and turned away is 3: dentistry is 3
    attacker.equalities[frozenset(attacker.matching(turned, None, None))] = 3
    attacker.bound([(0.5, turned), (-0.5, dentistry)], None, None, -1e-4, 1e-4)
    [(_, low, high)] = attacker.pinned()
    assert low == pytest.approx(3, abs=1e-3) and high == pytest.approx(3, abs=1e-3)
