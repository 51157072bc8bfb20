"""Slow guessing, never a lockout: delays per username and caller grow, a stranger's failures do
not slow the real user, and a device that logged in before still logs in during a spread attack."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from fieldsvc.accounts.models import AuditEvent
from tests.factories import make_user

PASSWORD = "correct horse battery"
HOME = {"REMOTE_ADDR": "196.200.1.7"}  # the admin's own connection
STRANGER = {"REMOTE_ADDR": "185.220.101.4"}


def _token(client, password: str, environ: dict[str, str], username: str = "admin"):
    return client.post("/api/v1/tokens", auth=(username, password), environ_base=environ)


def _age_failures(db, seconds: int) -> None:
    """Move every recorded failure `seconds` into the past (time passing)."""
    for event in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login.fail")):
        at = event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)
        event.at = at - dt.timedelta(seconds=seconds)
    db.session.commit()


def test_a_stranger_guessing_never_locks_the_real_user_out(app, db):
    make_user("admin", username="admin")
    db.session.commit()
    attacker, admin = app.test_client(), app.test_client()
    statuses = [_token(attacker, f"guess-{n}", STRANGER).status_code for n in range(12)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    # Again and again: the admin at their own address is not held up at all.
    assert _token(admin, PASSWORD, HOME).status_code == 201
    # The stranger, even with the right password, learns nothing while they must wait.
    assert _token(attacker, PASSWORD, STRANGER).status_code == 429


def test_delays_grow_for_a_username_and_caller(app, client, db):
    make_user("admin", username="admin")
    db.session.commit()
    for n in range(5):
        assert _token(client, f"guess-{n}", STRANGER).status_code == 401
    waits = []
    for n in range(4):
        refused = _token(client, "guess", STRANGER)
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        _age_failures(db, waits[-1])  # wait exactly as long as told, then fail once more
        assert _token(client, f"again-{n}", STRANGER).status_code == 401
    assert [round(w / 60) for w in waits] == [1, 2, 4, 8], waits
    # After the last failure's delay, the right password works again from there.
    _age_failures(db, 16 * 60 + 1)
    assert _token(client, PASSWORD, STRANGER).status_code == 201


def test_a_known_device_logs_in_during_a_spread_attack(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_USER", 10)  # 50 by default
    make_user("admin", username="admin")
    db.session.commit()
    laptop = app.test_client()
    assert _token(laptop, PASSWORD, HOME).status_code == 201
    assert laptop.get_cookie("fieldsvc_device") is not None  # this client is now known

    # A botnet: two wrong tries from each of many addresses.
    botnet = app.test_client()
    for n in range(5):
        for _ in range(2):
            assert _token(botnet, "guess", {"REMOTE_ADDR": f"41.92.0.{n}"}).status_code == 401
    # Unknown callers now wait, wherever they come from…
    new_phone = app.test_client()
    assert _token(new_phone, PASSWORD, {"REMOTE_ADDR": "105.66.1.1"}).status_code == 429
    # …but the admin's laptop logs in, even from a new address (a hotel's wifi).
    assert _token(laptop, PASSWORD, {"REMOTE_ADDR": "102.50.7.7"}).status_code == 201
    # A forged device cookie is just an unknown caller.
    new_phone.set_cookie("fieldsvc_device", "forged.value")
    assert _token(new_phone, PASSWORD, {"REMOTE_ADDR": "105.66.1.1"}).status_code == 429
    # The laptop's own failures slow the laptop only.
    for _ in range(5):
        assert _token(laptop, "typo", HOME).status_code == 401
    assert _token(laptop, PASSWORD, HOME).status_code == 429
