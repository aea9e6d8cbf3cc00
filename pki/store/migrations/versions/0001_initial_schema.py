"""Initial schema: CAs, certificates, CRLs, the hash-chained audit log and settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_record",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("ca_id", sa.String(length=64), nullable=True),
        sa.Column("serial", sa.String(length=40), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "certificate_authority",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("pki", sa.String(length=16), nullable=False),
        sa.Column("standard", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("key_backend", sa.String(length=16), nullable=False),
        sa.Column("issues", sa.String(length=256), nullable=False),
        sa.Column("rsa_pss", sa.Boolean(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("crl_number", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["certificate_authority.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "pki_setting",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("identity", sa.String(length=255), nullable=True),
        sa.Column("station_serial", sa.String(length=255), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("key_id", sa.String(length=128), nullable=True),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["certificate_authority.id"],
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_id"],
            ["certificate.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer_id", "serial", name="uq_certificate_issuer_serial"),
        sa.UniqueConstraint("sha256"),
    )
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.create_index("ix_certificate_identity", ["profile", "identity"], unique=False)
        batch_op.create_index("ix_certificate_issuer_status", ["issuer_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_label"), ["label"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_not_after"), ["not_after"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_serial"), ["serial"], unique=False)

    op.create_table(
        "crl",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ca_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_count", sa.Integer(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ca_id"],
            ["certificate_authority.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ca_id", "number", name="uq_crl_ca_number"),
    )


def downgrade() -> None:
    op.drop_table("crl")
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_serial"))
        batch_op.drop_index(batch_op.f("ix_certificate_not_after"))
        batch_op.drop_index(batch_op.f("ix_certificate_label"))
        batch_op.drop_index("ix_certificate_issuer_status")
        batch_op.drop_index("ix_certificate_identity")

    op.drop_table("certificate")
    op.drop_table("pki_setting")
    op.drop_table("certificate_authority")
    op.drop_table("audit_record")
    op.drop_table("audit_head")
