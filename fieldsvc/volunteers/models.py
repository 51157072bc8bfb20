"""Pledges: a doctor's promise to bring a specialty to a caravan still being planned."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldsvc.caravans.models import Caravan, Enrollment, Volunteer
from fieldsvc.db import Model, utcnow


class Pledge(Model):
    """A volunteer's pledge; when the caravan starts it becomes an enrollment whose bearer token
    is the secret the pledger was given (only its SHA-256 is stored, here and then there)."""

    __tablename__ = "pledge"

    id: Mapped[int] = mapped_column(primary_key=True)
    caravan_id: Mapped[int] = mapped_column(
        ForeignKey("caravan.id", ondelete="CASCADE"), index=True)
    specialty_code: Mapped[str] = mapped_column(ForeignKey("specialty.code"))
    display_name: Mapped[str] = mapped_column(String(120))
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteer.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment.id"))

    caravan: Mapped[Caravan] = relationship()
    volunteer: Mapped[Volunteer | None] = relationship()
    enrollment: Mapped[Enrollment | None] = relationship()
