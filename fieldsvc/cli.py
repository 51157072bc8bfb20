"""Operator commands: `flask --app wsgi areas load`, `users create`, `demo load` …"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

areas_cli = AppGroup("areas", help="Morocco's regions, provinces and communes.")
facilities_cli = AppGroup("facilities", help="Ministry of Health facility lists.")
users_cli = AppGroup("users", help="Staff accounts.")
demo_cli = AppGroup("demo", help="A realistic, reproducible demo season.")


def register_cli(app: Flask) -> None:
    for group in (areas_cli, facilities_cli, users_cli, demo_cli):
        app.cli.add_command(group)
    app.cli.add_command(setup_command)


@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo organizations, accounts, caravans and tallies (idempotent)."""
    from fieldsvc.extensions import db
    from fieldsvc.web.demo import load_demo

    summary = load_demo(echo=click.echo)
    db.session.commit()
    click.echo(summary)


@click.command("setup")
def setup_command() -> None:
    """Load areas and the demo season into an empty database, then say how to log in."""
    from sqlalchemy import func, select

    from fieldsvc.accounts.models import User
    from fieldsvc.areas.models import Area
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db
    from fieldsvc.web.demo import DEMO_LOGINS, load_demo

    ensure_catalog()
    db.session.commit()
    if not db.session.scalar(select(func.count()).select_from(Area)):
        from fieldsvc.areas.services import load_areas

        click.echo("Loading Morocco's regions, provinces and communes (HCP, RGPH 2024)…")
        load_areas(echo=click.echo)
        db.session.commit()
    if not db.session.scalar(select(func.count()).select_from(User)):
        click.echo("Loading the demo season…")
        click.echo(load_demo(echo=click.echo))
        db.session.commit()
    else:
        click.echo("Existing data kept.")
    click.echo("Log in at http://127.0.0.1:8000/login with:")
    for username, password, role in DEMO_LOGINS:
        click.echo(f"  {role:<12} user {username!r}  password {password!r}")
