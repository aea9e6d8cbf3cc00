"""Several contracts per vehicle: a contract's priority among the unrevoked contracts of its PCID.

ISO 15118-20 hands a car several contract certificate chains (CertificateInstallationRes
``RemainingContractCertificateChains``; OPCP keeps several contracts per PCID). ``priority`` orders
a vehicle's contracts, lower first: an ISO 15118-2 installation takes the first, an ISO 15118-20
one hands them out in that order after the car's ``PrioritizedEMAIDs``. Existing contracts get 0.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contract") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("contract") as batch:
        batch.drop_column("priority")
