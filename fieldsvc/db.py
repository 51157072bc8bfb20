"""Declarative base with a naming convention, the engine settings of each database, the session
that sends a request's plain reads to a replica when asked (fieldsvc.replica), and the integer
limits every schema checks ids and offsets against (a larger number never reaches SQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g, has_app_context
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy.session import Session as FlaskSession
from marshmallow import validate
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlalchemy.sql.elements import TextClause

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Model(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={dt.datetime: DateTime(timezone=True)},
    )


class Session(FlaskSession):
    """Flask-SQLAlchemy's session; in a request that fieldsvc.replica routed to the replica
    (``g.read_engine``), plain SELECTs go there and everything else stays on the primary."""

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None,
                 **kwargs: Any) -> Any:
        if bind is None and not self._flushing and has_app_context():
            replica = g.get("read_engine")
            if replica is not None and plain_read(clause):
                return replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


def plain_read(clause: Any) -> bool:
    """Whether a statement only reads, without locks: a standby can serve it.

    Flushes, INSERT/UPDATE/DELETE, SELECT … FOR UPDATE and text that is not a SELECT are not
    (a hot standby would refuse them anyway: "cannot execute … in a read-only transaction").
    """
    if clause is None or not getattr(clause, "is_select", False):
        return isinstance(clause, TextClause) and _select_text(clause.text)
    if getattr(clause, "_for_update_arg", None) is not None:
        return False
    element = getattr(clause, "element", None)  # text(…).columns(…): judge the text
    return _select_text(element.text) if isinstance(element, TextClause) else True


def _select_text(sql: str) -> bool:
    words = sql.lstrip(" \t\r\n(").split(None, 1)
    return bool(words) and words[0].upper() == "SELECT" and " FOR UPDATE" not in sql.upper()


class TimestampMixin:
    """When the row was made (UTC)."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Turn on WAL and foreign keys, and let SQLAlchemy own transactions on SQLite."""
    module = type(dbapi_connection).__module__
    if module.startswith("psycopg"):
        # JIT compiling costs more than it saves on the short statements served here (0.75 s of
        # a 1 s summary at 1 M lines, measured by bench.summary): off for our sessions.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()
        return
    if not module.startswith("sqlite3"):
        return
    # pysqlite's own BEGIN is deferred; we issue BEGIN IMMEDIATE ourselves (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn: Any) -> None:
    """Begin every SQLite transaction IMMEDIATE.

    A deferred transaction that reads and then writes after another connection's commit fails at
    once with "database is locked", whatever the busy timeout; taking the write lock up front makes
    writers queue on the busy timeout instead.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# Ids, counts and offsets are 32-bit integers in every database we run on.
MAX_INT = 2**31 - 1
ID_RANGE = validate.Range(1, MAX_INT, error=_l("Not a known id."))
OFFSET_RANGE = validate.Range(0, MAX_INT, error=_l("Use a whole number from 0 to 2147483647."))
