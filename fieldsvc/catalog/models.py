"""The codes everyone counts with: specialties and measures (translated labels)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from fieldsvc.db import Model


class Specialty(Model):
    __tablename__ = "specialty"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    label_fr: Mapped[str] = mapped_column(String(120))
    label_ar: Mapped[str] = mapped_column(String(120))
    label_en: Mapped[str] = mapped_column(String(120))
    # Treated only in a hospital (True), or also in any primary care facility (GEN).
    needs_hospital: Mapped[bool] = mapped_column(default=True)


class Measure(Model):
    __tablename__ = "measure"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label_fr: Mapped[str] = mapped_column(String(120))
    label_ar: Mapped[str] = mapped_column(String(120))
    label_en: Mapped[str] = mapped_column(String(120))
