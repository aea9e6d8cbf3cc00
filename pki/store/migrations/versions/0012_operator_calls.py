"""Operator-initiated station calls: who asked, for which OCPP version, until when; what stations
report about them (firmware and log status); per-station root reconciliation and A05 upgrades;
the bridges' shared limits (refused logins per address, renewal-trigger cool-downs).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ocpp_delivery") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("ocpp_version", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("requested_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_ocpp_delivery_status_origin", "ocpp_delivery", ["status", "origin"], unique=False)
    with op.batch_alter_table("station") as batch:
        batch.add_column(sa.Column("root_sync", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("root_sync_delay", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pending_security_profile", sa.Integer(), nullable=True))
    op.create_table(
        "station_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_identity", sa.String(length=48), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "bridge_limit",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        "ix_station_notification_station_request",
        "station_notification",
        ["station_identity", "request_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("bridge_limit")
    op.drop_index("ix_station_notification_station_request", table_name="station_notification")
    op.drop_table("station_notification")
    with op.batch_alter_table("station") as batch:
        batch.drop_column("pending_security_profile")
        batch.drop_column("root_sync_delay")
        batch.drop_column("root_sync")
    op.drop_index("ix_ocpp_delivery_status_origin", table_name="ocpp_delivery")
    with op.batch_alter_table("ocpp_delivery") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("requested_by")
        batch.drop_column("ocpp_version")
        batch.drop_column("origin")
