"""Reads served by a PostgreSQL streaming replica (``READ_DATABASE_URL``), and how stale they are.

Only the views that opt in (:func:`replica_reads`, or :func:`use_replica` part-way through one)
read from the replica: summaries, needs, plans once throttled, exports and their pages. Inside
them only plain SELECTs go there (``fieldsvc.db.Session``); flushes, audit records and locking
reads stay on the primary, and so does everything that must read its own writes (submissions,
reviews, logins and tokens, throttles, the release build and the rollup fold, which run in
requests or threads that never opt in).

Each routed answer says where it came from and as of when (``X-Data-Source``, ``X-Data-As-Of``,
``X-Replica-Lag-Seconds``). An unreachable replica, or one more than
``READ_DATABASE_MAX_LAG_SECONDS`` behind, sends the reads to the primary, and the answer says
so (``X-Replica-Fallback``) instead of failing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import after_this_request, current_app, g, has_request_context
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from fieldsvc.config import REPLICA_BIND
from fieldsvc.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

# Caught up = everything the replica has received is replayed and it is still streaming; then
# its data is as of now. Otherwise as of the primary's commit time of the last replayed
# transaction (pg_last_xact_replay_timestamp). "Received" is the replica's own view: /healthz
# also compares its replay position with the primary's WAL position. The WAL receiver's status
# is hidden from roles without pg_read_all_stats: then its running process is taken for streaming.
_STATE = text("""
SELECT pg_is_in_recovery() AS in_recovery, now() AS now,
       pg_last_xact_replay_timestamp() AS replayed_at,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       coalesce(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false)
       AND coalesce((SELECT coalesce(status = 'streaming', true) FROM pg_stat_wal_receiver),
                    false) AS caught_up
""")


@dataclass(frozen=True)
class Staleness:
    """How far behind the primary the replica's answers are."""

    as_of: dt.datetime  # every transaction committed on the primary by then is in the answer
    lag_seconds: float
    in_recovery: bool
    replay_lsn: str | None


@dataclass
class _Breaker:
    """Reads stay on the primary until `retry_at` (monotonic) after the replica failed."""

    retry_at: float = 0.0


def replica_engine() -> Engine | None:
    """The replica's engine, or None when READ_DATABASE_URL is not set."""
    if not current_app.config.get("READ_DATABASE_URL"):
        return None
    return db.engines[REPLICA_BIND]


def staleness(conn: Connection) -> Staleness:
    """Ask the replica, on one of its connections, how far behind it is."""
    row = conn.execute(_STATE).one()
    now = row.now
    if not row.in_recovery or row.caught_up:
        return Staleness(now, 0.0, row.in_recovery, row.replay_lsn)
    if row.replayed_at is None:  # nothing replayed since it started: no way to tell
        return Staleness(now, float("inf"), True, row.replay_lsn)
    as_of = min(row.replayed_at, now)
    return Staleness(as_of, (now - as_of).total_seconds(), True, row.replay_lsn)


def _answers(engine: Engine | None) -> bool:
    try:
        if engine is not None:
            with engine.connect() as conn:
                staleness(conn)
        return True
    except SQLAlchemyError:
        return False


def _breaker() -> _Breaker:
    return current_app.extensions.setdefault("fieldsvc_replica", _Breaker())


def _choose() -> tuple[Engine | None, dict[str, str]]:
    """The engine this request's reads use and the headers that say so."""
    engine = replica_engine()
    if engine is None:
        return None, {}
    primary = {"X-Data-Source": "primary", "X-Data-As-Of": _iso(dt.datetime.now(dt.UTC))}
    breaker = _breaker()
    if time.monotonic() < breaker.retry_at:
        return None, {**primary, "X-Replica-Fallback": "unreachable"}
    try:
        # On the connection the request's reads will use: one checkout, one transaction.
        state = staleness(db.session.connection(bind_arguments={"bind": engine}))
    except SQLAlchemyError:
        db.session.rollback()
        _trip(breaker)
        return None, {**primary, "X-Replica-Fallback": "unreachable"}
    limit = float(current_app.config.get("READ_DATABASE_MAX_LAG_SECONDS") or 0)
    if limit and state.lag_seconds > limit:
        return None, {**primary, "X-Replica-Fallback": "behind",
                      "X-Replica-Lag-Seconds": _seconds(state.lag_seconds)}
    return engine, {"X-Data-Source": "replica", "X-Data-As-Of": _iso(state.as_of),
                    "X-Replica-Lag-Seconds": _seconds(state.lag_seconds)}


def _trip(breaker: _Breaker) -> None:
    current_app.logger.warning("the read replica (READ_DATABASE_URL) did not answer; reads go "
                               "to the primary for %ss", current_app.config.get(
                                   "READ_DATABASE_RETRY_SECONDS"))
    breaker.retry_at = time.monotonic() + float(
        current_app.config.get("READ_DATABASE_RETRY_SECONDS") or 0)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _seconds(value: float) -> str:
    return "unknown" if value == float("inf") else f"{value:.3f}"


def use_replica() -> bool:
    """From here on, let this request's plain reads be served by the replica; whether they are.

    Call it after the request's own writes and the reads that must see them (a throttle).
    """
    engine, headers = _choose()
    g.read_engine = engine
    if headers and has_request_context():
        if "read_headers" not in g:
            after_this_request(_add_headers)
        g.read_headers = headers
    return engine is not None


def _add_headers(response: Any) -> Any:
    for name, value in g.get("read_headers", {}).items():
        response.headers[name] = value
    return response


def replica_reads(view: F) -> F:
    """Serve a read-only view from the replica when there is one (put it under ``@allow``, so
    that who calls is read from the primary).

    A replica that fails part-way (gone, or a query cancelled by a conflict with recovery) is
    retried once on the primary; a streamed answer that already started cannot be.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not use_replica():
            return view(*args, **kwargs)
        try:
            return view(*args, **kwargs)
        except OperationalError:
            db.session.rollback()
            if not _answers(replica_engine()):
                _trip(_breaker())
            g.read_engine = None
            g.read_headers = {"X-Data-Source": "primary",
                              "X-Data-As-Of": _iso(dt.datetime.now(dt.UTC)),
                              "X-Replica-Fallback": "failed"}
            return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def replica_health() -> dict[str, Any] | None:
    """The replica's state for /healthz (None without READ_DATABASE_URL); never raises."""
    engine = replica_engine()
    if engine is None:
        return None
    try:
        with engine.connect() as conn:
            state = staleness(conn)
    except SQLAlchemyError:
        return {"status": "unreachable"}
    _breaker().retry_at = 0.0  # it answers again: requests may use it at once
    behind_bytes = None
    if state.replay_lsn is not None:
        try:
            behind_bytes = int(db.session.scalar(
                text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:lsn AS pg_lsn))"),
                {"lsn": state.replay_lsn}))
        except SQLAlchemyError:
            db.session.rollback()
    limit = float(current_app.config.get("READ_DATABASE_MAX_LAG_SECONDS") or 0)
    return {
        "status": "behind" if limit and state.lag_seconds > limit else "ok",
        "in_recovery": state.in_recovery,
        "as_of": _iso(state.as_of),
        "lag_seconds": None if state.lag_seconds == float("inf") else round(state.lag_seconds, 3),
        "behind_bytes": behind_bytes,
    }
