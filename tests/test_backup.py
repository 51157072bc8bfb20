"""`flask --app wsgi backup FILE` and `restore FILE`: a backup taken on SQLite restores on
PostgreSQL and back, every table equal, row for row."""

from __future__ import annotations

import datetime as dt
import gzip
import uuid
from typing import Any

from flask import Flask
from sqlalchemy import select

from fieldsvc.extensions import db
from tests.conftest import _reset
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user, publish


def _season(app: Flask) -> None:
    """A little of everything: areas, accounts, sessions, caravans, devices, tallies, reviews,
    audit events, a throttled join code and the protected release."""
    client = app.test_client()
    make_areas()
    admin = make_user("admin", username="root")
    coordinator = auth(make_user("coordinator", regions=["08"], username="amina"))
    make_user("planner", organization="Wahat Al-Khair", username="fatima")
    day = dt.date.today() - dt.timedelta(days=1)
    caravan = make_caravan(first_day=day, last_day=day + dt.timedelta(days=1), join_code="ROUNDTRP")
    _, device = make_enrollment(caravan)
    db.session.commit()
    auth(admin)
    joined = client.post("/api/v1/enrollments", json={
        "join_code": "ROUNDTRP", "display_name": "Dr Youssef", "specialty": "GEN",
        "create_profile": True, "public_consent": True})
    assert joined.status_code == 201, joined.json
    client.post("/api/v1/enrollments", json={"join_code": "NOPE2345", "display_name": "x"})
    for specialty, count in (("OPH", 12), ("GEN", 30), ("PED", 7)):
        body = {"id": str(uuid.uuid4()), "caravan_id": caravan.id, "day": day.isoformat(),
                "site_id": caravan.sites[0].id, "specialty": specialty,
                "note": "Électricité coupée l'après-midi — « ça va »",
                "lines": [{"measure": "consultations", "sex": "F", "age_band": "50-64",
                           "count": count},
                          {"measure": "referrals", "sex": "M", "age_band": "65+",
                           "condition": "IX", "count": 2}]}
        assert client.post("/api/v1/submissions", json=body, headers=device).status_code == 201
    amended = {key: value for key, value in body.items() if key != "id"}
    amended["lines"] = [dict(amended["lines"][0], count=8)]
    assert client.put(f"/api/v1/submissions/{body['id']}", json=amended,
                      headers=device).status_code == 200
    review = client.post(f"/api/v1/submissions/{body['id']}/review", headers=coordinator,
                         json={"status": "flagged", "reason": "Vérifier", "version": 2})
    assert review.status_code == 200, review.json
    client.post("/api/v1/tokens", auth=("root", "a wrong password"))
    from fieldsvc.accounts.models import ThrottleHit
    from fieldsvc.accounts.services import start_web_session

    start_web_session(admin)
    db.session.add(ThrottleHit(key="plan:user:1"))
    upcoming = make_caravan(first_day=day + dt.timedelta(days=30),
                            last_day=day + dt.timedelta(days=31), status="planned",
                            join_code="PLEDGE23")
    db.session.commit()
    pledged = client.post("/api/v1/pledges", json={"join_code": "PLEDGE23",
                                                   "display_name": "Dr Amina", "specialty": "OPH"})
    assert pledged.status_code == 201, (upcoming.id, pledged.json)
    from fieldsvc.insights.rollup import fold

    fold()
    db.session.commit()
    publish()


def _snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order, with times made UTC-aware."""
    def value(item: Any) -> Any:
        if isinstance(item, dt.datetime) and item.tzinfo is None:
            return item.replace(tzinfo=dt.UTC)
        return item

    tables = {}
    for table in db.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows = db.session.execute(select(*table.columns).order_by(*order)).all()
        tables[table.name] = [tuple(value(item) for item in row) for row in rows]
    db.session.rollback()
    return tables


def test_a_backup_round_trips_between_sqlite_and_postgresql(sqlite_app: Flask,
                                                            postgresql_app: Flask, tmp_path):
    from_sqlite, from_postgresql = tmp_path / "sqlite.fieldsvc.gz", tmp_path / "pg.fieldsvc.gz"
    try:
        with sqlite_app.app_context():
            _season(sqlite_app)
            original = _snapshot()
            result = sqlite_app.test_cli_runner().invoke(args=["backup", str(from_sqlite)])
            assert result.exit_code == 0, result.output
        empty = [name for name, rows in original.items() if not rows]
            # Facilities and census details come from files the tests do not load.
        # and the rollup fold's scratch table is empty between folds.
        assert set(empty) <= {"area_indicator", "area_population", "facility",
                              "facility_distance", "rollup_change"}, empty

        with postgresql_app.app_context():
            runner = postgresql_app.test_cli_runner()
            # A database that holds data (the catalog) is not overwritten by accident.
            refused = runner.invoke(args=["restore", str(from_sqlite)])
            assert refused.exit_code == 1 and "--replace" in refused.output
            result = runner.invoke(args=["restore", "--replace", str(from_sqlite)])
            assert result.exit_code == 0, result.output
            on_postgresql = _snapshot()
            assert on_postgresql == original
            # New rows get fresh ids after the restored ones.
            client = postgresql_app.test_client()
            token = client.post("/api/v1/tokens", auth=("amina", "correct horse battery"))
            assert token.status_code == 201, token.json
            result = runner.invoke(args=["backup", str(from_postgresql)])
            assert result.exit_code == 0, result.output
            on_postgresql = _snapshot()

        _reset(sqlite_app)
        with sqlite_app.app_context():
            runner = sqlite_app.test_cli_runner()
            result = runner.invoke(args=["restore", "--replace", str(from_postgresql)])
            assert result.exit_code == 0, result.output
            assert _snapshot() == on_postgresql
    finally:
        _reset(sqlite_app)
        _reset(postgresql_app)


def test_a_damaged_or_foreign_file_restores_nothing(app, runner, tmp_path):
    make_areas()
    db.session.commit()
    before = _snapshot()
    truncated = tmp_path / "truncated.gz"
    assert runner.invoke(args=["backup", str(tmp_path / "whole.gz")]).exit_code == 0
    whole = gzip.decompress((tmp_path / "whole.gz").read_bytes()).splitlines(keepends=True)
    truncated.write_bytes(gzip.compress(b"".join(whole[:-3])))
    for bad in (truncated, tmp_path / "text.gz"):
        if bad.name == "text.gz":
            bad.write_bytes(b"not a backup at all")
        result = runner.invoke(args=["restore", "--replace", str(bad)])
        assert result.exit_code == 1 and "Nothing was restored" in result.output, result.output
        assert _snapshot() == before
