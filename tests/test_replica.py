"""READ_DATABASE_URL against a real streaming replica.

The fixture makes a PostgreSQL cluster of its own (initdb on a free port: the shared server on
5432 allows no replication connections in its pg_hba.conf, and copying it whole would copy every
other test and benchmark database), a streaming replica of it with ``pg_basebackup -R``, and an
app whose DATABASE_URL is the first and READ_DATABASE_URL the second. Like every PostgreSQL test
it skips without FIELDSVC_TEST_POSTGRES_URL, and fails under CI=true.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import io
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from fieldsvc import create_app, replica
from fieldsvc.config import ConfigError
from fieldsvc.db import plain_read
from fieldsvc.extensions import db as _db
from tests.conftest import PG_ADMIN_URL, RequestClient, close_connections, require_or_skip
from tests.factories import auth, make_areas, make_caravan, make_tally, make_user

DAY = dt.date(2026, 11, 28)
SUMMARY = "/api/v1/summary?by=province&specialty=OPH"


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"),
                   key=lambda path: int(path.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Clusters:
    bindir: str
    folder: str
    primary_port: int
    replica_port: int

    def run(self, program: str, *args: str) -> None:
        # PostgreSQL refuses to run as root: as root, run its programs as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, os.path.join(self.bindir, program), *args],
                              capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{program} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self, name: str, port: int) -> None:
        self.run("pg_ctl", "-D", os.path.join(self.folder, name), "-l",
                 os.path.join(self.folder, f"{name}.log"), "-w", "-t", "60", "-o",
                 f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
                 f"{self.folder} -c fsync=off -c full_page_writes=off", "start")

    def stop(self, name: str) -> None:
        if os.path.exists(os.path.join(self.folder, name, "postmaster.pid")):
            self.run("pg_ctl", "-D", os.path.join(self.folder, name), "-m", "fast", "-w", "stop")

    def url(self, port: int, database: str = "fieldsvc") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def sql(self, port: int, statement: str) -> object:
        import psycopg

        with psycopg.connect(self.url(port), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(statement).fetchone()
        return row[0] if row else None


@pytest.fixture(scope="module")
def clusters() -> Iterator[Clusters]:
    """A small primary on a free port and its streaming replica, stopped and removed after."""
    if not PG_ADMIN_URL:
        require_or_skip("PostgreSQL tests need FIELDSVC_TEST_POSTGRES_URL")
    bindir = _bindir()
    if bindir is None:
        require_or_skip("the replica test needs PostgreSQL's server programs (pg_basebackup)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            require_or_skip("as root, the replica test runs PostgreSQL as the postgres user: none")
    folder = tempfile.mkdtemp(prefix="fieldsvc-replica-")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    ports = {_free_port()}
    while len(ports) < 2:
        ports.add(_free_port())
    cluster = Clusters(bindir, folder, *sorted(ports))
    try:
        cluster.run("initdb", "-D", os.path.join(folder, "primary"), "-A", "trust", "-U",
                    "postgres", "-N")  # trust and a replication line for local connections
        cluster.start("primary", cluster.primary_port)
        import psycopg

        with psycopg.connect(cluster.url(cluster.primary_port, "postgres"),
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE fieldsvc")
            conn.execute("CREATE ROLE reader LOGIN")  # no pg_read_all_stats
        cluster.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(cluster.primary_port), "-U",
                    "postgres", "-D", os.path.join(folder, "replica"), "-R", "-X", "stream",
                    "-c", "fast")
        cluster.start("replica", cluster.replica_port)
        yield cluster
    finally:
        for name in ("replica", "primary"):
            try:
                cluster.stop(name)
            except RuntimeError:
                pass
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def replica_app(clusters: Clusters, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test-secret", "PUBLIC_BASE_URL": "http://localhost",
        "SQLALCHEMY_DATABASE_URI": clusters.url(clusters.primary_port).replace(
            "postgresql://", "postgresql+psycopg://"),
        "READ_DATABASE_URL": clusters.url(clusters.replica_port),
        "READ_DATABASE_RETRY_SECONDS": 0,
    })
    app.instance_path = str(tmp_path_factory.mktemp("replica"))
    app.test_client_class = RequestClient
    with app.app_context():
        from flask_migrate import upgrade

        from fieldsvc.catalog.services import ensure_catalog

        upgrade()
        ensure_catalog()
        _db.session.commit()
    yield app
    close_connections(app)


def _caught_up(clusters: Clusters) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    target = clusters.sql(clusters.primary_port, "SELECT pg_current_wal_lsn()::text")
    _wait(clusters, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")


def _received(clusters: Clusters) -> None:
    target = clusters.sql(clusters.primary_port, "SELECT pg_current_wal_lsn()::text")
    _wait(clusters, f"SELECT pg_last_wal_receive_lsn() >= '{target}'::pg_lsn")


def _wait(clusters: Clusters, condition: str) -> None:
    deadline = time.monotonic() + 30
    while not clusters.sql(clusters.replica_port, condition):
        assert time.monotonic() < deadline, f"the replica never reached: {condition}"
        time.sleep(0.05)


def _total(response) -> int:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["total"]


def test_reads_come_from_the_replica_as_stale_as_it_says_and_fall_back(replica_app, clusters,
                                                                      monkeypatch):
    assert clusters.sql(clusters.replica_port, "SELECT pg_is_in_recovery()") is True
    client = replica_app.test_client()
    with replica_app.app_context():
        from fieldsvc.accounts.models import AuditEvent
        from fieldsvc.insights.queries import SummaryQuery, summary_rows

        make_areas()
        caravan = make_caravan("08.587.01.13", first_day=DAY - dt.timedelta(days=1))
        make_tally(caravan, day=DAY, lines=[("consultations", "F", "50-64", None, 12)])
        admin = make_user("admin")
        _db.session.commit()
        headers = auth(admin)
        _caught_up(clusters)

        # Caught up: the replica answers, as of now.
        response = client.get(SUMMARY, headers=headers)
        assert _total(response) == 12
        assert response.headers["X-Data-Source"] == "replica"
        assert float(response.headers["X-Replica-Lag-Seconds"]) == 0
        # A role that may not see the WAL receiver's status still sees a caught-up replica.
        reader = create_engine(clusters.url(clusters.replica_port).replace(
            "postgresql://postgres@", "postgresql+psycopg://reader@"))
        try:
            with reader.connect() as conn:
                assert replica.staleness(conn).lag_seconds == 0
        finally:
            reader.dispose()

        # Replay paused: the replica keeps receiving WAL but shows what it had.
        clusters.sql(clusters.replica_port, "SELECT pg_wal_replay_pause()")
        _wait(clusters, "SELECT pg_get_wal_replay_pause_state() = 'paused'")
        before = clusters.sql(clusters.primary_port, "SELECT now()")
        time.sleep(0.2)
        make_tally(caravan, day=DAY, lines=[("consultations", "M", "50-64", None, 30)])
        _db.session.commit()
        fresh = auth(admin)  # a token the replica has not seen: logins read the primary
        _received(clusters)
        # Outside a routed view the same query reads the primary, which has both tallies.
        assert summary_rows(SummaryQuery(by=["province"], specialties=["OPH"]))[0]["count"] == 42
        audits = _db.session.scalar(select(func.count()).select_from(AuditEvent))

        response = client.get(SUMMARY, headers=fresh)
        assert _total(response) == 12
        assert response.headers["X-Data-Source"] == "replica"
        as_of = dt.datetime.fromisoformat(response.headers["X-Data-As-Of"])
        assert as_of <= before
        assert float(response.headers["X-Replica-Lag-Seconds"]) >= 0.2

        export = client.get(SUMMARY.replace("summary?", "exports/summary.csv?"), headers=fresh)
        assert export.status_code == 200, export.get_data(as_text=True)
        assert export.headers["X-Data-Source"] == "replica"
        rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
        assert [row["count"] for row in rows] == ["12"]
        # The export's audit record is written to the primary (the replica is read-only).
        _db.session.rollback()
        assert _db.session.scalar(select(func.count()).select_from(AuditEvent)) == audits + 1

        needs = client.get("/api/v1/needs?specialty=OPH&region=08", headers=fresh)
        assert needs.status_code == 200, needs.json
        assert needs.headers["X-Data-Source"] == "replica"

        # A plan's throttle is counted on the primary; the plan itself reads the replica.
        plan = client.post("/api/v1/plans", headers=fresh, json={
            "base": "08.587.01.13", "radius_km": 100, "days": 1, "team": {"OPH": 1}})
        assert plan.status_code == 200, plan.json
        assert plan.headers["X-Data-Source"] == "replica"
        page = client.get("/insights/public")
        assert page.status_code == 200 and page.headers["X-Data-Source"] == "replica"

        health = client.get("/healthz").json["replica"]
        assert health["status"] == "ok" and health["in_recovery"] is True
        assert health["lag_seconds"] >= 0.2 and health["behind_bytes"] > 0

        # Further behind than allowed: the primary answers, and says why.
        replica_app.config["READ_DATABASE_MAX_LAG_SECONDS"] = 0.1
        try:
            response = client.get(SUMMARY, headers=fresh)
            assert _total(response) == 42
            assert response.headers["X-Data-Source"] == "primary"
            assert response.headers["X-Replica-Fallback"] == "behind"
            assert client.get("/healthz").json["replica"]["status"] == "behind"
        finally:
            replica_app.config["READ_DATABASE_MAX_LAG_SECONDS"] = 60

        # Replayed: the replica shows the new tally.
        clusters.sql(clusters.replica_port, "SELECT pg_wal_replay_resume()")
        _caught_up(clusters)
        response = client.get(SUMMARY, headers=fresh)
        assert _total(response) == 42
        assert response.headers["X-Data-Source"] == "replica"
        assert float(response.headers["X-Replica-Lag-Seconds"]) == 0

        # The replica stops part-way through a request (after it said how stale it is): the view
        # runs again on the primary.
        answered = replica.staleness

        def answer_then_stop(conn):
            state = answered(conn)
            clusters.stop("replica")
            return state

        monkeypatch.setattr(replica, "staleness", answer_then_stop)
        response = client.get(SUMMARY, headers=fresh)
        assert _total(response) == 42
        assert response.headers["X-Data-Source"] == "primary"
        assert response.headers["X-Replica-Fallback"] == "failed"

        # Replica down: the primary answers, never a 500, and /healthz says so without a 503.
        response = client.get(SUMMARY, headers=fresh)
        assert _total(response) == 42
        assert response.headers["X-Data-Source"] == "primary"
        assert response.headers["X-Replica-Fallback"] == "unreachable"
        export = client.get(SUMMARY.replace("summary?", "exports/summary.csv?"), headers=fresh)
        assert export.status_code == 200 and export.headers["X-Data-Source"] == "primary"
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json["replica"] == {"status": "unreachable"}


def test_writes_and_locking_reads_never_go_to_the_replica():
    from sqlalchemy import column, insert, table, update

    lines = table("tally_line", column("count"))
    assert plain_read(select(lines)) and plain_read(text("  SELECT 1"))
    for statement in (insert(lines), update(lines), select(lines).with_for_update(),
                      text("UPDATE submission SET rolled_version_id = 0 RETURNING id"),
                      text("SELECT pg_advisory_xact_lock(1) FOR UPDATE"), None):
        assert not plain_read(statement)


def test_read_database_url_needs_postgresql_on_both_sides(tmp_path):
    with pytest.raises(ConfigError):
        create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a.db",
                    "READ_DATABASE_URL": "postgresql://postgres@127.0.0.1:5433/fieldsvc"})
    with pytest.raises(ConfigError):
        create_app({"SECRET_KEY": "x", "READ_DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
                    "SQLALCHEMY_DATABASE_URI": "postgresql://postgres@127.0.0.1/fieldsvc"})


def test_without_a_replica_answers_say_nothing_of_one(client, db):
    admin = make_user("admin")
    db.session.commit()
    response = client.get(SUMMARY, headers=auth(admin))
    assert response.status_code == 200
    assert "X-Data-Source" not in response.headers
    assert "replica" not in client.get("/healthz").json
