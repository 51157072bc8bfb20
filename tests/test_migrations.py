"""Schema changes only through Alembic: the migrations reach head and match the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fieldsvc.extensions import db
from fieldsvc.web.services import migration_state


def test_upgrade_reaches_head(app):
    current, head = migration_state()
    assert current == head is not None


def test_models_and_migrations_agree(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []
