"""The demo's organizations and accounts, and `flask setup`'s handling of them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fieldsvc.accounts.models import Organization, User
from fieldsvc.accounts.services import authenticate
from fieldsvc.errors import ValidationFailed
from fieldsvc.web.demo import DEMO_LOGINS, load_demo
from tests.factories import make_areas


def test_demo_has_the_forums_organizations_and_accounts(db):
    make_areas()

    load_demo(echo=lambda message: None)
    db.session.commit()

    organizations = {o.name: o for o in db.session.scalars(select(Organization))}
    for name, kind in [
        ("Wahat Al-Khair", "association"),
        ("Association Al-Muqim des médecins résidents", "association"),
        ("Union des femmes marocaines", "association"),
        ("Zuhur Al-Waha pour le développement social", "association"),
        ("Conseil communal de Ouahat Sidi Brahim", "commune_council"),
    ]:
        assert organizations[name].kind == kind
        assert organizations[name].name_ar
    coordinator = authenticate("coordinator", "demo-coordinator")
    assert coordinator.role == "coordinator"
    assert coordinator.region_codes == ["07", "08"]  # Marrakech-Safi and Drâa-Tafilalet
    planner = authenticate("planner", "demo-planner")
    assert planner.organization.name == "Wahat Al-Khair"
    for username, password, role in DEMO_LOGINS:
        assert authenticate(username, password).role == role


def test_demo_twice_changes_nothing(db):
    make_areas()
    load_demo(echo=lambda message: None)
    db.session.commit()
    users = db.session.scalars(select(User.username).order_by(User.username)).all()
    load_demo(echo=lambda message: None)
    db.session.commit()
    assert db.session.scalars(select(User.username).order_by(User.username)).all() == users
    assert len(db.session.scalars(select(Organization)).all()) >= 5


def test_demo_asks_for_the_areas_first(db):
    with pytest.raises(ValidationFailed, match="areas load"):
        load_demo(echo=lambda message: None)


def test_production_setup_creates_no_demo_accounts(app, runner, db, monkeypatch):
    make_areas()  # so setup does not load the national data set here
    db.session.commit()
    monkeypatch.setitem(app.config, "FIELDSVC_ENV", "production")

    result = runner.invoke(args=["setup"])

    assert result.exit_code == 0, result.output
    assert "users create NAME --role admin" in result.output
    assert "demo-admin" not in result.output
    assert db.session.scalars(select(User)).all() == []


def test_setup_prints_the_demo_logins_and_keeps_data(runner, db):
    make_areas()
    db.session.commit()

    first = runner.invoke(args=["setup", "--demo"])
    second = runner.invoke(args=["setup"])

    assert first.exit_code == 0, first.output
    assert "user 'coordinator'  password 'demo-coordinator'" in first.output
    assert "Existing data kept." in second.output
    assert "user 'planner'  password 'demo-planner'" in second.output
