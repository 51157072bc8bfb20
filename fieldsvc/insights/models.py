"""The protected release: the only counts served to callers without full detail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from fieldsvc.db import Model, utcnow


class Release(Model):
    """One version of the linked tables, protected together; the newest one is served."""

    __tablename__ = "protected_release"

    id: Mapped[int] = mapped_column(primary_key=True)
    built_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # What the tables were built from, so that a refresh with nothing new writes nothing.
    data_digest: Mapped[str] = mapped_column(String(64), index=True)
    k: Mapped[int]
    window_start: Mapped[dt.date]
    window_end: Mapped[dt.date]
    cell_count: Mapped[int]
    hidden_count: Mapped[int]
    build_seconds: Mapped[float]
    # {table name: [[*key, measure, count or None, status or None], ...]}
    tables: Mapped[dict[str, Any]] = mapped_column(JSON)
