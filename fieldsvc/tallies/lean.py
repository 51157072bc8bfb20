"""POST /api/v1/submissions for a volunteer's device, without the framework's layers.

The hot route of the service: every phone of every caravan sends its tallies here. The lean
handler serves the usual case: a device's bearer token, a JSON body that
``schemas.fast_load_submission`` accepts, no query string, on PostgreSQL. It runs in a real
request context (translations, the caller's address, the session and every ``after_request``
hook are the application's own) and calls the same service as the route (``services.submit``),
so the stored rows, the audit event and the answer are the route's; what it skips is URL
dispatch through flask-smorest and webargs, the ``before_request`` hooks whose checks it makes
itself (the body's size, nesting, numbers and text, its media type, the caller's role) and
marshmallow.

Anything else it declines before writing anything, and the request goes through the whole
application as before: staff callers, refusals (401, 403, 409, 422…), bodies it does not
accept, a failure of the database. A retry of a stored tally is still answered 200 with the
same body, by whichever path serves it. ``tests/tallies/test_lean_ingest.py`` compares the two
paths' answers, headers and stored rows.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import psycopg
from flask import Flask, jsonify, request
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from fieldsvc.caravans.services import device_by_token_sql, live_device
from fieldsvc.errors import DomainError, may_hold_unstorable_text, unstorable_text
from fieldsvc.extensions import db
from fieldsvc.http import hostile_json, register_fast_route
from fieldsvc.security import STAFF_TOKEN_PREFIX, token_digest
from fieldsvc.tallies import services
from fieldsvc.tallies.schemas import fast_dump_submission, fast_load_submission

PATH = "/api/v1/submissions"
JSON_TYPES = {"application/json", "application/json; charset=utf-8",
              "application/json;charset=utf-8"}


def install(app: Flask) -> None:
    """Serve device tallies through the lean handler when the database is PostgreSQL (where a
    tally is one statement in autocommit) and LEAN_INGEST is on."""
    if not app.config.get("LEAN_INGEST", True):
        return
    url = str(app.config.get("SQLALCHEMY_DATABASE_URI") or "")
    if not url.startswith(("postgresql", "postgres:")):
        return
    register_fast_route(app, "POST", PATH, lambda environ: serve(app, environ))


def serve(app: Flask, environ: dict[str, Any]) -> Any:
    """The response to a device's usual tally, or None to let the application serve it."""
    limit = app.config.get("MAX_CONTENT_LENGTH") or 0
    length = environ.get("CONTENT_LENGTH", "")
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    token = authorization[7:].strip()
    if (environ.get("QUERY_STRING") or environ.get("CONTENT_TYPE", "").lower() not in JSON_TYPES
            or not length.isdigit() or not 0 < int(length) < limit
            or authorization[:7].lower() != "bearer " or token.startswith(STAFF_TOKEN_PREFIX)):
        return None
    raw = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(raw)  # the application reads it again if this declines
    with app.request_context(environ):
        if not services.one_statement_insert():
            return None
        data = _submission(raw)  # the catalog's codes are the application's
        if data is None:
            return None
        if db.session.registry.has():
            # Reading the catalog the first time took a connection of the application's pool:
            # give it back before taking the handler's (or a burst would hold two per request).
            db.session.close()
        try:
            stored = _store(app, data, token)
        except (DomainError, HTTPException, SQLAlchemyError, psycopg.Error):
            # The database failed: nothing was stored by this attempt (the insert is one
            # statement, atomic on its own), or it was and the application finds it (200).
            return None
        if stored is None:
            return None
        # The route's answer: the same dump, JSON provider and after_request hooks.
        response = jsonify(fast_dump_submission(stored))
        response.status_code = 201
        return app.finalize_request(response)


def _submission(raw: bytes) -> services.SubmissionInput | None:
    """The body as the route's schema loads it, or None for anything the route must judge."""
    if hostile_json(raw) is not None:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if may_hold_unstorable_text(raw) and unstorable_text(body) is not None:
        return None
    data, _ = fast_load_submission(body)
    return data


def _store(app: Flask, data: services.SubmissionInput,
           token: str) -> services.StoredSubmission | None:
    """Read the token and store the tally on a connection in autocommit, without the ORM
    session: two statements, the second committed before the driver returns."""
    engine = _engine(app)
    connection = engine.raw_connection()
    try:
        with connection.dbapi_connection.cursor() as cursor:
            cursor.execute(_token_sql(engine.dialect), {"digest": token_digest(token)})
            row = cursor.fetchone()
            principal = None if row is None else live_device(tuple(row))
            if principal is None:
                return None  # the application says why (401)

            def execute(sql: str, params: dict[str, Any]) -> tuple:
                cursor.execute(sql, params)
                return tuple(cursor.fetchone())

            return services.lean_submit(data, principal, request.remote_addr, execute)
    except psycopg.OperationalError:
        connection.invalidate()  # a broken connection (the server restarted): not reused
        raise
    finally:
        connection.close()  # back to the pool


_ENGINE = "fieldsvc.lean_engine"
_ENGINE_LOCK = threading.Lock()


def dispose(app: Flask) -> None:
    """Close the handler's pooled connections (before its database is dropped, say)."""
    engine = app.extensions.pop(_ENGINE, None)
    if engine is not None:
        engine.dispose()


def _engine(app: Flask) -> Engine:
    """The lean handler's own pool: the application's database and connection settings, in
    autocommit, without the ping before each checkout (one round trip of three). A connection
    that broke meanwhile fails the first statement; the request then goes to the application,
    whose pool pings."""
    engine = app.extensions.get(_ENGINE)
    if engine is None:
        with _ENGINE_LOCK:
            engine = app.extensions.get(_ENGINE)
            if engine is None:
                engine = app.extensions[_ENGINE] = create_engine(
                    db.engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    return engine


_TOKEN_SQL: dict[str, str] = {}


def _token_sql(dialect: Any) -> str:
    sql = _TOKEN_SQL.get(dialect.name)
    if sql is None:
        sql = _TOKEN_SQL[dialect.name] = device_by_token_sql(dialect)
    return sql
