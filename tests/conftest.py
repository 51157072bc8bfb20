"""Fixtures: `app` runs each database test on SQLite and on PostgreSQL, from a clean database.

PostgreSQL tests need FIELDSVC_TEST_POSTGRES_URL (a URL the tests may create databases with,
e.g. postgresql://postgres@127.0.0.1:5432/postgres); without it they skip, except under CI=true,
where a missing PostgreSQL or browser is a failure.
"""

from __future__ import annotations

import contextvars
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import text

from fieldsvc import create_app
from fieldsvc.extensions import db as _db
from fieldsvc.tallies import lean

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get("FIELDSVC_TEST_POSTGRES_URL", "")


def require_or_skip(reason: str) -> None:
    """Skip locally; fail under CI, where PostgreSQL and the browser are required."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def _psycopg_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def throwaway_postgres(prefix: str) -> Iterator[str]:
    """Create a PostgreSQL database of our own, yield its URL, drop it afterwards."""
    if not PG_ADMIN_URL:
        require_or_skip("PostgreSQL tests need FIELDSVC_TEST_POSTGRES_URL")
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        require_or_skip(f"PostgreSQL unreachable at {admin}: {error}")
    base, _, _ = admin.rpartition("/")
    try:
        yield _psycopg_url(f"{base}/{name}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test session."""
    yield from throwaway_postgres("fieldsvc_test")


class RequestClient(FlaskClient):
    """A test client whose every request runs in an application context of its own.

    Tests keep an application context for their setup and checks, but a request never reuses
    it, exactly as under gunicorn: nothing a request leaves in `g` or in its session reaches the
    next one. What the test set up is committed first, so the request sees it, and the request's
    session never waits on a transaction the test left open.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            _db.session.commit()
        kwargs.setdefault("buffered", True)  # read file answers whole: no file left open
        if self.preserve_context:  # `with client:` keeps the request's context for the test
            return super().open(*args, **kwargs)
        return contextvars.Context().run(super().open, *args, **kwargs)


def _make_app(url: str, instance: str) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": url,
            "PUBLIC_BASE_URL": "http://localhost",
            "GEOCODER_MIN_DELAY_SECONDS": 0,
        }
    )
    app.instance_path = instance
    app.test_client_class = RequestClient
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        _reset(app)
    return app


def _reset(app: Flask) -> None:
    """Empty every table, then put the catalogs back."""
    from fieldsvc.catalog.services import ensure_catalog

    app.extensions.pop("fieldsvc_catalog", None)  # the per-process cache of catalog codes
    with app.app_context():
        _db.session.remove()
        tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
        engine = _db.engine
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("PRAGMA foreign_keys=OFF")
                for table in tables:
                    cursor.execute(f"DELETE FROM {table}")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()
            finally:
                raw.close()
        ensure_catalog()
        _db.session.commit()
        _db.session.remove()


@pytest.fixture(scope="session")
def sqlite_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    folder = tmp_path_factory.mktemp("sqlite")
    return _make_app(f"sqlite:///{folder / 'test.sqlite3'}", str(folder))


@pytest.fixture(scope="session")
def postgresql_app(
    postgres_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    app = _make_app(postgres_database_url, str(tmp_path_factory.mktemp("pg")))
    yield app
    close_connections(app)  # before the database is dropped


def close_connections(app: Flask) -> None:
    """Close every pooled connection of the app: its engines' and the lean ingest handler's."""
    with app.app_context():
        for engine in _db.engines.values():
            engine.dispose()
        lean.dispose(app)


def _use(app: Flask) -> Iterator[Flask]:
    context = app.app_context()
    context.push()
    try:
        yield app
    finally:
        _db.session.remove()
        context.pop()
        _reset(app)


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app on each database in turn, emptied after the test.

    The test body runs in an app context for its setup and checks; requests get their own
    (see RequestClient).
    """
    yield from _use(request.getfixturevalue(f"{request.param}_app"))


@pytest.fixture
def pg_app(postgresql_app: Flask) -> Iterator[Flask]:
    """The app on PostgreSQL only: for browser, fuzzing, race and crash tests."""
    yield from _use(postgresql_app)


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def db(app: Flask):
    return _db


CHROMIUM = os.environ.get("FIELDSVC_BROWSER", "/usr/bin/chromium")
# Without these flags Chromium stalls on this network-less machine.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's) for the whole session, driven by Playwright."""
    if not os.path.exists(CHROMIUM):
        require_or_skip(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip("playwright is not installed")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as error:  # noqa: BLE001 - any launch failure means no browser here
        playwright.stop()
        require_or_skip(f"Chromium does not start: {error}")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def fresh_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve the protected release the background refresh would have built from what is stored
    when the request comes (tests seed data and read it back at once)."""
    from fieldsvc.insights import release

    served = release.current_release

    def current() -> release.LoadedRelease | None:
        release.build_release()
        _db.session.commit()
        return served()

    monkeypatch.setattr(release, "current_release", current)
