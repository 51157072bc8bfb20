"""One late-sync window: a device token, a tally and the refusal's message agree on it."""

from __future__ import annotations

import datetime as dt

import pytest

from fieldsvc.caravans.services import morocco_today, sync_deadline
from tests.factories import make_areas, make_caravan, make_enrollment
from tests.tallies.helpers import payload

TODAY = morocco_today()


def _caravan_ended(db, days_ago: int, *, closed_days_ago: int | None = None):
    make_areas()
    last = TODAY - dt.timedelta(days=days_ago)
    caravan = make_caravan(first_day=last - dt.timedelta(days=1), last_day=last,
                           status="active" if closed_days_ago is None else "closed")
    if closed_days_ago is not None:
        caravan.closed_at = dt.datetime.combine(TODAY - dt.timedelta(days=closed_days_ago),
                                                dt.time(18), dt.UTC)
    _, header = make_enrollment(caravan)
    db.session.commit()
    return caravan, header


def _submit(client, caravan, header):
    day = caravan.last_day.isoformat()
    return client.post("/api/v1/submissions", json=payload(caravan, day=day), headers=header)


def test_a_never_closed_caravan_ends_its_window_30_days_after_its_last_day(app, client, db):
    caravan, header = _caravan_ended(db, days_ago=30)
    assert sync_deadline(caravan) == TODAY
    assert client.get(f"/api/v1/caravans/{caravan.id}", headers=header).status_code == 200
    assert _submit(client, caravan, header).status_code == 201


def test_a_never_closed_caravans_tokens_expire_with_its_window(app, client, db):
    # Before, the token of a caravan nobody closed lived forever while its tallies were refused.
    caravan, header = _caravan_ended(db, days_ago=31)
    assert sync_deadline(caravan) == TODAY - dt.timedelta(days=1)
    assert client.get(f"/api/v1/caravans/{caravan.id}", headers=header).status_code == 401
    assert _submit(client, caravan, header).status_code == 401
    joined = client.post("/api/v1/enrollments", json={
        "join_code": caravan.join_code, "display_name": "Dr Amina"},
        headers={"Accept-Language": "en"})
    assert joined.status_code == 410
    assert "ended more than 30 days ago" in joined.json["detail"]
    assert "closed" not in joined.json["detail"]


def test_the_token_lives_exactly_as_long_as_tallies_are_accepted(app, client, db):
    caravan, header = _caravan_ended(db, days_ago=40, closed_days_ago=30)
    assert sync_deadline(caravan) == TODAY
    assert _submit(client, caravan, header).status_code == 201
    caravan.closed_at -= dt.timedelta(days=1)
    db.session.commit()
    assert _submit(client, caravan, header).status_code == 401


@pytest.mark.parametrize(("closed_days_ago", "counted_from"),
                         [(None, "after its last day"), (32, "after it closed"),
                          (45, "after its last day")])
def test_the_refusal_says_what_the_window_counts_from(app, db, closed_days_ago, counted_from):
    # Refused by the service itself: the token would be refused first over HTTP. Closed before
    # its last day (45 days ago, last day 40 days ago), the window counts from the last day.
    from fieldsvc.errors import ValidationFailed
    from fieldsvc.security import Principal
    from fieldsvc.tallies.schemas import SubmissionCreateSchema
    from fieldsvc.tallies.services import submit

    caravan, _ = _caravan_ended(db, days_ago=40, closed_days_ago=closed_days_ago)
    enrollment, _ = make_enrollment(caravan)
    principal = Principal(role="volunteer", enrollment=enrollment)
    content = SubmissionCreateSchema().load(payload(caravan, day=caravan.last_day.isoformat()))
    with app.test_request_context(headers={"Accept-Language": "en"}):
        with pytest.raises(ValidationFailed) as error:
            submit(content, principal)
    until = sync_deadline(caravan).isoformat()
    assert error.value.detail.startswith(f"This caravan's tallies were accepted until {until} "
                                         f"(30 days {counted_from})")
    assert error.value.extra["accepted_until"] == until


def test_the_window_reads_late_sync_days_from_the_config(app, db):
    caravan, _ = _caravan_ended(db, days_ago=10)
    app.config["LATE_SYNC_DAYS"] = 5
    try:
        assert sync_deadline(caravan) == caravan.last_day + dt.timedelta(days=5)
    finally:
        app.config["LATE_SYNC_DAYS"] = 30
