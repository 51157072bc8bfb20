"""The deployment files: docker-compose.yml, Dockerfile and gunicorn.conf.py.

Docker cannot run here, so these tests read the files and check what `docker compose up`
relies on: PostgreSQL with a data volume and a health check, the web service waiting for it,
migrations before gunicorn, and secrets taken from the environment.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fieldsvc.config import load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def command_text(service: dict[str, Any]) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_two_services_and_a_data_volume(compose):
    assert set(compose["services"]) == {"db", "web"}
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    volume, _, target = db["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"]  # a named volume: data survives `docker compose down`


def test_postgresql_health_check(compose):
    db = compose["services"]["db"]
    test = " ".join(db["healthcheck"]["test"])
    assert "pg_isready" in test
    assert f"-U {db['environment']['POSTGRES_USER']}" in test
    assert db["healthcheck"]["retries"] >= 3
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_web_waits_for_a_healthy_database(compose):
    web = compose["services"]["web"]
    assert web["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert web["build"] == "."


def test_web_migrates_before_serving_with_gunicorn(compose):
    command = command_text(compose["services"]["web"])
    upgrade = command.index("flask --app wsgi db upgrade")
    setup = command.index("flask --app wsgi setup --no-demo")
    gunicorn = command.index("gunicorn -c gunicorn.conf.py wsgi:app")
    assert upgrade < setup < gunicorn
    assert "&&" in command[upgrade:gunicorn]  # a failed migration stops the start


def test_web_health_check_uses_healthz(compose):
    web = compose["services"]["web"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    assert web["healthcheck"]["start_period"]  # areas load on the first start


def test_web_settings_come_from_the_environment(compose):
    env = compose["services"]["web"]["environment"]
    assert env["FIELDSVC_ENV"] == "production"
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # compose refuses to start without it
    assert re.fullmatch(r"postgresql://fieldsvc:\$\{POSTGRES_PASSWORD:\?[^}]*\}@db:5432/fieldsvc",
                        env["DATABASE_URL"])
    assert env["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert compose["services"]["web"]["ports"][0].endswith(":8000")


def test_compose_database_url_selects_psycopg(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://fieldsvc:pw@db:5432/fieldsvc")
    monkeypatch.setenv("FIELDSVC_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    config = load_config(str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://fieldsvc:pw@db:5432/fieldsvc"
    assert config["SESSION_COOKIE_SECURE"] is True


def test_setup_has_the_no_demo_switch(tmp_path):
    from fieldsvc.cli import setup_command

    assert "--no-demo" in {opt for param in setup_command.params for opt in param.secondary_opts}


def test_dockerfile(compose):
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN pip install -r requirements\.txt$", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)  # not root
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]' in text
    for needed in ("requirements.txt", "wsgi.py", "gunicorn.conf.py", "migrations/env.py"):
        assert (ROOT / needed).exists(), needed
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignored and "instance" in ignored  # no local database or secret in images
    assert "gunicorn" in (ROOT / "requirements.txt").read_text(encoding="utf-8")


def gunicorn_settings(monkeypatch, **env: str) -> dict[str, Any]:
    for name in ("DATABASE_URL", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_BIND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_serves_sqlite_with_one_worker_and_threads(monkeypatch):
    settings = gunicorn_settings(monkeypatch)
    assert (settings["workers"], settings["threads"]) == (1, 8)
    assert settings["bind"] == "127.0.0.1:8000"
    sqlite = gunicorn_settings(monkeypatch, DATABASE_URL="sqlite:////srv/fieldsvc.sqlite3",
                               WEB_CONCURRENCY="8")
    assert sqlite["workers"] == 1  # never several writers on SQLite


def test_gunicorn_serves_postgresql_with_several_workers(monkeypatch):
    settings = gunicorn_settings(monkeypatch, DATABASE_URL="postgresql://u:p@db/fieldsvc")
    assert settings["workers"] >= 2
    tuned = gunicorn_settings(monkeypatch, DATABASE_URL="postgres://u:p@db/fieldsvc",
                              WEB_CONCURRENCY="5", GUNICORN_BIND="0.0.0.0:8000")
    assert (tuned["workers"], tuned["bind"]) == (5, "0.0.0.0:8000")
