"""Shared builders for the tallies tests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fieldsvc.extensions import db
from fieldsvc.tallies.services import morocco_today
from tests.factories import make_areas, make_caravan, make_enrollment

# Relative to today, so that the late-sync window never closes on these tests.
DAY = morocco_today() - dt.timedelta(days=1)


def lines(consultations: int = 12, **extra: int) -> list[dict[str, Any]]:
    """An ophthalmology-like tally: consultations for two bands, plus any other measures."""
    rows = [
        {"measure": "consultations", "sex": "F", "age_band": "50-64", "count": consultations},
        {"measure": "consultations", "sex": "M", "age_band": "65+", "condition": "VII", "count": 4},
    ]
    for measure, count in extra.items():
        rows.append({"measure": measure, "sex": "F", "age_band": "65+", "count": count})
    return rows


def payload(caravan: Any, **overrides: Any) -> dict[str, Any]:
    body = {
        "id": str(uuid.uuid4()),
        "caravan_id": caravan.id,
        "site_id": caravan.sites[0].id if caravan.sites else None,
        "day": DAY.isoformat(),
        "specialty": "OPH",
        "lines": lines(),
    }
    body.update(overrides)
    return body


def field_setup(**caravan_kwargs: Any):
    """Areas, a caravan in Zagora (Drâa-Tafilalet) and one enrolled volunteer, committed."""
    make_areas()
    caravan_kwargs.setdefault("first_day", DAY)
    caravan = make_caravan(**caravan_kwargs)
    enrollment, header = make_enrollment(caravan)
    db.session.commit()
    return caravan, enrollment, header
