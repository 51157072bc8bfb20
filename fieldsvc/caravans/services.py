"""What caravans do: create, run and close them; enroll volunteers' devices."""

from __future__ import annotations

import datetime as dt
from typing import Any

LATE_SYNC_DAYS = 30


def enrollment_is_live(enrollment: Any, now: dt.datetime) -> bool:
    """A device token works until revoked, and until 30 days after its caravan's last day."""
    if enrollment.revoked_at is not None:
        return False
    caravan = enrollment.caravan
    end = max(caravan.last_day, (caravan.closed_at or now).date())
    return now.date() <= end + dt.timedelta(days=LATE_SYNC_DAYS)
