"""CAs under a parent we do not run: the awaiting request, and the foreign chain of an installed CA.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificate_authority") as batch:
        batch.add_column(sa.Column("foreign_chain", sa.Text(), nullable=True))
    op.create_table(
        "ca_request",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("pki", sa.String(length=16), nullable=False),
        sa.Column("standard", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("key_backend", sa.String(length=16), nullable=False),
        sa.Column("issues", sa.String(length=256), nullable=False),
        sa.Column("rsa_pss", sa.Boolean(), nullable=False),
        sa.Column("path_length", sa.Integer(), nullable=True),
        sa.Column("csr", sa.LargeBinary(), nullable=False),
        sa.Column("successor_of", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("ca_request")
    with op.batch_alter_table("certificate_authority") as batch:
        batch.drop_column("foreign_chain")
