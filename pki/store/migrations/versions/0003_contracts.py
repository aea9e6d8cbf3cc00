"""The ISO 15118 contract registry: which vehicle (PCID) holds which contract (eMAID).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("emaid", sa.String(length=15), nullable=False),
        sa.Column("pcid", sa.String(length=18), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_note", sa.String(length=200), nullable=True),
        sa.Column("current_certificate_issuer", sa.String(length=64), nullable=True),
        sa.Column("current_certificate_serial", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("emaid"),
    )
    op.create_index("ix_contract_pcid_status", "contract", ["pcid", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_contract_pcid_status", table_name="contract")
    op.drop_table("contract")
