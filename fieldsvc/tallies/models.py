"""Submissions (one volunteer's tally for a caravan, day, specialty and site), versions, lines."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldsvc.db import Model, utcnow

REVIEW_STATUSES = ("received", "approved", "flagged", "rejected")

# A submission whose counted lines differ from what the summary rollup holds for it
# (fieldsvc/insights/rollup.py): its current version, or nothing when rejected, against the
# version folded in (0: none). New, amended and newly rejected or un-rejected submissions match
# without any write-path code; the partial index keeps them quick to find. The same text is the
# index's predicate and the readers' condition, so that PostgreSQL uses the index.
# Spelled `(...) IS TRUE` so that PostgreSQL estimates it from the extended statistics the
# migration creates on the expression (a bare `<>` is estimated at half the table, and the plan
# then scans every submission).
UNROLLED = ("(rolled_version_id <> CASE WHEN review_status = 'rejected' THEN 0 "
            "ELSE coalesce(current_version_id, 0) END) IS TRUE")


class Submission(Model):
    __tablename__ = "submission"
    __table_args__ = (
        Index("ix_submission_unrolled", "id",
              postgresql_where=text(UNROLLED), sqlite_where=text(UNROLLED)),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUID made by the phone
    caravan_id: Mapped[int] = mapped_column(ForeignKey("caravan.id"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment.id"), index=True)
    review_status: Mapped[str] = mapped_column(String(10), default="received", index=True)
    review_reason: Mapped[str | None] = mapped_column(String(500))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reviewed_at: Mapped[dt.datetime | None]
    # The version that aggregates count; set once the first version is flushed. No foreign key:
    # submission and submission_version would reference each other (the service keeps it right).
    current_version_id: Mapped[int | None] = mapped_column(index=True)
    # The version whose lines the summary rollup holds (0: none); only the rollup's fold sets it.
    rolled_version_id: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    versions: Mapped[list[SubmissionVersion]] = relationship(
        back_populates="submission",
        foreign_keys="SubmissionVersion.submission_id",
        order_by="SubmissionVersion.number",
    )
    current_version: Mapped[SubmissionVersion | None] = relationship(
        primaryjoin="foreign(Submission.current_version_id) == SubmissionVersion.id",
        viewonly=True,
    )


class SubmissionVersion(Model):
    """One content of a submission; a new version is made only when the content changes."""

    __tablename__ = "submission_version"
    __table_args__ = (UniqueConstraint("submission_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    caravan_id: Mapped[int] = mapped_column(ForeignKey("caravan.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    day: Mapped[dt.date]
    specialty_code: Mapped[str] = mapped_column(ForeignKey("specialty.code"))
    content_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    flags: Mapped[list[Any] | None] = mapped_column(JSON)  # plausibility flags, not rejections
    # A coordinator typing in a paper tally sheet; None when the volunteer's phone sent it.
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    submission: Mapped[Submission] = relationship(
        back_populates="versions", foreign_keys=[submission_id]
    )
    lines: Mapped[list[TallyLine]] = relationship(
        back_populates="version", order_by="TallyLine.id", cascade="all, delete-orphan"
    )


class TallyLine(Model):
    """A disjoint count: a line without condition is the part not attributed to a chapter."""

    __tablename__ = "tally_line"
    __table_args__ = (Index("ix_tally_line_version_measure", "version_id", "measure_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("submission_version.id", ondelete="CASCADE"))
    measure_code: Mapped[str] = mapped_column(ForeignKey("measure.code"))
    sex: Mapped[str] = mapped_column(String(1))
    age_band: Mapped[str] = mapped_column(String(8))
    condition: Mapped[str | None] = mapped_column(String(8))
    count: Mapped[int]

    version: Mapped[SubmissionVersion] = relationship(back_populates="lines")
