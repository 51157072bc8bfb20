"""Read and extend the catalogs of specialties and measures."""

from __future__ import annotations

from sqlalchemy import select

from fieldsvc.catalog.codes import MEASURES, SPECIALTIES
from fieldsvc.catalog.models import Measure, Specialty
from fieldsvc.errors import Conflict
from fieldsvc.extensions import db


def ensure_catalog() -> None:
    """Insert the standard codes that are missing (idempotent; never renames a code)."""
    have = set(db.session.scalars(select(Specialty.code)))
    for code, (fr, ar, en, hospital) in SPECIALTIES.items():
        if code not in have:
            db.session.add(
                Specialty(code=code, label_fr=fr, label_ar=ar, label_en=en, needs_hospital=hospital)
            )
    have = set(db.session.scalars(select(Measure.code)))
    for code, (fr, ar, en) in MEASURES.items():
        if code not in have:
            db.session.add(Measure(code=code, label_fr=fr, label_ar=ar, label_en=en))
    db.session.flush()


def list_specialties() -> list[Specialty]:
    """List specialties by code."""
    return list(db.session.scalars(select(Specialty).order_by(Specialty.code)))


def list_measures() -> list[Measure]:
    """List measures by code."""
    return list(db.session.scalars(select(Measure).order_by(Measure.code)))


def specialty_codes() -> set[str]:
    return set(db.session.scalars(select(Specialty.code)))


def measure_codes() -> set[str]:
    return set(db.session.scalars(select(Measure.code)))


def add_specialty(data: dict) -> Specialty:
    """Add a specialty; its code can never be reused."""
    if db.session.get(Specialty, data["code"]) is not None:
        raise Conflict(f"Specialty {data['code']} already exists; codes are stable.",
                       errors={"code": ["already exists"]})
    specialty = Specialty(**data)
    db.session.add(specialty)
    db.session.flush()
    return specialty


def add_measure(data: dict) -> Measure:
    """Add a measure; its code can never be reused."""
    if db.session.get(Measure, data["code"]) is not None:
        raise Conflict(f"Measure {data['code']} already exists; codes are stable.",
                       errors={"code": ["already exists"]})
    measure = Measure(**data)
    db.session.add(measure)
    db.session.flush()
    return measure
