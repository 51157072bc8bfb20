"""A hostile review of who can see and change what (scope, small counts, notes, tokens).

Each test names the problem it shows and failed before its fix.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_tally, make_user

pytestmark = pytest.mark.usefixtures("fresh_release")

K = 5


def _small(value):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < K


def _published(client, header, query, path="/api/v1/summary"):
    """{row key: count} of a summary, with the total under "total"; None when refused (422)."""
    response = client.get(f"{path}?{query}", headers=header)
    if response.status_code == 422:
        return None
    assert response.status_code == 200, (query, response.json)
    body = response.json
    assert body["full_detail"] is False
    cells = {}
    for row in body["rows"]:
        key = tuple(sorted((name, value) for name, value in row.items()
                           if name not in ("count", "suppressed") and not name.endswith("_ar")
                           and not name.endswith("_fr")))
        cells[key] = row["count"]
    cells["total"] = body["total"]
    return cells


def _differences(first, second):
    """Small differences between the figures two published answers share."""
    if first is None or second is None:
        return []
    shared = set(first) & set(second)
    return [(key, first[key], second[key]) for key in shared
            if first[key] is not None and second[key] is not None
            and _small(abs(first[key] - second[key]))]


def _other_org_season(db):
    """Caravans of an association the planner is not part of: big and small cells."""
    make_areas()
    zagora = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), sites=(),
                          organizers=("Wahat Al-Khair",))
    make_tally(zagora, day=dt.date(2026, 10, 3), specialty="GEN", status="approved", lines=[
        ("consultations", "F", "25-49", None, 40), ("glasses", "F", "25-49", None, 2)])
    make_tally(zagora, day=dt.date(2026, 10, 3), specialty="PED", status="received", lines=[
        ("consultations", "F", "0-4", None, 2)])
    make_tally(zagora, day=dt.date(2026, 10, 4), specialty="OPH", status="approved", lines=[
        ("consultations", "F", "50-64", None, 30)])
    db.session.commit()
    return zagora


# --- small counts by differencing two suppressed answers ---------------------------------------

def test_planner_cannot_difference_a_small_cell_with_specialty_filters(app, client, db):
    """Finding: a filter was answered from its own smaller table, so specialty=GEN,PED beside
    specialty=GEN (or the unfiltered total beside two single filters) gave PED = 2."""
    _other_org_season(db)
    header = auth(make_user("planner", organization="Autre association"))
    both = _published(client, header, "by=province&specialty=GEN,PED")
    gen = _published(client, header, "by=province&specialty=GEN")
    assert not _differences(both, gen)
    everything = _published(client, header, "by=province")
    gen_oph = [_published(client, header, f"by=province&specialty={s}") for s in ("GEN", "OPH")]
    if everything is not None and all(a is not None for a in gen_oph):
        key = (("province", "08.587"),)
        shown = [everything.get(key), gen_oph[0].get(key), gen_oph[1].get(key)]
        if None not in shown:
            assert not _small(shown[0] - shown[1] - shown[2]), shown


def test_planner_cannot_difference_a_small_cell_with_the_review_status(app, client, db):
    """Finding: status=approved beside no status filter gave the 2 unreviewed PED patients."""
    _other_org_season(db)
    header = auth(make_user("planner", organization="Autre association"))
    everything = _published(client, header, "by=province")
    approved = _published(client, header, "by=province&status=approved")
    assert not _differences(everything, approved)


def test_no_small_cell_from_adding_measures_together(app, client, db):
    """Finding: measure=consultations,glasses beside measure=consultations gave 2 glasses, to a
    planner and to anyone through the public summary."""
    _other_org_season(db)
    header = auth(make_user("planner", organization="Autre association"))
    added = _published(client, header, "by=province&specialty=GEN&measure=consultations,glasses")
    alone = _published(client, header, "by=province&specialty=GEN&measure=consultations")
    assert not _differences(added, alone)
    public_added = _published(client, {}, "measure=consultations,glasses",
                              path="/api/v1/public/summary")
    public_alone = _published(client, {}, "measure=consultations", path="/api/v1/public/summary")
    assert not _differences(public_added, public_alone)


def test_a_filter_answers_the_same_cells_as_the_table_it_slices(app, client, db):
    """A filtered suppressed answer is a slice of the unfiltered table: shared cells agree."""
    _other_org_season(db)
    header = auth(make_user("planner", organization="Autre association"))
    table = client.get("/api/v1/summary?by=province,specialty", headers=header).json
    cells = {(r["province"], r["specialty"]): (r["count"], r.get("suppressed"))
             for r in table["rows"]}
    for specialty in ("GEN", "OPH", "PED"):
        body = client.get(f"/api/v1/summary?by=province&specialty={specialty}",
                          headers=header).json
        for row in body["rows"]:
            assert (row["count"], row.get("suppressed")) == cells[(row["province"], specialty)]
            assert "specialty" not in row
        assert not any(_small(v) for v in [body["total"], *(r["count"] for r in body["rows"])])
    sliced = client.get("/api/v1/summary?by=specialty&region=08", headers=header).json
    assert sliced["full_detail"] is False
    assert all("region" not in row for row in sliced["rows"])
    assert {row["specialty"]: row["count"] for row in sliced["rows"]} == {
        specialty: count for (_, specialty), (count, _) in cells.items()}


def test_full_detail_callers_still_filter_freely(app, client, db):
    _other_org_season(db)
    coordinator = make_user("coordinator", regions=["08"])
    body = client.get("/api/v1/summary?by=province&specialty=GEN,PED&status=received&region=08",
                      headers=auth(coordinator)).json
    assert body["full_detail"] is True
    assert body["total"] == 2


# --- scope: tokens, disabled users, other regions ----------------------------------------------

def test_disabled_user_token_and_session_stop_working(app, client, db):
    make_areas()
    planner = make_user("planner", organization="Autre association", password="planner-passphrase")
    header = auth(planner)
    db.session.commit()
    assert client.get("/api/v1/me", headers=header).status_code == 200
    from fieldsvc.accounts.services import start_web_session

    sid = start_web_session(planner)
    db.session.commit()
    with client.session_transaction() as session:
        session["user_id"], session["sid"] = planner.id, sid
    assert client.get("/api/v1/organizations").status_code == 200
    planner.active = False
    db.session.commit()
    assert client.get("/api/v1/me", headers=header).status_code == 401
    assert client.get("/api/v1/organizations").status_code == 401
    refused = client.post("/api/v1/tokens", auth=(planner.username, "planner-passphrase"))
    assert refused.status_code == 401


def test_revoked_and_expired_device_tokens_get_401(app, client, db):
    make_areas()
    today = dt.date.today()
    caravan = make_caravan(first_day=today, last_day=today)
    revoked, revoked_header = make_enrollment(caravan)
    old = make_caravan(first_day=today - dt.timedelta(days=60),
                       last_day=today - dt.timedelta(days=59), status="closed")
    old.closed_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=59)
    _, old_header = make_enrollment(old)
    coordinator = make_user("coordinator", regions=["08"])
    db.session.commit()
    assert client.delete(f"/api/v1/enrollments/{revoked.id}",
                         headers=auth(coordinator)).status_code == 204
    for header, url in ((revoked_header, f"/api/v1/caravans/{caravan.id}"),
                        (revoked_header, "/api/v1/submissions"),
                        (old_header, f"/api/v1/caravans/{old.id}"),
                        (old_header, "/api/v1/volunteers/me")):
        assert client.get(url, headers=header).status_code == 401, url


def test_join_codes_reach_only_coordinators_in_scope(app, client, db):
    make_areas()
    caravan = make_caravan(organizers=("Wahat Al-Khair",))
    _, volunteer = make_enrollment(caravan)
    outside = auth(make_user("coordinator", regions=["07"]))
    own_planner = auth(make_user("planner", organization="Wahat Al-Khair"))
    other_planner = auth(make_user("planner", organization="Autre association"))
    inside = auth(make_user("coordinator", regions=["08"]))
    db.session.commit()
    code = caravan.join_code
    for header in (outside, own_planner, other_planner, volunteer):
        for url in (f"/api/v1/caravans/{caravan.id}", "/api/v1/caravans"):
            response = client.get(url, headers=header)
            if response.status_code == 200:
                assert code not in response.get_data(as_text=True), url
                assert "join_url" not in response.get_data(as_text=True), url
        assert client.get(f"/api/v1/caravans/{caravan.id}/qr.svg",
                          headers=header).status_code == 403
    shown = client.get(f"/api/v1/caravans/{caravan.id}", headers=inside).json
    assert shown["join_code"].replace("-", "") == code


def test_audit_log_stays_in_the_coordinators_regions(app, client, db):
    make_areas()
    zagora = make_caravan("08.587.01.13")
    ouahat = make_caravan("07.351.02.07", sites=())
    coordinator = make_user("coordinator", regions=["07"])
    db.session.commit()
    admin = auth(make_user("admin"))
    db.session.commit()
    for caravan in (zagora, ouahat):
        assert client.post(f"/api/v1/caravans/{caravan.id}/join-code",
                           headers=admin).status_code == 200
    for query in ("", "?region=08", "?action=caravan.rotate_join_code"):
        events = client.get(f"/api/v1/audit{query}", headers=auth(coordinator)).json["items"]
        assert {event["region_code"] for event in events} <= {"07"}, query


def test_out_of_scope_coordinator_cannot_touch_submissions(app, client, db):
    make_areas()
    today = dt.date.today()
    caravan = make_caravan(first_day=today, last_day=today)
    _, volunteer = make_enrollment(caravan)
    outside = auth(make_user("coordinator", regions=["07"]))
    db.session.commit()
    tally = {"id": str(uuid.uuid4()), "caravan_id": caravan.id, "day": today.isoformat(),
             "specialty": "OPH", "note": "Électricité coupée",
             "lines": [{"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 7}]}
    assert client.post("/api/v1/submissions", json=tally, headers=volunteer).status_code == 201
    sid = tally["id"]
    assert client.get(f"/api/v1/submissions/{sid}", headers=outside).status_code == 403
    listed = client.get("/api/v1/submissions", headers=outside).json
    assert listed["total"] == 0 and "Électricité" not in str(listed)
    assert client.get(f"/api/v1/submissions?caravan_id={caravan.id}",
                      headers=outside).status_code == 403
    review = client.post(f"/api/v1/submissions/{sid}/review", json={"status": "rejected", "reason": "x",
                                                                "version": 1},
                         headers=outside)
    assert review.status_code == 403
    amend = client.put(f"/api/v1/submissions/{sid}", headers=outside, json={
        **{k: v for k, v in tally.items() if k != "id"},
        "lines": [{"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 1}]})
    assert amend.status_code == 403
    assert client.get(f"/api/v1/caravans/{caravan.id}/completeness",
                      headers=outside).status_code == 403
    # Replaying the id into a caravan of its own region answers nothing of the original.
    other = make_caravan("07.351.02.07", first_day=today, last_day=today, sites=())
    db.session.commit()
    replay = client.post("/api/v1/submissions", headers=outside,
                         json={**tally, "caravan_id": other.id})
    assert replay.status_code == 409
    assert "Électricité" not in replay.get_data(as_text=True)


def test_a_volunteer_sees_only_their_own_submissions(app, client, db):
    make_areas()
    today = dt.date.today()
    caravan = make_caravan(first_day=today, last_day=today)
    _, mine = make_enrollment(caravan)
    _, theirs = make_enrollment(caravan, display_name="Dr Youssef")
    db.session.commit()
    tally = {"id": str(uuid.uuid4()), "caravan_id": caravan.id, "day": today.isoformat(),
             "specialty": "OPH", "note": "secret",
             "lines": [{"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 7}]}
    assert client.post("/api/v1/submissions", json=tally, headers=theirs).status_code == 201
    assert client.get(f"/api/v1/submissions/{tally['id']}", headers=mine).status_code == 404
    assert client.get("/api/v1/submissions", headers=mine).json["total"] == 0
    replay = client.post("/api/v1/submissions", json=tally, headers=mine)
    assert replay.status_code == 409 and "secret" not in replay.get_data(as_text=True)


def test_planner_sees_no_note_and_no_submission(app, client, db):
    zagora = _other_org_season(db)
    planner = auth(make_user("planner", organization="Autre association"))
    own = auth(make_user("planner", organization="Wahat Al-Khair"))
    db.session.commit()
    for header in (planner, own):
        assert client.get("/api/v1/submissions", headers=header).status_code == 403
    assert client.get(f"/api/v1/caravans/{zagora.id}/completeness",
                      headers=planner).status_code == 403
    completeness = client.get(f"/api/v1/caravans/{zagora.id}/completeness", headers=own)
    assert completeness.status_code == 200 and "note" not in completeness.json


def test_anonymous_reaches_only_public_routes(app, client, db):
    make_areas()
    caravan = make_caravan()
    db.session.commit()
    for url in ("/api/v1/summary", "/api/v1/needs?specialty=OPH", "/api/v1/caravans",
                f"/api/v1/caravans/{caravan.id}", "/api/v1/submissions", "/api/v1/audit",
                f"/api/v1/caravans/{caravan.id}/completeness", "/api/v1/me",
                "/api/v1/volunteers/me", "/api/v1/organizations", "/api/v1/users"):
        assert client.get(url).status_code == 401, url
    for url in ("/healthz", "/api/v1/public/summary", "/api/v1/catalog", "/api/v1/areas",
                "/api/openapi.json", "/api/docs", "/login", "/app"):
        assert client.get(url).status_code in (200, 503), url


# --- amendments ---------------------------------------------------------------------------

def test_amend_does_not_reveal_whether_another_volunteers_submission_exists(app, client, db):
    make_areas()
    today = dt.date.today()
    caravan = make_caravan(first_day=today, last_day=today)
    _, mine = make_enrollment(caravan)
    _, theirs = make_enrollment(caravan, display_name="Dr Youssef")
    db.session.commit()
    tally = {"id": str(uuid.uuid4()), "caravan_id": caravan.id, "day": today.isoformat(),
             "specialty": "OPH",
             "lines": [{"measure": "consultations", "sex": "F", "age_band": "50-64", "count": 7}]}
    assert client.post("/api/v1/submissions", json=tally, headers=theirs).status_code == 201
    body = {**tally, "id": str(uuid.uuid4())}
    existing = client.put(f"/api/v1/submissions/{tally['id']}", json=body, headers=mine)
    unknown = client.put(f"/api/v1/submissions/{uuid.uuid4()}", json=body, headers=mine)
    assert existing.status_code == unknown.status_code == 404


def test_planner_cannot_difference_one_days_consultations_out_of_needs(app, client, db):
    """Finding: needs' as_of moved the window by a day, so demand with and without the last
    day gave that day's 2 consultations (40 in one caravan-day, then 42 in two)."""
    make_areas()
    zagora = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), sites=(),
                          organizers=("Wahat Al-Khair",))
    make_tally(zagora, day=dt.date(2026, 10, 3), specialty="OPH", lines=[
        ("consultations", "F", "50-64", None, 40)])
    make_tally(zagora, day=dt.date(2026, 10, 4), specialty="OPH", lines=[
        ("consultations", "F", "50-64", None, 2)])
    planner = auth(make_user("planner", organization="Autre association"))
    outside = auth(make_user("coordinator", regions=["07"]))
    db.session.commit()
    for header in (planner, outside):
        for as_of in ("2026-10-03", "2026-10-04"):
            response = client.get(f"/api/v1/needs?specialty=OPH&as_of={as_of}", headers=header)
            assert response.status_code == 422  # the window is the release's, not the caller's
        body = client.get("/api/v1/needs?specialty=OPH", headers=header).json
        assert (body["from"], body["release"]["window"]["to"])[0] == body["release"]["window"][
            "from"]
    plan = client.post("/api/v1/plans", headers=planner, json={
        "base": "08.587.01.13", "radius_km": 30, "days": 1, "team": {"OPH": 1}})
    assert plan.status_code == 200


def test_months_before_a_months_end_gives_whole_months():
    from fieldsvc.insights.needs import months_before

    assert months_before(dt.date(2026, 4, 30), 1) == dt.date(2026, 3, 31)
    assert months_before(dt.date(2026, 11, 30), 24) == dt.date(2024, 11, 30)
    assert months_before(dt.date(2026, 3, 15), 1) == dt.date(2026, 2, 15)


def _recoverable(coarse, fine, parent, key):
    """Hidden fine cells worked out as a published coarse cell minus its published children."""
    found = []
    for row in coarse["rows"]:
        if row["count"] is None:
            continue
        children = [r for r in fine["rows"] if parent(r[key]) == row[coarse["by"][0]]
                    and all(r[d] == row[d] for d in coarse["by"][1:])]
        hidden = [r for r in children if r["count"] is None]
        if len(hidden) == 1:
            found.append(row["count"] - sum(r["count"] for r in children if r not in hidden))
    return found


def test_planner_cannot_difference_a_province_out_of_its_region(app, client, db):
    """Finding: the complementary cell protecting Zagora's 2 OPH consultations was taken in
    another region, so by=region,specialty minus Tinghir's published cell gave 2."""
    make_areas()
    day = dt.date(2026, 10, 3)
    for commune, oph, gen in (("08.587.01.13", 2, 30), ("08.577.01.11", 40, 50),
                              ("07.351.02.07", 6, 7)):
        caravan = make_caravan(commune, first_day=day, sites=())
        make_tally(caravan, day=day, specialty="OPH",
                   lines=[("consultations", "F", "50-64", None, oph)])
        make_tally(caravan, day=day, specialty="GEN",
                   lines=[("consultations", "F", "50-64", None, gen)])
    header = auth(make_user("planner", organization="Autre association"))
    db.session.commit()
    fine = client.get("/api/v1/summary?by=province,specialty", headers=header).json
    coarse = client.get("/api/v1/summary?by=region,specialty", headers=header).json
    recovered = _recoverable(coarse, fine, lambda code: code[:2], "province")
    assert not any(_small(value) for value in recovered), recovered


def test_planner_cannot_difference_a_month_out_of_its_quarter(app, client, db):
    """Finding: by=month beside by=quarter differenced a month's small cell out. Without full
    detail, months are no longer published: quarter and year tables of one release."""
    make_areas()
    header = auth(make_user("planner", organization="Autre association"))
    for query in ("by=month,specialty&region=08", "by=specialty&region=08&from=2026-03-01"
                  "&to=2026-03-31"):
        response = client.get(f"/api/v1/summary?{query}", headers=header)
        assert response.status_code == 422 and "quarter" in response.json["detail"], query


def test_needs_percentiles_do_not_rank_a_hidden_demand(app, client, db):
    """Finding: percentiles were ranked over every commune's true value, so the visible
    communes' percentiles moved with a hidden commune's 1..k-1 consultations (M'hamid's 1 or 4
    consultations fall either side of Zagora's demand)."""
    from sqlalchemy import update

    from fieldsvc.tallies.models import TallyLine

    make_areas()
    day = dt.date(2026, 10, 3)
    mhamid = make_caravan("08.587.09.23", first_day=day, sites=())
    hidden = make_tally(mhamid, day=day, specialty="OPH",
                        lines=[("consultations", "F", "50-64", None, 1)])
    zagora = make_caravan("08.587.01.13", first_day=day, sites=())
    make_tally(zagora, day=day, specialty="OPH", lines=[("consultations", "F", "50-64", None, 10)])
    planner = auth(make_user("planner", organization="Autre association"))
    db.session.commit()
    answers = []
    for count in (1, 4):
        db.session.execute(update(TallyLine).where(
            TallyLine.version_id == hidden.current_version_id).values(count=count))
        db.session.commit()
        answers.append(client.get("/api/v1/needs?specialty=OPH&as_of=2026-10-31",
                                  headers=planner).json)
        plan = client.post("/api/v1/plans", headers=planner, json={
            "base": "08.587.01.13", "radius_km": 200, "days": 2, "team": {"OPH": 1}}).json
        answers[-1]["plan"] = plan
    assert answers[0] == answers[1]


def test_planner_cannot_difference_a_month_out_of_two_date_ranges(app, client, db):
    """Finding: from/to took any stretch of whole months, so October–November beside November
    gave October's 2 PED consultations."""
    make_areas()
    caravan = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3), sites=())
    make_tally(caravan, day=dt.date(2026, 10, 3), specialty="PED",
               lines=[("consultations", "F", "0-4", None, 2)])
    make_tally(caravan, day=dt.date(2026, 10, 3), specialty="GEN",
               lines=[("consultations", "F", "25-49", None, 30)])
    later = make_caravan("08.587.01.13", first_day=dt.date(2026, 11, 7), sites=())
    make_tally(later, day=dt.date(2026, 11, 7), specialty="PED",
               lines=[("consultations", "F", "0-4", None, 20)])
    make_tally(later, day=dt.date(2026, 11, 7), specialty="GEN",
               lines=[("consultations", "F", "25-49", None, 25)])
    header = auth(make_user("planner", organization="Autre association"))
    db.session.commit()
    for query in ("by=specialty&region=08&from=2026-10-01&to=2026-11-30",
                  "by=specialty&region=08&from=2026-11-01&to=2026-11-30"):
        assert client.get(f"/api/v1/summary?{query}", headers=header).status_code == 422
    quarter = client.get("/api/v1/summary?by=specialty&region=08&from=2026-10-01&to=2026-12-31",
                         headers=header)
    assert quarter.status_code == 200 and quarter.json["to"] == "2026-12-31"
    everything = _published(client, header, "by=specialty&region=08")
    assert not _differences(everything, _published(
        client, header, "by=specialty&region=08&from=2026-10-01&to=2026-12-31"))


def test_staff_can_revoke_a_bearer_token(app, client, db):
    """Finding: a staff bearer token could not be revoked (only expire or the whole account be
    disabled); DELETE /api/v1/tokens now revokes the token it is sent with."""
    make_areas()
    coordinator = make_user("coordinator", regions=["08"])
    kept, lost = auth(coordinator), auth(coordinator)
    db.session.commit()
    assert client.delete("/api/v1/tokens", headers=lost).status_code == 204
    assert client.get("/api/v1/me", headers=lost).status_code == 401
    assert client.get("/api/v1/me", headers=kept).status_code == 200
    events = client.get("/api/v1/audit?action=token.revoke", headers=auth(make_user("admin")))
    assert len(events.json["items"]) == 1


def test_a_session_cookie_cannot_change_anything_through_the_api(app, client, db):
    """The API skips CSRF tokens, so a logged-in browser may read it but only bearer tokens write."""
    make_areas()
    from fieldsvc.accounts.services import start_web_session

    sara = make_user("coordinator", regions=["08"], username="sara",
                     password="correct horse battery")
    sid = start_web_session(sara)
    db.session.commit()
    with client.session_transaction() as session:
        session["user_id"], session["sid"] = sara.id, sid
    assert client.get("/api/v1/me").status_code == 200
    response = client.post("/api/v1/caravans", json={
        "title": "Caravane", "commune": "08.587.01.13", "first_day": "2026-12-01",
        "last_day": "2026-12-02", "specialties": ["GEN"]})
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
