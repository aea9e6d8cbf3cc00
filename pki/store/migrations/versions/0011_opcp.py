"""OPCP pool services: OAuth2 clients, JWT signing keys, the Provisioning Certificate Pool, webhooks.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "opcp_client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("wmis", sa.Text(), nullable=False),
        sa.Column("providers", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        _when("created_at"),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "opcp_signing_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        _when("created_at"),
        _when("retired_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kid"),
    )
    op.create_table(
        "opcp_provisioning_certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pcid", sa.String(length=18), nullable=False),
        sa.Column("wmi", sa.String(length=3), nullable=False),
        sa.Column("leaf_der", sa.LargeBinary(), nullable=False),
        sa.Column("sub_ca1_der", sa.LargeBinary(), nullable=False),
        sa.Column("sub_ca2_der", sa.LargeBinary(), nullable=True),
        sa.Column("root_der", sa.LargeBinary(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        _when("not_after"),
        _when("created_at"),
        _when("updated_at"),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pcid"),
    )
    op.create_index("ix_opcp_provisioning_certificate_wmi", "opcp_provisioning_certificate", ["wmi"], unique=False)
    op.create_table(
        "opcp_webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_opcp_webhook_client_id", "opcp_webhook", ["client_id"], unique=False)
    op.create_table(
        "opcp_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=48), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_table(
        "opcp_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at"),
        _when("last_attempt_at", nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("delivered_at", nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["opcp_event.id"]),
        sa.ForeignKeyConstraint(["webhook_id"], ["opcp_webhook.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_opcp_delivery_webhook_event"),
    )
    op.create_index("ix_opcp_delivery_next_attempt_at", "opcp_delivery", ["next_attempt_at"], unique=False)
    op.create_index("ix_opcp_delivery_status", "opcp_delivery", ["status"], unique=False)
    op.create_index("ix_opcp_delivery_webhook_id", "opcp_delivery", ["webhook_id"], unique=False)
    op.create_table(
        "opcp_feed_cursor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("opcp_feed_cursor")
    for index in ("ix_opcp_delivery_webhook_id", "ix_opcp_delivery_status", "ix_opcp_delivery_next_attempt_at"):
        op.drop_index(index, table_name="opcp_delivery")
    op.drop_table("opcp_delivery")
    op.drop_table("opcp_event")
    op.drop_index("ix_opcp_webhook_client_id", table_name="opcp_webhook")
    op.drop_table("opcp_webhook")
    op.drop_index("ix_opcp_provisioning_certificate_wmi", table_name="opcp_provisioning_certificate")
    op.drop_table("opcp_provisioning_certificate")
    op.drop_table("opcp_signing_key")
    op.drop_table("opcp_client")
