"""A CRL records the status feed's sequence number it was built from.

Whether a stored CRL is still current was judged by time: the CA's latest ``status_changed_at``
against the CRL's thisUpdate. A revocation stamped before a CRL was built but committed after it
(its transaction still open while the CRL was made) looked older than the CRL, so the CRL --
which could not list it -- was served as current. ``crl.status_seq`` is the CA's
``status_feed.seq`` read in the generating transaction before its entries: a stored CRL is current
exactly while the feed has not moved past it (migration 0008: a reader that sees number N has
seen every change up to N). CRLs made before this migration have none and are judged by time.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crl") as batch:
        batch.add_column(sa.Column("status_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crl") as batch:
        batch.drop_column("status_seq")
