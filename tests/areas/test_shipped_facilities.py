"""The Ministry of Health's facility lists ship with fieldsvc, as published, and `setup` loads them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from fieldsvc.areas.facilities import SHIPPED_LISTS
from fieldsvc.areas.models import Facility, FacilityDistance
from tests.factories import make_areas

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
# The digests data.gov.ma's lists had when they were collected (shared/data/README.md).
PUBLISHED_SHA256 = {"moh-hospitals-2024.csv": "c0ccf59a047b81b2",
                    "moh-primary-care-2024.csv": "248cbec87f5019ba"}


def test_the_shipped_lists_are_the_published_files_byte_for_byte():
    for path in SHIPPED_LISTS:
        assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] == PUBLISHED_SHA256[path.name]
        if (SHARED / path.name).exists():
            assert path.read_bytes() == (SHARED / path.name).read_bytes()


def test_setup_imports_them_so_need_scores_use_real_distances(runner, db):
    make_areas()
    db.session.commit()
    result = runner.invoke(args=["setup", "--no-demo"])
    assert result.exit_code == 0, result.output
    assert "moh-hospitals-2024.csv" in result.output
    db.session.expire_all()
    zagora = db.session.execute(
        select(Facility.name, Facility.category).where(Facility.commune_code == "08.587.01.13")
    ).all()
    assert ("Ed-Derrak", "HP") in zagora
    distance = db.session.get(FacilityDistance, ("08.587.01.13", "OPH"))
    assert distance is not None and distance.km == pytest.approx(0, abs=0.01)
    mhamid = db.session.get(FacilityDistance, ("08.587.09.23", "OPH"))
    assert mhamid is not None and 50 < mhamid.km < 70  # M'Hamid to Zagora's hospital
    count = len(db.session.scalars(select(Facility)).all())
    again = runner.invoke(args=["setup", "--no-demo"])
    assert again.exit_code == 0 and "moh-hospitals" not in again.output
    assert len(db.session.scalars(select(Facility)).all()) == count
