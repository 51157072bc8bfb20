"""The demo: organizations, accounts, a realistic idempotent season, and `flask setup`."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fieldsvc.accounts.models import Organization, User
from fieldsvc.accounts.services import authenticate
from fieldsvc.caravans.models import Caravan, Site
from fieldsvc.demo import CARAVANS, CHAPTERS, DEMO_LOGINS, load_demo
from fieldsvc.errors import ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.tallies.models import Submission, TallyLine
from fieldsvc.tallies.services import counted_lines
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
    coordinator = authenticate("coordinator", "oasis-de-zagora-26")
    assert coordinator.role == "coordinator"
    assert coordinator.region_codes == ["07", "08"]  # Marrakech-Safi and Drâa-Tafilalet
    planner = authenticate("planner", "wahat-al-khair-26")
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
    assert "atlas-caravanes-26" not in result.output
    assert db.session.scalars(select(User)).all() == []


def test_setup_prints_the_demo_logins_and_keeps_data(runner, db):
    make_areas()
    db.session.commit()

    first = runner.invoke(args=["setup", "--demo"])
    second = runner.invoke(args=["setup"])

    assert first.exit_code == 0, first.output
    assert "user 'coordinator'  password 'oasis-de-zagora-26'" in first.output
    assert "Existing data kept." in second.output
    assert "user 'planner'  password 'wahat-al-khair-26'" in second.output


def _sum(rows, *conditions) -> int:
    return db.session.scalar(select(func.coalesce(func.sum(rows.c.count), 0)).where(*conditions))


def test_demo_season_is_realistic_and_idempotent(app):
    from fieldsvc.catalog.codes import ICD10_CHAPTERS

    assert all(ch in ICD10_CHAPTERS for chapters in CHAPTERS.values() for ch in chapters)
    assert len(CARAVANS) == 12
    make_areas()  # only Ouahat Sidi Brahim, Zagora, M'hamid and Tinghir of the demo's communes
    db.session.commit()
    said: list[str] = []
    summary = load_demo(echo=said.append)
    db.session.commit()
    assert "4 caravans created" in summary
    assert any("08.587.09.33" in line and "areas load" in line for line in said)
    caravans = list(db.session.scalars(select(Caravan).order_by(Caravan.first_day)))
    assert sorted(c.commune_code for c in caravans) == [
        "07.351.02.07", "08.577.01.11", "08.587.01.13", "08.587.09.23"]
    assert all(len(c.organizers) >= 1 for c in caravans)
    for site in db.session.scalars(select(Site)):
        commune = next(c for c in caravans if c.id == site.caravan_id)
        expected = {"07.351.02.07": 31.70, "08.587.01.13": 30.33, "08.587.09.23": 29.82,
                    "08.577.01.11": 31.51}[commune.commune_code]
        assert abs(site.lat - expected) < 0.05

    rows = counted_lines()
    consultations = rows.c.measure_code == "consultations"
    by_specialty = dict(db.session.execute(
        select(rows.c.specialty_code, func.sum(rows.c.count)).where(consultations)
        .group_by(rows.c.specialty_code)).all())
    assert max(by_specialty, key=by_specialty.get) == "GEN"
    assert _sum(rows, rows.c.specialty_code == "OPH", rows.c.measure_code == "procedures",
                rows.c.condition == "VII") > 0
    assert _sum(rows, rows.c.specialty_code == "OPH", rows.c.measure_code == "glasses") > 0
    assert _sum(rows, rows.c.specialty_code != "OPH", rows.c.measure_code == "glasses") == 0
    assert _sum(rows, rows.c.specialty_code == "PED", rows.c.age_band.not_in(["0-4", "5-14"])) == 0
    assert _sum(rows, rows.c.specialty_code == "GYN", (rows.c.sex == "M")
                | rows.c.age_band.not_in(["15-24", "25-49"])) == 0
    assert _sum(rows, rows.c.measure_code == "turned_away") > 0
    assert _sum(rows, rows.c.measure_code == "referrals") > 0
    statuses = dict(db.session.execute(
        select(Submission.review_status, func.count()).group_by(Submission.review_status)).all())
    assert statuses.get("flagged", 0) >= 1 and statuses.get("approved", 0) >= 1

    before = (db.session.scalar(select(func.count()).select_from(Submission)),
              db.session.scalar(select(func.count()).select_from(TallyLine)))
    again = load_demo(echo=said.append)
    db.session.commit()
    assert "0 caravans created" in again
    after = (db.session.scalar(select(func.count()).select_from(Submission)),
             db.session.scalar(select(func.count()).select_from(TallyLine)))
    assert after == before
