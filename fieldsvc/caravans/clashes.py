"""Clash warnings: two caravans close in space and time compete for the same patients.

Rule (one owner): two caravans clash when some point of one (its sites, else its commune's point)
lies within ``CLASH_KM`` km (geodesic, default 30) of some point of the other, and the days
between them are at most ``CLASH_DAYS`` (default 14). The days between two caravans are 0 when
their days overlap, else the later one's first day minus the earlier one's last day (a caravan
ending on the 28th and one starting on the 12th of the next month are 14 days apart). A clash is
a warning, never a refusal: associations decide, fieldsvc only makes the overlap visible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from geopy.distance import geodesic
from sqlalchemy import or_, select

from fieldsvc.caravans.models import Caravan, caravan_organizer
from fieldsvc.extensions import db
from fieldsvc.security import Principal


@dataclass
class Clash:
    """Another caravan too close to ``caravan`` in km and days."""

    caravan: Caravan
    other: Caravan
    km: float
    days_apart: int

    @property
    def message(self) -> str:
        other = self.other
        organizers = ", ".join(org.name for org in other.organizers) or "—"
        values = {"id": other.id, "title": other.title, "first": other.first_day.isoformat(),
                  "last": other.last_day.isoformat(), "organizers": organizers,
                  "km": f"{self.km:.1f}", "days": self.days_apart}
        if self.days_apart == 0:
            return _("Caravan %(id)s “%(title)s” (%(first)s to %(last)s, organized by "
                     "%(organizers)s) works %(km)s km away on the same days; agree with its "
                     "organizers to spread out.", **values)
        return _("Caravan %(id)s “%(title)s” (%(first)s to %(last)s, organized by "
                 "%(organizers)s) works %(km)s km away, %(days)s days apart; agree with its "
                 "organizers to spread out.", **values)


def caravan_points(caravan: Caravan) -> list[tuple[float, float]]:
    """Where a caravan works: its sites' points, else its commune's point, else nowhere known."""
    points = [(site.lat, site.lon) for site in caravan.sites]
    if not points and caravan.commune.lat is not None and caravan.commune.lon is not None:
        points = [(caravan.commune.lat, caravan.commune.lon)]
    return points


def days_apart(a: Caravan, b: Caravan) -> int:
    """Days between two caravans: 0 when they overlap, else the gap from one's end to the other's start."""
    return max(0, (b.first_day - a.last_day).days, (a.first_day - b.last_day).days)


def find_clashes(caravan: Caravan) -> list[Clash]:
    """The other caravans within CLASH_KM km and CLASH_DAYS days of this one, nearest first."""
    max_km = float(current_app.config["CLASH_KM"])
    max_days = int(current_app.config["CLASH_DAYS"])
    mine = caravan_points(caravan)
    if not mine:
        return []
    window = dt.timedelta(days=max_days)
    # The days are checked in SQL; the few caravans left are measured with geopy.
    candidates = db.session.scalars(
        select(Caravan).where(
            Caravan.id != caravan.id,
            Caravan.first_day <= caravan.last_day + window,
            Caravan.last_day >= caravan.first_day - window,
        ).order_by(Caravan.first_day, Caravan.id))
    clashes = []
    for other in candidates:
        theirs = caravan_points(other)
        if not theirs:
            continue
        km = min(geodesic(a, b).km for a in mine for b in theirs)
        if km <= max_km:
            clashes.append(Clash(caravan, other, round(km, 1), days_apart(caravan, other)))
    return sorted(clashes, key=lambda clash: (clash.km, clash.days_apart, clash.other.id))


def clash_warnings(caravan: Caravan, warnings: list[str]) -> list[Clash]:
    """Append one warning per clashing caravan to ``warnings``; return the clashes."""
    clashes = find_clashes(caravan)
    warnings.extend(clash.message for clash in clashes)
    return clashes


def notifications(principal: Principal, today: dt.date) -> list[Clash]:
    """Clashes of the caravans still to come that the caller's organization organizes (or, for
    coordinators, that run in their regions; for admins, all of them)."""
    query = select(Caravan).where(Caravan.last_day >= today, Caravan.status != "closed")
    if principal.role != "admin":
        mine = []
        if principal.organization_id is not None:
            mine.append(Caravan.id.in_(
                select(caravan_organizer.c.caravan_id)
                .where(caravan_organizer.c.organization_id == principal.organization_id)))
        if principal.role == "coordinator" and principal.region_codes:
            mine.append(Caravan.region_code.in_(principal.region_codes))
        if not mine:
            return []
        query = query.where(or_(*mine))
    clashes: list[Clash] = []
    for caravan in db.session.scalars(query.order_by(Caravan.first_day, Caravan.id)):
        clashes.extend(find_clashes(caravan))
    return clashes
