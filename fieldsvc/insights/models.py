"""The protected release: the only counts served to callers without full detail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, String
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


class TallyRollup(Model):
    """The counted lines summed by commune, specialty, measure, sex, age band, condition, day and
    caravan (so that filters on caravans and organizations, and need scores' caravan-days, read it).

    Exact up to the submissions marked unrolled (``tallies.models.UNROLLED``): readers add those
    submissions' current lines and subtract what the rollup holds for them (see
    ``insights.rollup``). Written only by the fold, off the request path.
    """

    __tablename__ = "tally_rollup"
    __table_args__ = (
        Index("ix_tally_rollup_slice", "commune_code", "day", "specialty_code"),
        Index("ix_tally_rollup_caravan", "caravan_id"),
        Index("ix_tally_rollup_specialty_day", "specialty_code", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    commune_code: Mapped[str] = mapped_column(String(16))
    day: Mapped[dt.date]
    specialty_code: Mapped[str] = mapped_column(String(8))
    measure_code: Mapped[str] = mapped_column(String(32))
    sex: Mapped[str] = mapped_column(String(1))
    age_band: Mapped[str] = mapped_column(String(8))
    condition: Mapped[str | None] = mapped_column(String(8))
    caravan_id: Mapped[int]  # no foreign key: rebuilt from the lines, never joined for integrity
    count: Mapped[int]
    line_count: Mapped[int]  # how many raw lines the count sums (a zero count is still a group)


class TallyRollupMonth(Model):
    """The same by month (``day`` is the month's first day), without condition: several times
    smaller, for summaries by month, quarter or year, or by no period at all."""

    __tablename__ = "tally_rollup_month"
    __table_args__ = (
        Index("ix_tally_rollup_month_slice", "commune_code", "day", "specialty_code"),
        Index("ix_tally_rollup_month_caravan", "caravan_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    commune_code: Mapped[str] = mapped_column(String(16))
    day: Mapped[dt.date]
    specialty_code: Mapped[str] = mapped_column(String(8))
    measure_code: Mapped[str] = mapped_column(String(32))
    sex: Mapped[str] = mapped_column(String(1))
    age_band: Mapped[str] = mapped_column(String(8))
    caravan_id: Mapped[int]
    count: Mapped[int]
    line_count: Mapped[int]


class RollupChange(Model):
    """Scratch rows of one fold (the versions to add and subtract), emptied before it commits."""

    __tablename__ = "rollup_change"

    version_id: Mapped[int] = mapped_column(primary_key=True)
    sign: Mapped[int] = mapped_column(primary_key=True)


class TallyRollupYear(Model):
    """The same by province and year (``day`` is the year's first day), without commune: tens of
    thousands of rows for the whole country, for national and regional summaries by year or by
    no period at all (region × sex × age band, province × specialty for a year)."""

    __tablename__ = "tally_rollup_year"
    __table_args__ = (
        Index("ix_tally_rollup_year_slice", "province_code", "day", "specialty_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(String(16))
    day: Mapped[dt.date]
    specialty_code: Mapped[str] = mapped_column(String(8))
    measure_code: Mapped[str] = mapped_column(String(32))
    sex: Mapped[str] = mapped_column(String(1))
    age_band: Mapped[str] = mapped_column(String(8))
    count: Mapped[int]
    line_count: Mapped[int]
