"""The ingest hot path agrees with the layered one: its body check, flags and audit row.

POST /api/v1/submissions checks bodies with ``fast_load_submission`` and falls back to
marshmallow (for its messages) only when it refuses one. These tests generate valid and invalid
bodies and require both to accept exactly the same ones, load them to the same data, and refuse
the others for the same fields. On PostgreSQL, the one-statement insert must store the flags
and the audit row that the layered inserts store.
"""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError
from sqlalchemy import select

from fieldsvc.catalog.codes import AGE_BANDS, ICD10_CHAPTERS, MEASURES, SEXES, SPECIALTIES
from fieldsvc.db import MAX_INT as MAX_ID
from fieldsvc.extensions import db
from fieldsvc.tallies.models import Submission
from fieldsvc.tallies.schemas import (
    MAX_COUNT,
    SubmissionCreateSchema,
    SubmissionSchema,
    fast_load_submission,
)
from fieldsvc.tallies.services import StoredSubmission, stored_submission
from tests.factories import auth, make_caravan, make_enrollment, make_user
from tests.tallies.helpers import DAY, field_setup, lines, payload

SCHEMA = SubmissionCreateSchema()
OUT = SubmissionSchema()
SETTINGS = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# JSON values of every kind, with the ones a phone gets wrong: bools for numbers, floats, huge
# numbers, NUL, other scripts, empty and long strings.
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["", "\x00", "OPH\x00", "٣", "2026-02-30", "20261128", "2026-W48-6",
                     " 12", "12", "1e3", "consultations ", "CONSULTATIONS", "f", "XXIII",
                     "{0b6f2c9e-3f1c-4b8e-9a51-6f0d2f4a7c11}", "ophtalmologie" * 3]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)


def ints(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers mostly in range, with the edges and just outside them."""
    return st.one_of(st.integers(low, high),
                     st.sampled_from([low, high, low - 1, high + 1, 0, -1, 2**31, 2**63]))


def choose(draw: st.DrawFn, faulty: bool, valid: st.SearchStrategy[Any],
           odd: st.SearchStrategy[Any] | None = None) -> Any:
    """A valid value; when ``faulty``, now and then an odd one or any JSON value at all."""
    if faulty and draw(st.integers(0, 3)) == 0:
        return draw(json_values if odd is None else st.one_of(odd, json_values))
    return draw(valid)


MEASURE_CODES = sorted(MEASURES)
ODD_INTS = st.sampled_from([0, -1, 2**31, 2**63, MAX_COUNT + 1, True, False, 1.0, "1"])


@st.composite
def tally_lines(draw: st.DrawFn, faulty: bool) -> Any:
    line: dict[str, Any] = {
        "measure": choose(draw, faulty, st.sampled_from(MEASURE_CODES),
                          st.sampled_from(["vaccinations", "", "x" * 33, "consultation"])),
        "sex": choose(draw, faulty, st.sampled_from(sorted(SEXES))),
        "age_band": choose(draw, faulty, st.sampled_from(AGE_BANDS)),
        "count": choose(draw, faulty, st.integers(0, MAX_COUNT), ODD_INTS),
    }
    if draw(st.booleans()):
        line["condition"] = choose(draw, faulty, st.one_of(
            st.none(), st.sampled_from(sorted(ICD10_CHAPTERS))), st.just("XXIII"))
    if faulty:
        for name in draw(st.lists(st.sampled_from(sorted(line)), max_size=2)):
            if draw(st.integers(0, 3)) == 0:
                line.pop(name, None)  # a missing field
        if draw(st.integers(0, 9)) == 0:
            line[draw(st.sampled_from(["extra", "Count", "note", "_schema"]))] = draw(json_values)
        if draw(st.integers(0, 19)) == 0:
            return draw(json_values)
    return line


# A small pool of valid lines, so that duplicates (same measure, sex, band, condition) happen.
POOL = [{"measure": m, "sex": s, "age_band": b, "count": 3}
        for m in ("consultations", "procedures") for s in ("F", "M") for b in AGE_BANDS[:2]]


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    faulty = draw(st.booleans())
    body: dict[str, Any] = {
        "id": choose(draw, faulty, st.uuids().map(str)),
        "caravan_id": choose(draw, faulty, st.integers(1, MAX_ID), ints(1, MAX_ID)),
        "day": choose(draw, faulty, st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31))
                      .map(dt.date.isoformat)),
        "specialty": choose(draw, faulty, st.sampled_from(sorted(SPECIALTIES)),
                            st.sampled_from(["XYZ", "", "OPHTHALMO", "oph"])),
        "lines": draw(st.one_of(
            st.lists(tally_lines(faulty), min_size=0 if faulty else 1, max_size=4),
            st.lists(st.sampled_from(POOL), min_size=1, max_size=6),
            st.lists(st.sampled_from(POOL), min_size=1, max_size=6).map(
                lambda chosen: [dict(line, count=n) for n, line in enumerate(chosen)]),
            *([json_values] if faulty else []),
        )),
    }
    if draw(st.booleans()):
        body["site_id"] = choose(draw, faulty, st.one_of(st.none(), st.integers(1, MAX_ID)),
                                 ints(1, MAX_ID))
    if draw(st.booleans()):
        body["enrollment_id"] = choose(draw, faulty, st.one_of(st.none(),
                                                               st.integers(1, MAX_ID)),
                                       ints(1, MAX_ID))
    if draw(st.booleans()):
        body["note"] = choose(draw, faulty, st.one_of(st.none(), st.text(max_size=20)),
                              st.sampled_from(["é" * 500, "é" * 501, "a\x00b"]))
    if faulty:
        for name in draw(st.lists(st.sampled_from(sorted(body)), max_size=2)):
            if draw(st.integers(0, 3)) == 0:
                body.pop(name, None)
        if draw(st.integers(0, 9)) == 0:
            body[draw(st.sampled_from(["extra", "ID", "lines_count", "version"]))] = \
                draw(json_values)
        if draw(st.integers(0, 19)) == 0:
            return draw(json_values)
    return body


def error_keys(messages: Any) -> Any:
    """The shape of marshmallow's messages: nested keys, None for a list of messages."""
    if isinstance(messages, dict):
        return {key: error_keys(value) for key, value in messages.items()}
    return None


def marshmallow_load(body: Any) -> tuple[Any, Any]:
    try:
        return Schema.load(SCHEMA, body), {}  # the schema's own marshmallow path
    except ValidationError as error:
        return None, error_keys(error.messages)


ACCEPTED: list[bool] = []


def check_same(body: Any) -> None:
    fast = fast_load_submission(body)
    assert fast == marshmallow_load(body)
    ACCEPTED.append(not fast[1])


@SETTINGS
@given(body=bodies())
def test_fast_validator_agrees_with_marshmallow(app, body):
    check_same(body)


def test_the_generated_bodies_were_both_accepted_and_refused():
    # Runs after the property test above (same module, file order): it must have seen both.
    if ACCEPTED:
        assert 0.2 < sum(ACCEPTED) / len(ACCEPTED) < 0.8, sum(ACCEPTED) / len(ACCEPTED)


@SETTINGS
@given(chosen=st.lists(st.sampled_from(POOL), min_size=1, max_size=4), extra=st.integers(0, 2))
def test_line_count_limit_agrees(app, chosen, extra):
    # Exactly 500 distinct lines pass; 501 are refused (distinct or not).
    distinct = [{"measure": "consultations", "sex": sex, "age_band": band, "condition": None,
                 "count": 1} for sex in SEXES for band in AGE_BANDS]
    many = (distinct * 21)[: 500 + extra]
    body = {"id": str(uuid.uuid4()), "caravan_id": 1, "day": "2026-11-28", "specialty": "OPH",
            "lines": many}
    check_same(body)
    check_same(dict(body, lines=[*chosen, *distinct][:501]))


@pytest.mark.parametrize("body", [
    None, [], "text", 12, {},
    {"id": str(uuid.uuid4()), "caravan_id": True, "day": "2026-11-28", "specialty": "OPH",
     "lines": [{"measure": "consultations", "sex": "F", "age_band": "0-4", "count": 1.0}]},
    {"id": str(uuid.uuid4()), "caravan_id": 1, "day": "2026-11-28", "specialty": "OPH",
     "lines": [{"measure": "consultations", "sex": "F", "age_band": "0-4", "count": False}]},
    {"id": str(uuid.uuid4()), "caravan_id": 1, "day": "2026-11-28", "specialty": "OPH",
     "lines": [None, [], {"measure": "consultations", "sex": "F", "age_band": "0-4",
                          "count": 1, "condition": "XXIII"}]},
    {"id": str(uuid.uuid4()).replace("-", ""), "caravan_id": 1, "day": "2026-11-28",
     "specialty": "OPH", "lines": [{"measure": "consultations", "sex": "F", "age_band": "0-4",
                                    "count": 1}, {"measure": "consultations", "sex": "F",
                                                  "age_band": "0-4", "count": 2}]},
])
def test_edge_bodies_agree(app, body):
    check_same(body)


def test_the_schema_loads_through_the_fast_path_with_marshmallow_messages(app):
    body = {"id": str(uuid.uuid4()), "caravan_id": 1, "day": "2026-11-28", "specialty": "OPH",
            "lines": [{"measure": "consultations", "sex": "F", "age_band": "0-4", "count": 1}]}
    assert SCHEMA.load(body) == Schema.load(SCHEMA, body)
    bad = dict(body, lines=[{"measure": "nope", "sex": "X", "age_band": "0-4", "count": -1}])
    with pytest.raises(ValidationError) as fast:
        SCHEMA.load(bad)
    with pytest.raises(ValidationError) as slow:
        Schema.load(SCHEMA, bad)
    assert fast.value.messages == slow.value.messages


def test_a_measure_added_by_an_admin_is_accepted_at_once(client, app):
    caravan, _, header = field_setup()
    body = payload(caravan, lines=[{"measure": "vaccinations", "sex": "F", "age_band": "0-4",
                                    "count": 3}])
    refused = client.post("/api/v1/submissions", json=body, headers=header)
    assert refused.status_code == 422
    assert "Unknown measure vaccinations" in str(refused.json["errors"])
    admin = make_user("admin")
    added = client.post("/api/v1/measures", headers=auth(admin), json={
        "code": "vaccinations", "label_fr": "Vaccinations", "label_ar": "التلقيحات",
        "label_en": "Vaccinations"})
    assert added.status_code == 201, added.json
    accepted = client.post("/api/v1/submissions", json=body, headers=header)
    assert accepted.status_code == 201, accepted.json


def test_the_answer_is_marshmallows_dump_of_the_stored_submission(client, app):
    caravan, _, header = field_setup()
    header = {**header, "Accept-Language": "fr"}  # the dump below renders flags in French
    body = payload(caravan, specialty="DER", note="Électricité coupée",
                   lines=[{"measure": "consultations", "sex": "F", "age_band": "50-64",
                           "count": 151},
                          {"measure": "glasses", "sex": "M", "age_band": "65+",
                           "condition": "VII", "count": 2},
                          {"measure": "procedures", "sex": "M", "age_band": "65+",
                           "count": 200}])
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == 201, response.json
    answer = response.json
    assert {flag["code"] for flag in answer["flags"]} == {
        "over_150_consultations", "procedures_above_consultations",
        "glasses_outside_ophthalmology", "specialty_not_planned"}
    db.session.rollback()
    stored = stored_submission(db.session.get(Submission, body["id"]))
    assert Schema.dump(OUT, stored) == OUT.dump(stored) == answer
    again = client.get(f"/api/v1/submissions/{body['id']}", headers=header).json
    assert {key: again[key] for key in answer} == answer


moments = st.one_of(st.none(), st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
                    st.datetimes(timezones=st.just(dt.timezone(dt.timedelta(hours=1)))))
FLAGS = [{"code": "over_150_consultations", "consultations": 151, "day": "2026-11-28",
          "limit": 150},
         {"code": "procedures_above_consultations", "procedures": 9, "consultations": 3},
         {"code": "glasses_outside_ophthalmology", "glasses": 2, "specialty": "GEN"},
         {"code": "specialty_not_planned", "specialty": "DER"}]


@st.composite
def stored_submissions(draw: st.DrawFn) -> StoredSubmission:
    line = st.fixed_dictionaries({
        "measure": st.sampled_from(MEASURE_CODES), "sex": st.sampled_from(sorted(SEXES)),
        "age_band": st.sampled_from(list(AGE_BANDS)),
        "condition": st.one_of(st.none(), st.sampled_from(list(ICD10_CHAPTERS))),
        "count": st.integers(0, MAX_COUNT)})
    optional_id = st.one_of(st.none(), st.integers(1, MAX_ID))
    submission = SimpleNamespace(
        id=str(draw(st.uuids())), caravan_id=draw(st.integers(1, MAX_ID)),
        enrollment_id=draw(optional_id),
        review_status=draw(st.sampled_from(["received", "approved", "flagged", "rejected"])),
        review_reason=draw(st.one_of(st.none(), st.text(max_size=20))),
        reviewed_at=draw(moments), created_at=draw(moments), updated_at=draw(moments))
    version = SimpleNamespace(
        id=draw(st.integers(1, MAX_ID)), number=draw(st.integers(1, 9)), site_id=draw(optional_id),
        day=draw(st.dates()), specialty_code=draw(st.sampled_from(sorted(SPECIALTIES))),
        note=draw(st.one_of(st.none(), st.text(max_size=20))),
        flags=draw(st.one_of(st.none(), st.lists(st.sampled_from(FLAGS), max_size=4))),
        entered_by_id=draw(optional_id),
        content_hash=draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
        created_at=draw(moments))
    return StoredSubmission(submission, version, draw(st.lists(line, max_size=30)),
                            draw(st.integers(1, 9)))


@SETTINGS
@given(stored=stored_submissions())
def test_the_fast_dump_agrees_with_marshmallow(app, stored):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert OUT.dump(stored) == Schema.dump(OUT, stored)


def _post(client, header, body, status=201):
    response = client.post("/api/v1/submissions", json=body, headers=header)
    assert response.status_code == status, response.json
    return response.json


def test_the_daily_volume_counts_only_what_aggregates_count(client, app):
    # The one-statement insert on PostgreSQL spells counted_lines() out: rejected submissions,
    # amended-away versions, other days and other volunteers never add to a volunteer's day.
    caravan, _, header = field_setup(last_day=DAY + dt.timedelta(days=1))
    _, other_header = make_enrollment(
        caravan, display_name="Dr Karim")
    db.session.commit()
    coordinator = auth(make_user("coordinator", regions=["08"]))
    rejected = _post(client, header, payload(caravan, lines=lines(consultations=140)))
    review = client.post(f"/api/v1/submissions/{rejected['id']}/review", headers=coordinator,
                         json={"status": "rejected", "reason": "Counted twice.", "version": 1})
    assert review.status_code == 200, review.json
    amended = _post(client, header, payload(caravan, lines=lines(consultations=140)))
    put = client.put(f"/api/v1/submissions/{amended['id']}", headers=header, json=dict(
        payload(caravan, lines=lines(consultations=10)), id=amended["id"]))
    assert put.status_code == 200, put.json
    _post(client, other_header, payload(caravan, lines=lines(consultations=140)))
    tomorrow = (DAY + dt.timedelta(days=1)).isoformat()
    _post(client, header, payload(caravan, day=tomorrow, lines=lines(consultations=140)))
    # 14 (amended) + 126 + 4 = 144 consultations that day: no flag; 7 more: 151, flagged.
    assert _post(client, header, payload(caravan, lines=lines(consultations=126)))["flags"] == []
    flagged = _post(client, header, payload(caravan, lines=lines(consultations=3)))
    assert [flag["code"] for flag in flagged["flags"]] == ["over_150_consultations"]
    assert flagged["flags"][0]["message"].startswith("151 consultations")
    db.session.rollback()
    stored = client.get(f"/api/v1/submissions/{flagged['id']}", headers=header).json
    assert stored["flags"] == flagged["flags"]


def test_a_site_of_another_caravan_stores_nothing(client, app):
    caravan, _, header = field_setup()
    other = make_caravan(first_day=DAY, sites=(("Dispensaire", 30.3, -5.8),))
    db.session.commit()
    body = payload(caravan, site_id=other.sites[0].id)
    refused = _post(client, header, body, status=422)
    assert "is not a site of this caravan" in refused["errors"]["site_id"][0]
    assert client.get(f"/api/v1/submissions/{body['id']}", headers=header).status_code == 404
    assert _post(client, header, dict(body, site_id=caravan.sites[0].id))["site_id"] == \
        caravan.sites[0].id


# --- the one-statement insert (PostgreSQL) stores what the layered path stores -----------------

VOLUME, PROCEDURES, REFERRALS = ("over_150_consultations", "procedures_above_consultations",
                                 "referrals_above_consultations")
GLASSES, NOT_PLANNED = "glasses_outside_ophthalmology", "specialty_not_planned"
# specialty, lines, the volunteer's earlier consultations that day, the flags expected
SCENARIOS = {
    "no flag": ("OPH", lines(), 0, []),
    "procedures": ("OPH", lines(procedures=30), 0, [PROCEDURES]),
    "referrals": ("OPH", lines(referrals=17), 0, [REFERRALS]),
    "glasses": ("GEN", lines(glasses=2), 0, [GLASSES]),
    "not planned": ("DER", lines(), 0, [NOT_PLANNED]),
    "volume": ("OPH", lines(consultations=127), 20, [VOLUME]),
    "volume at the limit": ("OPH", lines(consultations=126), 20, []),
    "all at once": ("DER", lines(consultations=140, glasses=3, procedures=200, referrals=160),
                    20, [VOLUME, PROCEDURES, REFERRALS, GLASSES, NOT_PLANNED]),
}


@pytest.mark.parametrize("paper", [False, True], ids=["device", "paper sheet"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_fast_insert_stores_the_flags_and_audit_row_of_the_layered_path(
        pg_app, monkeypatch, scenario, paper):
    from fieldsvc.accounts.models import AuditEvent
    from fieldsvc.tallies import services
    from fieldsvc.tallies.models import SubmissionVersion

    specialty, content, earlier, expected = SCENARIOS[scenario]
    client = pg_app.test_client()
    caravan, _, fast_header = field_setup(specialties=("GEN", "OPH", "PED"))
    _, layered_header = make_enrollment(caravan, display_name="Dr Karim")
    db.session.commit()
    if paper:
        fast_header = layered_header = auth(make_user("coordinator", regions=["08"]))
    for header in (fast_header, layered_header):
        if earlier:  # the same day's earlier tally of each volunteer
            _post(client, header, payload(caravan, lines=[
                {"measure": "consultations", "sex": "M", "age_band": "5-14", "count": earlier}]))

    one_statement, lean_submit = services._create_postgresql, services.lean_submit
    calls: list[str] = []
    monkeypatch.setattr(services, "_create_postgresql",
                        lambda *args: calls.append("route") or one_statement(*args))

    def lean(*args: Any) -> Any:
        stored = lean_submit(*args)
        calls.append("lean" if stored is not None else "lean declined")
        return stored

    monkeypatch.setattr(services, "lean_submit", lean)
    fast = _post(client, fast_header, payload(caravan, specialty=specialty, lines=content))
    monkeypatch.setattr(services, "one_statement_insert", lambda: False)
    layered = _post(client, layered_header, payload(caravan, specialty=specialty, lines=content))
    # A device's tally takes the lean handler (tallies/lean.py), a coordinator's the route's
    # one statement: the same statement either way, compared here with the layered inserts.
    assert calls == (["route"] if paper else ["lean"])
    assert fast["flags"] == layered["flags"]
    # A paper sheet names no volunteer, so no volunteer's day can be counted.
    assert [flag["code"] for flag in fast["flags"]] == [
        code for code in expected if not (paper and code == VOLUME)]

    db.session.rollback()
    stored = {version.submission_id: version.flags for version in db.session.scalars(
        select(SubmissionVersion).where(
            SubmissionVersion.submission_id.in_([fast["id"], layered["id"]])))}
    assert stored[fast["id"]] == stored[layered["id"]]
    assert [flag["code"] for flag in fast["flags"]] == [flag["code"] for flag in
                                                        stored[fast["id"]]]

    def event(submission: dict[str, Any]) -> tuple:
        row = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "submission.create",
            AuditEvent.object_id == submission["id"])).one()
        who = row.actor_id if paper else f"enrollment:{submission['enrollment_id']}"
        assert row.actor_id == who
        return (row.actor_kind, row.object_type, row.region_code, row.detail)

    assert event(fast) == event(layered)
