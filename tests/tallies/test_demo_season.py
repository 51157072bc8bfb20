"""The demo season: caravans in real communes, tallies through the service, idempotent."""

from __future__ import annotations

from sqlalchemy import func, select

from fieldsvc.caravans.models import Caravan, Site
from fieldsvc.extensions import db
from fieldsvc.tallies.demo import CARAVANS, CHAPTERS
from fieldsvc.tallies.models import Submission, TallyLine
from fieldsvc.tallies.services import counted_lines
from fieldsvc.web.demo import load_demo
from tests.factories import make_areas


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
