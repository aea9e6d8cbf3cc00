"""Trust store sync: where a root that a sync or seed added came from, and why a root was retired.

``origin`` names the pool a ``source = rcp`` root was pulled from (its base URL) or the setting a
``source = seed`` root came from, so a sync retires only the roots of its own pool.
``removed_reason`` is set when a sync or seed retires a root; a root removed by hand leaves it
empty, which is how a later sync knows not to trust it again on its own.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trusted_root") as batch:
        batch.add_column(sa.Column("origin", sa.Text(), nullable=True))
        batch.add_column(sa.Column("removed_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trusted_root") as batch:
        batch.drop_column("removed_reason")
        batch.drop_column("origin")
