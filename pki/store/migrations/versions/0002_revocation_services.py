"""Revocation services and API access: status stamps, delta CRLs, pre-signed OCSP, API tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("status_version", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index("ix_certificate_issuer_changed", ["issuer_id", "status_changed_at"], unique=False)
    # Revocations made before this revision count as changed when they happened.
    op.execute("UPDATE certificate SET status_changed_at = revoked_at WHERE revoked_at IS NOT NULL")

    with op.batch_alter_table("crl", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), nullable=False, server_default="full"))
        batch_op.add_column(sa.Column("base_number", sa.Integer(), nullable=True))

    op.create_table(
        "ocsp_response",
        sa.Column("ca_id", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("hash_algorithm", sa.String(length=8), nullable=False),
        sa.Column("status_version", sa.Integer(), nullable=False),
        sa.Column("responder_serial", sa.String(length=40), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("ca_id", "serial", "hash_algorithm"),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_token")
    op.drop_table("ocsp_response")
    with op.batch_alter_table("crl", schema=None) as batch_op:
        batch_op.drop_column("base_number")
        batch_op.drop_column("kind")
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_issuer_changed")
        batch_op.drop_column("status_version")
        batch_op.drop_column("status_changed_at")
