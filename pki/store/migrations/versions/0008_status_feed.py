"""The certificate status change feed: what OCSP answer caches in every process invalidate from.

Triggers on ``certificate`` record every change of a status column (``status``, ``status_version``,
``revoked_at``, ``revocation_reason``) and every deletion, whatever statement made it: the CA's row
in ``status_feed`` counts up and ``status_change`` gets (CA, sequence number, serial). The feed row
stays locked until the change commits, so one CA's sequence numbers become visible in order and a
reader that has seen number N has seen every change before it. On PostgreSQL the trigger also
sends ``NOTIFY evpki_status, '<ca> <seq> <serial>'``, delivered when the change commits.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = "status, status_version, revoked_at, revocation_reason"
_CHANGED = (
    "OLD.status IS NOT NEW.status OR OLD.status_version IS NOT NEW.status_version "
    "OR OLD.revoked_at IS NOT NEW.revoked_at OR OLD.revocation_reason IS NOT NEW.revocation_reason"
)


def _sqlite_trigger(name: str, event: str, row: str, when: str) -> str:
    # SQLite has one writer at a time, so the sequence numbers commit in order anyway.
    return f"""
CREATE TRIGGER {name} AFTER {event} ON certificate{when}
BEGIN
  INSERT INTO status_feed (ca_id, seq) VALUES ({row}.issuer_id, 1)
    ON CONFLICT (ca_id) DO UPDATE SET seq = seq + 1;
  INSERT INTO status_change (ca_id, seq, serial, changed_at)
    SELECT {row}.issuer_id, seq, {row}.serial, strftime('%Y-%m-%d %H:%M:%f', 'now')
    FROM status_feed WHERE ca_id = {row}.issuer_id;
END
"""  # noqa: S608 -- only this module's constant names go in


_PG_FUNCTION = """
CREATE FUNCTION evpki_status_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  changed certificate%ROWTYPE;
  next_seq integer;
BEGIN
  IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
  INSERT INTO status_feed (ca_id, seq) VALUES (changed.issuer_id, 1)
    ON CONFLICT (ca_id) DO UPDATE SET seq = status_feed.seq + 1
    RETURNING seq INTO next_seq;
  INSERT INTO status_change (ca_id, seq, serial, changed_at)
    VALUES (changed.issuer_id, next_seq, changed.serial, now());
  PERFORM pg_notify('evpki_status', changed.issuer_id || ' ' || next_seq || ' ' || changed.serial);
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "status_feed",
        sa.Column("ca_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ca_id"),
    )
    op.create_table(
        "status_change",
        sa.Column("ca_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ca_id", "seq"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        changed = _CHANGED.replace(" IS NOT ", " IS DISTINCT FROM ")
        op.execute(
            f"CREATE TRIGGER evpki_status_update AFTER UPDATE OF {_COLUMNS} ON certificate "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION evpki_status_change()"
        )
        op.execute(
            "CREATE TRIGGER evpki_status_delete AFTER DELETE ON certificate "
            "FOR EACH ROW EXECUTE FUNCTION evpki_status_change()"
        )
    else:
        op.execute(_sqlite_trigger("evpki_status_update", f"UPDATE OF {_COLUMNS}", "NEW", f" WHEN {_CHANGED}"))
        op.execute(_sqlite_trigger("evpki_status_delete", "DELETE", "OLD", ""))


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS evpki_status_update" + _on_certificate())
    op.execute("DROP TRIGGER IF EXISTS evpki_status_delete" + _on_certificate())
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS evpki_status_change()")
    op.drop_table("status_change")
    op.drop_table("status_feed")


def _on_certificate() -> str:
    return " ON certificate" if op.get_bind().dialect.name == "postgresql" else ""
