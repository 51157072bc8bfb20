"""Caravans, their sites, volunteers and the device tokens they enroll with."""

from __future__ import annotations

import datetime as dt

from geopy.distance import geodesic
from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldsvc.accounts.models import Organization
from fieldsvc.areas.models import Area
from fieldsvc.db import Model, utcnow

CARAVAN_STATUSES = ("planned", "active", "closed")
MAX_CARAVAN_DAYS = 31

caravan_organizer = Table(
    "caravan_organizer",
    Model.metadata,
    Column("caravan_id", ForeignKey("caravan.id", ondelete="CASCADE"), primary_key=True),
    Column("organization_id", ForeignKey("organization.id"), primary_key=True),
)

caravan_specialty = Table(
    "caravan_specialty",
    Model.metadata,
    Column("caravan_id", ForeignKey("caravan.id", ondelete="CASCADE"), primary_key=True),
    Column("specialty_code", ForeignKey("specialty.code"), primary_key=True),
)


class Caravan(Model):
    __tablename__ = "caravan"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    commune_code: Mapped[str] = mapped_column(ForeignKey("area.code"), index=True)
    # Denormalised from the commune so that scope checks and regional queries need no join.
    region_code: Mapped[str] = mapped_column(String(16), index=True)
    first_day: Mapped[dt.date]
    last_day: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(10), default="planned")
    join_code: Mapped[str] = mapped_column(String(16), unique=True)
    closed_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    commune: Mapped[Area] = relationship()
    organizers: Mapped[list[Organization]] = relationship(
        secondary=caravan_organizer, lazy="selectin"
    )
    sites: Mapped[list[Site]] = relationship(
        back_populates="caravan", lazy="selectin", order_by="Site.id"
    )
    specialty_rows: Mapped[list[CaravanSpecialty]] = relationship(
        lazy="selectin", viewonly=True
    )

    @property
    def specialties(self) -> list[str]:
        return sorted(row.specialty_code for row in self.specialty_rows)


class CaravanSpecialty(Model):
    __table__ = caravan_specialty


class Site(Model):
    __tablename__ = "site"

    id: Mapped[int] = mapped_column(primary_key=True)
    caravan_id: Mapped[int] = mapped_column(
        ForeignKey("caravan.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    commune_code: Mapped[str] = mapped_column(ForeignKey("area.code"))
    lat: Mapped[float]
    lon: Mapped[float]

    caravan: Mapped[Caravan] = relationship(back_populates="sites")
    commune: Mapped[Area] = relationship()

    @property
    def km_from_commune(self) -> float | None:
        """Geodesic km to the commune's point; None while the commune has no known point."""
        commune = self.commune
        if commune.lat is None or commune.lon is None:
            return None
        return round(geodesic((self.lat, self.lon), (commune.lat, commune.lon)).km, 1)


class Volunteer(Model):
    """An optional profile that a doctor's enrollments point to, across caravans."""

    __tablename__ = "volunteer"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(120))
    specialty_code: Mapped[str | None] = mapped_column(ForeignKey("specialty.code"))
    public_consent: Mapped[bool] = mapped_column(default=False)
    # SHA-256 of the profile key the phone keeps to re-attach this profile later.
    profile_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Enrollment(Model):
    """A device's bearer token for one caravan; only the token's SHA-256 is stored."""

    __tablename__ = "enrollment"

    id: Mapped[int] = mapped_column(primary_key=True)
    caravan_id: Mapped[int] = mapped_column(
        ForeignKey("caravan.id", ondelete="CASCADE"), index=True
    )
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteer.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(120))
    specialty_code: Mapped[str | None] = mapped_column(ForeignKey("specialty.code"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    caravan: Mapped[Caravan] = relationship()
    volunteer: Mapped[Volunteer | None] = relationship()


class EnrollmentFailure(Model):
    """A failed join-code attempt, kept briefly to throttle guessing per client address."""

    __tablename__ = "enrollment_failure"

    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
