"""rollup by caravan and by province × year: tally_rollup and tally_rollup_month gain
caravan_id (caravan and organization filters, need scores' caravan-days), indexed, and the day
rollup an index by specialty × day; tally_rollup_year sums the lines by province × year ×
specialty × measure × sex × age band

The rows folded so far have no caravan: the rollups are emptied and every submission becomes
unrolled again (0), so summaries stay exact, reading the raw lines until the next fold (the served
processes' background fold, or `flask rollup rebuild` at once after upgrading a large database).

Revision ID: a3c8e5d21f47
Revises: f0b8099378ec
Create Date: 2026-11-29 13:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3c8e5d21f47'
down_revision = 'f0b8099378ec'
branch_labels = None
depends_on = None


def _unroll_everything():
    op.execute("DELETE FROM tally_rollup")
    op.execute("DELETE FROM tally_rollup_month")
    op.execute("UPDATE submission SET rolled_version_id = 0 WHERE rolled_version_id <> 0")


def upgrade():
    _unroll_everything()
    op.create_table('tally_rollup_year',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('province_code', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('specialty_code', sa.String(length=8), nullable=False),
    sa.Column('measure_code', sa.String(length=32), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('age_band', sa.String(length=8), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tally_rollup_year'))
    )
    with op.batch_alter_table('tally_rollup_year', schema=None) as batch_op:
        batch_op.create_index('ix_tally_rollup_year_slice',
                              ['province_code', 'day', 'specialty_code'], unique=False)
    # A NOT NULL column is added with a default (SQLite requires one), dropped at once: the
    # table is empty and the fold always writes the caravan.
    for table in ('tally_rollup', 'tally_rollup_month'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('caravan_id', sa.Integer(), nullable=False,
                                          server_default=sa.text('0')))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('caravan_id', server_default=None)
            batch_op.create_index(f'ix_{table}_caravan', ['caravan_id'], unique=False)
    with op.batch_alter_table('tally_rollup', schema=None) as batch_op:
        batch_op.create_index('ix_tally_rollup_specialty_day', ['specialty_code', 'day'],
                              unique=False)


def downgrade():
    _unroll_everything()
    with op.batch_alter_table('tally_rollup_year', schema=None) as batch_op:
        batch_op.drop_index('ix_tally_rollup_year_slice')
    op.drop_table('tally_rollup_year')
    with op.batch_alter_table('tally_rollup', schema=None) as batch_op:
        batch_op.drop_index('ix_tally_rollup_specialty_day')
    for table in ('tally_rollup', 'tally_rollup_month'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_caravan')
            batch_op.drop_column('caravan_id')
