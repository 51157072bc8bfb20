"""Operator commands: `flask --app wsgi areas load`, `users create`, `demo load` …"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from fieldsvc.accounts.models import ROLES

areas_cli = AppGroup("areas", help="Morocco's regions, provinces and communes.")
facilities_cli = AppGroup("facilities", help="Ministry of Health facility lists.")
users_cli = AppGroup("users", help="Staff accounts.")
demo_cli = AppGroup("demo", help="A realistic, reproducible demo season.")
release_cli = AppGroup("release", help="The protected release served without full detail.")
rollup_cli = AppGroup("rollup", help="The summary rollup (summaries are exact without it).")
dhis2_cli = AppGroup("dhis2", help="DHIS2 and ADX exports.")


def register_cli(app: Flask) -> None:
    for group in (areas_cli, facilities_cli, users_cli, demo_cli, release_cli, rollup_cli,
                  dhis2_cli):
        app.cli.add_command(group)
    app.cli.add_command(setup_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def backup_command(file: str) -> None:
    """Write every table to FILE (gzipped JSON lines), restorable on SQLite or PostgreSQL."""
    import os

    from fieldsvc.backup import write_backup

    partial = f"{file}.partial"
    with open(partial, "wb") as out:
        header = write_backup(out, echo=click.echo)
    os.replace(partial, file)  # a backup cut short never looks complete
    click.echo(f"Backed up {sum(header['tables'].values())} rows of {len(header['tables'])} "
               f"tables (schema {header['revision']}) to {file}.")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Empty a database that already holds data first.")
def restore_command(file: str, replace: bool) -> None:
    """Load a backup FILE into this (migrated, empty) database, in one transaction."""
    from fieldsvc.backup import BackupError, restore_backup
    from fieldsvc.extensions import db

    try:
        with open(file, "rb") as source:
            header = restore_backup(source, replace=replace, echo=click.echo)
    except (BackupError, OSError, ValueError, KeyError, TypeError) as error:
        db.session.rollback()
        raise click.ClickException(f"Nothing was restored: {error}") from None
    db.session.commit()
    click.echo(f"Restored {sum(header['tables'].values())} rows of {len(header['tables'])} "
               f"tables from {file} (made on {header['dialect']} at {header['created_at']}).")


@dhis2_cli.command("mapping-template")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file (default: print it).")
def dhis2_mapping_template(output: str | None) -> None:
    """Write a DHIS2 mapping to fill in: every measure, specialty × sex × age band and commune."""
    import json

    from fieldsvc.exports.dhis2 import mapping_template

    text = json.dumps(mapping_template(), ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    Path(output).write_text(text, encoding="utf-8")
    click.echo(f"Wrote {output}: fill in your DHIS2 identifiers, then set DHIS2_MAPPING_FILE={output}.")


@areas_cli.command("load")
def areas_load() -> None:
    """Load or refresh regions, provinces, communes, census figures and points (idempotent)."""
    from fieldsvc.areas.services import load_areas
    from fieldsvc.extensions import db

    load_areas(echo=click.echo)
    db.session.commit()


@areas_cli.command("geocode")
@click.option("--limit", type=int, default=None, help="Geocode at most this many communes.")
def areas_geocode(limit: int | None) -> None:
    """Fill communes still without a point with Nominatim (rate-limited, resumable)."""
    from flask import current_app
    from geopy.extra.rate_limiter import RateLimiter

    from fieldsvc.areas.services import derive_parent_points, geocode_missing
    from fieldsvc.extensions import db

    config = current_app.config
    geocoder = config.get("GEOCODER")  # tests put a fake here; never the network in tests
    if geocoder is None:
        from geopy.geocoders import Nominatim

        nominatim = Nominatim(user_agent=config["GEOCODER_USER_AGENT"], timeout=10)

        def geocoder(query: str):  # noqa: ANN202
            return nominatim.geocode(query, country_codes="ma", exactly_one=True)

    geocode = RateLimiter(geocoder, min_delay_seconds=config["GEOCODER_MIN_DELAY_SECONDS"],
                          max_retries=2, swallow_exceptions=True,
                          error_wait_seconds=config.get("GEOCODER_ERROR_WAIT_SECONDS", 5.0))
    found = missed = 0
    for area, ok in geocode_missing(geocode, limit=limit):
        db.session.commit()  # one area at a time: an interrupted run resumes where it stopped
        found += ok
        missed += not ok
        where = f"{area.lat}, {area.lon}" if ok else "not found"
        click.echo(f"  {area.code} {area.name_fr}: {where}")
    derive_parent_points()
    db.session.commit()
    click.echo(f"Geocoded {found} communes; {missed} still without a point.")


@facilities_cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def facilities_import(files: tuple[str, ...]) -> None:
    """Import Ministry of Health facility lists (CSV as published), then recompute distances."""
    from fieldsvc.areas.facilities import import_facilities, recompute_distances
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db

    for path in files:
        report = import_facilities(path)
        click.echo(
            f"{path}: {report.rows} rows, {report.matched} matched a commune "
            f"({report.added} new, {report.kept} already there), {len(report.unmatched)} unmatched."
        )
        for line, row, reason in report.unmatched:
            click.echo(f"  line {line}: {row} — {reason}")
        db.session.commit()
    ensure_catalog()  # distances are per catalog specialty
    distances = recompute_distances()
    db.session.commit()
    click.echo(f"Nearest able facility computed for {distances} commune × specialty pairs.")


@users_cli.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="admin, coordinator (needs --region) or planner (needs --organization).")
@click.option("--region", "regions", multiple=True, metavar="CODE",
              help="A region code a coordinator works in (e.g. 08 for Drâa-Tafilalet); repeat it.")
@click.option("--organization", metavar="NAME",
              help="The organization a planner belongs to (created if it does not exist).")
@click.option("--display-name", metavar="TEXT", help="The name shown on pages (default: NAME).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Prompted for, twice, when not given.")
def users_create(name: str, role: str, regions: tuple[str, ...], organization: str | None,
                 display_name: str | None, password: str) -> None:
    """Create a staff account: admin, regional coordinator or association planner."""
    from sqlalchemy import func, select

    from fieldsvc.accounts.models import AuditEvent, Organization
    from fieldsvc.accounts.services import create_user, get_or_create_organization
    from fieldsvc.areas.models import Area
    from fieldsvc.errors import DomainError
    from fieldsvc.extensions import db

    if regions and role != "coordinator":
        raise click.UsageError("Only coordinators have regions; drop --region.")
    if role == "planner" and not organization:
        raise click.UsageError("A planner belongs to an organization: add --organization NAME.")
    if regions and not db.session.scalar(select(func.count()).select_from(Area)):
        raise click.ClickException(
            "No areas are loaded yet; run `flask --app wsgi areas load` first.")
    org = None
    if organization:
        organization = organization.strip()
        existing = db.session.scalar(select(Organization).where(Organization.name == organization))
        org = existing or get_or_create_organization(organization)
        if existing is None:
            click.echo(f"Created the organization {organization!r} (association).")
    try:
        user = create_user(name.strip(), password, role, region_codes=list(regions),
                           organization=org, display_name=display_name)
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.detail) from None
    db.session.add(AuditEvent(
        actor_kind="system", actor_id="cli", action="user_created", object_type="user",
        object_id=str(user.id), detail={"role": role, "regions": sorted(regions)},
    ))
    db.session.commit()
    scope = f" in regions {', '.join(user.region_codes)}" if user.region_codes else ""
    member = f" of {org.name}" if org else ""
    click.echo(f"Created {role} {user.username!r}{scope}{member}.")


def _change_user(name: str, change: Any) -> Any:
    """Run `change(user)` on the named user as the command-line operator; commit or explain."""
    from sqlalchemy import select

    from fieldsvc.accounts.models import User
    from fieldsvc.errors import DomainError
    from fieldsvc.extensions import db

    user = db.session.scalar(select(User).where(User.username == name.strip()))
    if user is None:
        raise click.ClickException(f"No user is named {name!r}; see `users list`.")
    try:
        result = change(user)
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.detail) from None
    db.session.commit()
    return result


@users_cli.command("update")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), help="The new role.")
@click.option("--region", "regions", multiple=True, metavar="CODE",
              help="Replaces a coordinator's regions; repeat it.")
@click.option("--organization", metavar="NAME", help="The organization (created if missing).")
@click.option("--display-name", metavar="TEXT", help="The name shown on pages.")
def users_update(name: str, role: str | None, regions: tuple[str, ...],
                 organization: str | None, display_name: str | None) -> None:
    """Change a user's role, regions or organization; ends their sessions and tokens."""
    from fieldsvc.accounts.services import UserChanges, get_or_create_organization, update_user

    def change(user: Any) -> Any:
        sent: dict[str, Any] = {}
        if role:
            sent["role"] = role
        if regions:
            sent["regions"] = list(regions)
        if organization:
            sent["organization"] = get_or_create_organization(organization.strip()).id
        if display_name:
            sent["display_name"] = display_name
        return update_user(user, UserChanges(sent=frozenset(sent), **sent))

    user = _change_user(name, change)
    click.echo(f"Updated {user.username!r}: {user.role}"
               f"{' in regions ' + ', '.join(user.region_codes) if user.region_codes else ''}; "
               "their sessions and tokens are ended.")


@users_cli.command("deactivate")
@click.argument("name")
def users_deactivate(name: str) -> None:
    """Deactivate a staff account at once: its sessions and tokens end, logins are refused."""
    _set_active(name, False)
    click.echo(f"Deactivated {name!r}; their sessions and tokens are ended.")


@users_cli.command("activate")
@click.argument("name")
def users_activate(name: str) -> None:
    """Let a deactivated staff account log in again."""
    _set_active(name, True)
    click.echo(f"Activated {name!r}.")


def _set_active(name: str, active: bool) -> None:
    from fieldsvc.accounts.services import UserChanges, update_user

    _change_user(name, lambda user: update_user(
        user, UserChanges(sent=frozenset({"active"}), active=active)))


@users_cli.command("reset-password")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Prompted for, twice, when not given.")
def users_reset_password(name: str, password: str) -> None:
    """Set a new password for a staff account; ends their sessions and tokens."""
    from fieldsvc.accounts.services import reset_password

    _change_user(name, lambda user: reset_password(user, password))
    click.echo(f"New password set for {name!r}; their sessions and tokens are ended.")


@users_cli.command("list")
def users_list() -> None:
    """List staff accounts with their roles, regions and organizations."""
    from fieldsvc.accounts.services import list_users

    click.echo(f"{'USERNAME':<20} {'ROLE':<12} {'REGIONS':<10} ORGANIZATION")
    for user in list_users():
        regions = ",".join(user.region_codes) or "-"
        organization = user.organization.name if user.organization else "-"
        state = "" if user.active else "  (inactive)"
        click.echo(f"{user.username:<20} {user.role:<12} {regions:<10} {organization}{state}")


@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo organizations, accounts, caravans and tallies (idempotent)."""
    from fieldsvc.demo import load_demo
    from fieldsvc.extensions import db

    summary = load_demo(echo=click.echo)
    db.session.commit()
    click.echo(summary)
    _build_release()


@release_cli.command("build")
@click.option("--force", is_flag=True, help="Build even if the counted lines did not change.")
def release_build(force: bool) -> None:
    """Protect and store a new release of the linked tables if the data changed."""
    _build_release(force=force)


@rollup_cli.command("fold")
def rollup_fold() -> None:
    """Fold new, amended and reviewed tallies into the summary rollup."""
    from fieldsvc.insights.rollup import fold

    click.echo(f"{fold()} submissions folded into the summary rollup.")


@rollup_cli.command("rebuild")
def rollup_rebuild() -> None:
    """Recompute the summary rollup from every counted line (after a bulk load)."""
    from fieldsvc.insights.rollup import rebuild

    rebuild()
    click.echo("Summary rollup rebuilt.")


def _build_release(*, force: bool = False) -> None:
    from fieldsvc.extensions import db
    from fieldsvc.insights.release import build_release

    release = build_release(force=force)
    db.session.commit()
    if release is None:
        click.echo("The protected release is up to date.")
    else:
        click.echo(f"Protected release {release.id}: {release.cell_count} cells, "
                   f"{release.hidden_count} hidden, built in {release.build_seconds:.1f} s.")


@click.command("setup")
@click.option("--demo/--no-demo", default=None,
              help="Load the demo season into an empty database "
                   "(default: yes, except with FIELDSVC_ENV=production).")
def setup_command(demo: bool | None) -> None:
    """Load areas and the demo season into an empty database, then say how to log in."""
    from flask import current_app
    from sqlalchemy import func, select

    from fieldsvc.accounts.models import User
    from fieldsvc.areas.models import Area, Facility
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.demo import DEMO_LOGINS, load_demo, renew_old_demo_passwords
    from fieldsvc.extensions import db

    if demo is None:
        # Demo accounts have published passwords: never create them in production by default.
        demo = current_app.config["FIELDSVC_ENV"] != "production"
    ensure_catalog()
    db.session.commit()
    if not db.session.scalar(select(func.count()).select_from(Area)):
        from fieldsvc.areas.services import load_areas

        click.echo("Loading Morocco's regions, provinces and communes (HCP, RGPH 2024)…")
        load_areas(echo=click.echo)
        db.session.commit()
    if not db.session.scalar(select(func.count()).select_from(Facility)):
        from fieldsvc.areas.facilities import import_shipped_lists, recompute_distances

        click.echo("Importing the Ministry of Health's facility lists (2024)…")
        for report in import_shipped_lists():
            click.echo(f"  {Path(report.path).name}: {report.matched} of {report.rows} facilities "
                       "placed in their commune")
        click.echo(f"Nearest able facility computed for {recompute_distances()} commune × "
                   "specialty pairs.")
        db.session.commit()
    if not db.session.scalar(select(func.count()).select_from(User)):
        if not demo:
            click.echo("No accounts yet. Create one with: "
                       "flask --app wsgi users create NAME --role admin")
            return
        click.echo("Loading the demo season…")
        click.echo(load_demo(echo=click.echo))
        db.session.commit()
    else:
        click.echo("Existing data kept.")
    _build_release()
    demo_users = set(db.session.scalars(
        select(User.username).where(User.username.in_([login[0] for login in DEMO_LOGINS]))))
    if demo_users:
        renew_old_demo_passwords()
        db.session.commit()
        base_url = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
        click.echo(f"Log in at {base_url}/login with:")
        for username, password, role in DEMO_LOGINS:
            if username in demo_users:
                click.echo(f"  {role:<12} user {username!r}  password {password!r}")
    _echo_join_links()


def _echo_join_links() -> None:
    """Print where phones join the caravans still running, and what a phone needs for offline."""
    from flask import current_app
    from sqlalchemy import select

    from fieldsvc.caravans.models import Caravan
    from fieldsvc.caravans.services import join_url
    from fieldsvc.extensions import db

    caravans = db.session.scalars(select(Caravan).where(Caravan.status != "closed")
                                  .order_by(Caravan.first_day).limit(3)).all()
    base_url = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    click.echo(f"Phones join at {base_url}/join with a caravan's code, or with its join link:")
    for caravan in caravans:
        click.echo(f"  {join_url(caravan)}  {caravan.title}")
    host = base_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if base_url.startswith("http://") and host not in ("127.0.0.1", "localhost", "[::1]"):
        click.echo(f"Note: over plain http ({base_url}) phones work online but cannot keep the "
                   "form for offline use; give them the HTTPS address (PUBLIC_BASE_URL).")
