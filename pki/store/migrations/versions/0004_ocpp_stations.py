"""OCPP bridge state: registered stations and the calls they still have to accept.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=48), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("security_profile", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ocpp_version", sa.String(length=8), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identity"),
    )
    op.create_table(
        "ocpp_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_identity", sa.String(length=48), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("certificate_issuer", sa.String(length=64), nullable=True),
        sa.Column("certificate_serial", sa.String(length=40), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ocpp_delivery_station_status", "ocpp_delivery", ["station_identity", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ocpp_delivery_station_status", table_name="ocpp_delivery")
    op.drop_table("ocpp_delivery")
    op.drop_table("station")
