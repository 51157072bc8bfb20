"""Organizations, staff users, API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldsvc.db import Model, TimestampMixin, utcnow

ROLES = ("admin", "coordinator", "planner")
ORGANIZATION_KINDS = ("association", "commune_council", "partner")

user_region = Table(
    "user_region",
    Model.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("region_code", ForeignKey("area.code"), primary_key=True),
)


class Organization(TimestampMixin, Model):
    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    name_ar: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="association")


class User(TimestampMixin, Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))
    active: Mapped[bool] = mapped_column(default=True)

    organization: Mapped[Organization | None] = relationship()
    region_rows: Mapped[list[Any]] = relationship(
        "Area", secondary=user_region, viewonly=True, lazy="selectin"
    )

    @property
    def region_codes(self) -> list[str]:
        return sorted(area.code for area in self.region_rows)


class ApiToken(TimestampMixin, Model):
    """A staff bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    expires_at: Mapped[dt.datetime]

    user: Mapped[User] = relationship()


class WebSession(Model):
    """A logged-in browser session: the cookie carries a random id, only its SHA-256 is stored,
    so logging out (or an admin's change to the user) ends it on the server."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]


class ThrottleHit(Model):
    """One costly request (a plan) by one caller, kept briefly so every worker counts them."""

    __tablename__ = "throttle_hit"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class AuditEvent(Model):
    """Who did what, when: logins, enrollments, submissions, reviews, revocations, exports."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(20))  # user / volunteer / anonymous / system
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40), index=True)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    region_code: Mapped[str | None] = mapped_column(String(16), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
