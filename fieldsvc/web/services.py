"""What the pages and the health check need to know."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from fieldsvc.extensions import db


def migration_state() -> tuple[str | None, str | None]:
    """Return the database's Alembic revision and the code's head revision."""
    config = current_app.extensions["migrate"].migrate.get_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    # Use the session's own connection: on SQLite a second connection would wait for our lock.
    current = MigrationContext.configure(db.session.connection()).get_current_revision()
    return current, head
