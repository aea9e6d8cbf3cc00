"""The trust store: root certificates we did not make, trusted for one OCPP root use each.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("removed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "trusted_root",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("use", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trusted_root_use", "trusted_root", ["use"], unique=False)
    op.create_index(
        "uq_trusted_root_active_use",
        "trusted_root",
        ["sha256", "use"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_index(
        "uq_trusted_root_active_label",
        "trusted_root",
        ["label"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_trusted_root_active_label", table_name="trusted_root")
    op.drop_index("uq_trusted_root_active_use", table_name="trusted_root")
    op.drop_index("ix_trusted_root_use", table_name="trusted_root")
    op.drop_table("trusted_root")
