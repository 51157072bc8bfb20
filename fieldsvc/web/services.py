"""What the pages and the health check need to know."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from babel import Locale
from flask import current_app

from fieldsvc.extensions import db


def migration_state() -> tuple[str | None, str | None]:
    """Return the database's Alembic revision and the code's head revision."""
    config = current_app.extensions["migrate"].migrate.get_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    # Use the session's own connection: on SQLite a second connection would wait for our lock.
    current = MigrationContext.configure(db.session.connection()).get_current_revision()
    return current, head


@dataclass(frozen=True)
class Language:
    """A language the pages and the phone form offer, named in itself."""

    code: str
    name: str
    dir: str


def languages() -> list[Language]:
    """The configured languages (config LANGUAGES), in their order."""
    return _languages(tuple(current_app.config["LANGUAGES"]))


@lru_cache(maxsize=4)
def _languages(codes: tuple[str, ...]) -> list[Language]:
    found = []
    for code in codes:
        locale = Locale.parse(code)
        name = locale.get_display_name(code) or code
        found.append(Language(code, name[:1].upper() + name[1:], locale.text_direction))
    return found

