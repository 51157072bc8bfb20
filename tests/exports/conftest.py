from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from tests.factories import auth, make_areas, make_caravan, make_tally, make_user


@pytest.fixture(autouse=True)
def _fresh_release(fresh_release: None) -> None:
    """Exports read what the tests just stored through the release, as if refreshed."""


@dataclass
class Season:
    admin: dict[str, str]
    coordinator: dict[str, str]
    outsider: dict[str, str]
    planner: dict[str, str]
    zagora: int
    mhamid: int
    marrakech: int


@pytest.fixture
def season(db) -> Season:
    """An autumn in Drâa-Tafilalet (two caravans, some small counts, one rejected tally) and
    one in Marrakech."""
    make_areas()
    zagora = make_caravan("08.587.01.13", first_day=dt.date(2026, 10, 3))
    mhamid = make_caravan("08.587.09.23", title="قافلة امحاميد الغزلان", sites=(),
                          first_day=dt.date(2026, 11, 27), organizers=("Union Féminine",))
    marrakech = make_caravan("07.351.02.07", title="Caravane de Ouahat Sidi Brahim", sites=(),
                             first_day=dt.date(2026, 10, 10))
    db.session.commit()
    site = zagora.sites[0].id
    tallies = [
        (zagora, dt.date(2026, 10, 3), "OPH", site, "approved",
         [("consultations", "F", "50-64", None, 41), ("consultations", "M", "65+", "VII", 17),
          ("referrals", "F", "50-64", None, 6), ("glasses", "F", "50-64", None, 22)]),
        (zagora, dt.date(2026, 10, 4), "GEN", None, "received",
         [("consultations", "F", "25-49", None, 63), ("consultations", "M", "5-14", None, 3)]),
        (zagora, dt.date(2026, 10, 4), "PED", site, "flagged",
         [("consultations", "F", "0-4", None, 2), ("consultations", "M", "0-4", None, 9)]),
        (zagora, dt.date(2026, 10, 4), "DEN", None, "rejected",
         [("consultations", "F", "25-49", None, 500)]),
        (mhamid, dt.date(2026, 11, 27), "OPH", None, "approved",
         [("consultations", "F", "65+", None, 30), ("turned_away", "F", "65+", None, 12)]),
        (mhamid, dt.date(2026, 11, 28), "GEN", None, "received",
         [("consultations", "M", "25-49", None, 1), ("consultations", "F", "15-24", None, 48)]),
        (marrakech, dt.date(2026, 10, 10), "GEN", None, "approved",
         [("consultations", "M", "65+", None, 60), ("consultations", "F", "65+", None, 4)]),
        (marrakech, dt.date(2026, 10, 10), "OPH", None, "approved",
         [("consultations", "F", "15-24", None, 3)]),
    ]
    for caravan, day, specialty, site_id, status, lines in tallies:
        make_tally(caravan, day=day, specialty=specialty, site_id=site_id, status=status,
                   lines=lines)
    headers = {
        "admin": auth(make_user("admin")),
        "coordinator": auth(make_user("coordinator", regions=["08"])),
        "outsider": auth(make_user("coordinator", regions=["07"])),
        "planner": auth(make_user("planner", organization="Wahat Al-Khair")),
    }
    db.session.commit()
    return Season(**headers, zagora=zagora.id, mhamid=mhamid.id, marrakech=marrakech.id)
