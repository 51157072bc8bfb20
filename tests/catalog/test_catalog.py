"""The catalog's codes: one cached lookup, which learns of a code an admin adds."""

from __future__ import annotations

from sqlalchemy import event

from fieldsvc.catalog.services import is_known, unknown_codes
from fieldsvc.extensions import db as _db
from tests.factories import auth, make_user

NEPHROLOGY = {"code": "NEP", "label_fr": "Néphrologie", "label_ar": "أمراض الكلى",
              "label_en": "Nephrology"}


def test_codes_are_looked_up_once_not_per_code(app, db):
    assert is_known("specialties", "OPH")
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - a counter
    event.listen(_db.engine, "before_cursor_execute", listener)
    try:
        assert [is_known("specialties", code) for code in ("GEN", "PED", "OPH")] == [True] * 3
        assert is_known("measures", "glasses")
        assert is_known("measures", "consultations")
    finally:
        event.remove(_db.engine, "before_cursor_execute", listener)
    assert len(statements) == 1  # the measures, once; the specialties were already known


def test_a_code_an_admin_adds_is_known_at_once(app, client, db):
    assert unknown_codes("specialties", ["OPH", "NEP"]) == ["NEP"]
    response = client.post("/api/v1/specialties", json=NEPHROLOGY,
                           headers=auth(make_user("admin")))
    assert response.status_code == 201
    assert unknown_codes("specialties", ["OPH", "NEP"]) == []
