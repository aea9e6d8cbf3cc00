"""OPCP Contract Certificate Pool: signed contract data stored by eMAID (several per PCID).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opcp_signed_contract_data",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("emaid", sa.String(length=15), nullable=False),
        sa.Column("pcid", sa.String(length=18), nullable=False),
        sa.Column("exi", sa.LargeBinary(), nullable=False),
        sa.Column("root_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("emaid"),
    )
    op.create_index("ix_opcp_signed_contract_data_pcid", "opcp_signed_contract_data", ["pcid"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_opcp_signed_contract_data_pcid", table_name="opcp_signed_contract_data")
    op.drop_table("opcp_signed_contract_data")
