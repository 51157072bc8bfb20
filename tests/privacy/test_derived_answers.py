"""Everything computed from counts, for a caller without full detail, comes from the release alone.

Needs (every component, percentile, score, rank, expected patients, at every level), plans,
exports, reports and pages are computed from counts. For a caller without full detail, each of
them must be a function of the protected release's *published* cells and of public metadata
(caravans, areas, census): then it adds no constraint the release audit did not see, and the
attack harness's linear program over the published cells already covers it.

The proof here is by recomputation: build the release, record every such answer, then change
every counted line (triple each count, add lines, delete others) without rebuilding the release.
The release stores no hidden value (a hidden cell is stored as null), so an answer that is
unchanged was computed from published cells and public data alone. The same changes do move an
admin's answers, so the test can fail.

And the presence oracle (issue 9, item 4): adding one small hidden line and rebuilding changes
no status code and no shape (keys, rows) of any of these answers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from sqlalchemy import delete, select, update

from fieldsvc.accounts.models import Organization
from fieldsvc.caravans.models import Caravan, caravan_organizer
from fieldsvc.extensions import db as _db
from fieldsvc.tallies.models import SubmissionVersion, TallyLine
from tests.factories import auth, make_caravan, make_tally, make_user, publish
from tests.privacy.test_attack_harness import INSIDER, SPECIALTIES, TODAY, _seed_season

NEED_SPECIALTIES = (*SPECIALTIES, "GYN")  # GYN: planned everywhere, never counted
NEED_FILTERS = ("", "&region=08", "&province=08.587&sort=expected_patients",
                "&weights=demand:1,unmet:1,access:0,recency:0,vulnerability:0")
PLAN_BASES = ("08.587.01.13", "07.351.02.07")
PAGES = (
    "/insights/needs?specialty=OPH", "/insights/needs?specialty=DEN&level=province&region=08",
    "/insights/map?specialty=PED", "/insights/map/communes/08.587.01.13?specialty=GEN",
    "/insights/map/communes/07.351.02.07?specialty=DEN",
    "/insights/plan?base=08.587.01.13&team=OPH:1,GEN:2&days=3&radius_km=300",
    "/insights/summary?by=region,specialty", "/insights/summary?by=province,specialty&area=08",
    "/insights/public", "/insights/public?measure=turned_away", "/contributions",
)
EXPORTS = (
    "/api/v1/exports/summary.csv?by=region,specialty&measure=turned_away",
    "/api/v1/exports/summary.json?by=province,specialty,quarter&region=08",
    "/api/v1/exports/summary.geojson?by=region",
    "/api/v1/exports/dhis2/dataValueSets.json?by=region,specialty&period=quarter",
    "/api/v1/exports/report.html?region=08", "/api/v1/exports/report.html?province=08.587",
    "/api/v1/contributions?by=organization", "/api/v1/contributions?by=partnership",
)
PUBLIC = ("/api/v1/public/summary", "/api/v1/public/summary?measure=turned_away",
          "/api/v1/public/summary?from=2026-01-01&to=2026-12-31", "/insights/public",
          "/contributions", "/api/v1/contributions?by=organization")

_VOLATILE = [  # what changes between two identical requests: tokens, nonces, clocks
    re.compile(r'nonce="[^"]*"'), re.compile(r'name="csrf_token"[^>]*'),
    re.compile(r'"csrf[^"]*":\s*"[^"]*"'),
    re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.\d]*(?:Z|[+-]\d\d:\d\d)?"),
    re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"),  # a report's "generated on"
]


def _callers() -> dict[str, dict[str, str]]:
    return {
        "planner": auth(make_user("planner", organization="Autre association")),
        "coordinator": auth(make_user("coordinator", regions=["01"])),
        "insider": auth(make_user("planner", organization=INSIDER)),
        "anonymous": {},
    }


def _needs_paths() -> list[str]:
    return [f"/api/v1/needs?specialty={specialty}&level={level}{extra}"
            for specialty in NEED_SPECIALTIES for level in ("commune", "province", "region")
            for extra in NEED_FILTERS]


def _plan_bodies() -> list[dict[str, Any]]:
    return [{"base": base, "radius_km": 400, "days": 3, "stops_per_day": stops, "team": team}
            for base, stops, team in zip(PLAN_BASES, (1, 2),
                                         ({"OPH": 1, "GEN": 2}, {"DEN": 1, "PED": 1}),
                                         strict=True)]


def _body(response) -> Any:
    if response.mimetype in ("application/json", "application/problem+json",
                             "application/geo+json"):
        return _scrub(response.json)
    text = response.get_data(as_text=True)
    for pattern in _VOLATILE:
        text = pattern.sub("", text)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in ("generated_at", "exported")}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _answers(client, header: dict[str, str]) -> dict[str, tuple[int, Any]]:
    """Every count-derived answer this caller may obtain, by route."""
    found: dict[str, tuple[int, Any]] = {}
    if not header:
        for path in PUBLIC:
            response = client.get(path)
            found[path] = (response.status_code, _body(response))
        return found
    for path in (*_needs_paths(), *EXPORTS, *PAGES,
                 "/api/v1/needs?specialty=GEN&as_of=2026-06-30",
                 "/api/v1/needs?specialty=GEN&window_months=3"):
        response = client.get(path, headers=header)
        found[path] = (response.status_code, _body(response))
    for body in _plan_bodies():
        for accept in ("application/json", "application/geo+json"):
            response = client.post("/api/v1/plans", json=body,
                                   headers={**header, "Accept": accept})
            found[f"POST /api/v1/plans {json.dumps(body, sort_keys=True)} {accept}"] = (
                response.status_code, _body(response))
    return found


def _change_lines(db, organizations: tuple[str, ...] | None = None) -> None:
    """Move every count and some tallies' days, delete lines and add others on the caravans of
    these organizations (all when None): anything read from those lines would change. No caravan
    is added or moved (they are public)."""
    caravans = select(Caravan.id)
    if organizations is not None:
        caravans = caravans.join(caravan_organizer).join(Organization).where(
            Organization.name.in_(organizations))
    ids = set(db.session.scalars(caravans))
    versions = select(SubmissionVersion.id).where(SubmissionVersion.caravan_id.in_(ids))
    db.session.execute(update(TallyLine).where(TallyLine.version_id.in_(versions))
                       .values(count=TallyLine.count * 3 + 1))
    doomed = db.session.scalars(select(TallyLine.id).where(TallyLine.version_id.in_(versions))
                                .order_by(TallyLine.id).limit(12)).all()
    db.session.execute(delete(TallyLine).where(TallyLine.id.in_(doomed)))
    # Move the day of every other tally: a caravan seen later than it was planned would change
    # an exact recency.
    moved = db.session.scalars(select(SubmissionVersion).where(SubmissionVersion.caravan_id
                                                               .in_(ids))).all()
    for version in moved[::2]:
        version.day = version.day + dt.timedelta(days=20)
    for caravan in db.session.scalars(select(Caravan).where(Caravan.id.in_(ids))):
        for specialty in SPECIALTIES:
            make_tally(caravan, day=caravan.first_day, specialty=specialty, status="approved",
                       lines=[("consultations", "F", "65+", None, 2),
                              ("turned_away", "M", "0-4", None, 3),
                              ("referrals", "F", "25-49", None, 1)])
    db.session.commit()


def _needs_rows(answers: dict[str, tuple[int, Any]]) -> int:
    return sum(len(body["rows"]) for path, (status, body) in answers.items()
               if path.startswith("/api/v1/needs") and status == 200)


def test_every_derived_answer_is_computed_from_the_published_release_alone(app, db):
    app.config["PLAN_MAX_PER_MINUTE"] = 10_000
    client = app.test_client()
    _seed_season(db)
    callers = _callers()
    admin = auth(make_user("admin"))
    before = {name: _answers(client, header) for name, header in callers.items()}
    admin_needs = client.get("/api/v1/needs?specialty=OPH", headers=admin).json
    for name, answers in before.items():
        statuses = {status for status, _ in answers.values()}
        assert statuses <= {200, 422}, (name, statuses)
        if name != "anonymous":
            assert _needs_rows(answers) > 100, name
            assert answers["/api/v1/needs?specialty=GEN&as_of=2026-06-30"][0] == 422
            hidden = [c for _, (s, body) in answers.items() if s == 200 and isinstance(body, dict)
                      for row in body.get("rows", ()) if isinstance(row, dict)
                      for c in (row.get("components") or {}).values() if c.get("suppressed")]
            assert hidden, f"{name}: the season must hide some need components"
    # First only the other association's lines (the insider sees its own exactly), then all.
    for changed_lines, names in ((("Zuhur",), callers), (None, ("planner", "coordinator",
                                                               "anonymous"))):
        _change_lines(_db, changed_lines)
        for name in names:
            after = _answers(client, callers[name])
            assert after.keys() == before[name].keys()
            changed = [path for path in after if after[path] != before[name][path]]
            assert not changed, f"{name}: {len(changed)} answers read the lines: {changed[:3]}"
    # The same change is visible to exact answers: what the callers above get is the release's.
    assert client.get("/api/v1/needs?specialty=OPH", headers=admin).json != admin_needs


# Marks that say how a value was obtained (suppressed, estimated and why): values, not shapes.
# A component is "suppressed" exactly when the release cell it rests on is, and the release
# publishes which cells it hides.
_MARKS = ("suppressed", "estimated_from", "why", "reason")


def _shape(value: Any) -> Any:
    """The keys, row identities and kinds of an answer, not its numbers."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in _MARKS}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, str):
        return "text"
    return "scalar"  # a count, a rate, or null when suppressed: values, not shapes


def test_a_hidden_line_changes_no_status_and_no_shape(app, db):
    """Item 4 of issue 9 on needs, plans, exports and pages: with or without one small line in
    another organization's commune, every answer has the same status and the same shape."""
    app.config["PLAN_MAX_PER_MINUTE"] = 10_000
    client = app.test_client()
    _seed_season(db)
    callers = _callers()
    headers = {name: callers[name] for name in ("planner", "coordinator")}
    # The caravan is public either way: only the line is what the answers must not betray.
    caravan = make_caravan("08.587.09.23", first_day=dt.date(2026, 9, 9),
                           last_day=dt.date(2026, 9, 9), sites=(), specialties=("DEN",),
                           organizers=("Zuhur",))
    db.session.commit()
    publish(TODAY)
    before = {name: _answers(client, header) for name, header in headers.items()}
    make_tally(caravan, day=dt.date(2026, 9, 9), specialty="DEN", status="approved",
               lines=[("consultations", "M", "65+", None, 2)])
    db.session.commit()
    publish(TODAY)
    for name, header in headers.items():
        _same_statuses_and_shapes(before[name], _answers(client, header), name)


def _same_statuses_and_shapes(before: dict[str, tuple[int, Any]],
                              after: dict[str, tuple[int, Any]], name: str) -> None:
    moved = [path for path in before if after[path] != before[path]]
    assert moved, f"{name}: the line must change the release, or this test proves nothing"
    for path, (status, body) in before.items():
        assert after[path][0] == status, (name, path)
        if isinstance(body, dict):
            if path.startswith(("/api/v1/needs", "POST /api/v1/plans")):
                assert _shape(after[path][1]) == _shape(body), (name, path)
            else:
                assert after[path][1].keys() == body.keys(), (name, path)
