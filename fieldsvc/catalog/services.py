"""Read and extend the catalogs of specialties and measures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeVar

from flask import current_app, g, has_request_context
from flask_babel import gettext as _
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
    """Every specialty code, read from the database (to check a code, use `is_known`)."""
    return set(db.session.scalars(select(Specialty.code)))


def measure_codes() -> set[str]:
    """Every measure code, read from the database (to check a code, use `is_known`)."""
    return set(db.session.scalars(select(Measure.code)))


Kind = Literal["specialties", "measures"]
T = TypeVar("T", Specialty, Measure)
_CACHE = "fieldsvc_catalog"  # app.extensions key: {kind: frozenset of codes}


def known_codes(kind: Kind) -> frozenset[str]:
    """The codes of `kind` this process knows, read once (may lag behind: see `is_known`)."""
    cache = current_app.extensions.setdefault(_CACHE, {})
    codes = cache.get(kind)
    if codes is None:
        codes = cache[kind] = _read(kind)
    return codes


def is_known(kind: Kind, code: str) -> bool:
    """Whether `code` is a specialty or measure of the catalog, without a query per code.

    Codes are only ever added (never renamed or removed), so a cached code is known; a code not
    cached is looked up again, once per request, before it is refused: that also picks up a code
    an admin added through another worker.
    """
    if code in known_codes(kind):
        return True
    reread: set[str] = g.setdefault("catalog_reread", set()) if has_request_context() else set()
    if kind in reread:
        return False
    reread.add(kind)
    codes = current_app.extensions[_CACHE][kind] = _read(kind)
    return code in codes


def unknown_codes(kind: Kind, codes: Iterable[str]) -> list[str]:
    """The given codes that are not in the catalog, in their order."""
    return [code for code in codes if not is_known(kind, code)]


def _read(kind: Kind) -> frozenset[str]:
    return frozenset(specialty_codes() if kind == "specialties" else measure_codes())


def _forget(kind: Kind) -> None:
    current_app.extensions.get(_CACHE, {}).pop(kind, None)


def add_specialty(data: dict) -> Specialty:
    """Add a specialty; its code can never be reused."""
    if db.session.get(Specialty, data["code"]) is not None:
        raise Conflict(_("Specialty %(code)s already exists; codes are stable.", code=data["code"]),
                       errors={"code": [_("already exists")]})
    return _add(Specialty(**data), "specialties")


def add_measure(data: dict) -> Measure:
    """Add a measure; its code can never be reused."""
    if db.session.get(Measure, data["code"]) is not None:
        raise Conflict(_("Measure %(code)s already exists; codes are stable.", code=data["code"]),
                       errors={"code": [_("already exists")]})
    return _add(Measure(**data), "measures")


def _add(entry: T, kind: Kind) -> T:
    db.session.add(entry)
    db.session.flush()
    _forget(kind)  # this process learns the code at once; other workers on their first miss
    return entry
