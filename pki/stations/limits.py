"""Limits every bridge process honours, kept in the database so that N processes behave as one.

- Refused connection attempts per remote address and minute (:func:`count_failures`,
  :func:`add_failure`): past a budget, a profile-2 login is refused without a password check, and
  only a few refusals per minute become security events -- whichever process the attempts reach.
- Renewal-trigger cool-downs per station (:func:`claim_cooldown`): a TriggerMessage is not
  repeated sooner, even when the station reconnects to another process.

Each is one small transaction; two processes racing on a new key both end up counted (the
insert that loses retries as an update).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from pki.core.clock import utc
from pki.runtime.context import Context
from pki.store.models import BridgeLimitRow

__all__ = ["add_failure", "claim_cooldown", "count_failures"]

_LIMITS = BridgeLimitRow.__table__  # type: ignore[attr-defined]


def _minute(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


def count_failures(ctx: Context, address: str) -> int:
    """Refused attempts from ``address`` in the current minute."""
    window = _minute(ctx.clock.now())
    with ctx.database.read() as session:
        row = session.execute(
            select(_LIMITS.c.window_start, _LIMITS.c.count).where(_LIMITS.c.key == f"auth:{address}"[:200])
        ).first()
    return int(row.count) if row is not None and utc(row.window_start) == window else 0


def add_failure(ctx: Context, address: str) -> int:
    """Count one more refused attempt from ``address``; the count of the current minute."""
    window = _minute(ctx.clock.now())
    key = f"auth:{address}"[:200]
    for _ in range(3):
        try:
            with ctx.database.transaction() as connection:
                row = connection.execute(
                    select(_LIMITS.c.window_start, _LIMITS.c.count).where(_LIMITS.c.key == key)
                ).first()
                if row is None:
                    connection.execute(insert(_LIMITS).values(key=key, window_start=window, count=1))
                    return 1
                if utc(row.window_start) != window:
                    connection.execute(update(_LIMITS).where(_LIMITS.c.key == key).values(window_start=window, count=1))
                    return 1
                connection.execute(update(_LIMITS).where(_LIMITS.c.key == key).values(count=_LIMITS.c.count + 1))
                return int(row.count) + 1
        except SqlIntegrityError:
            continue  # another process inserted the key first: count on its row
    return count_failures(ctx, address)


def claim_cooldown(ctx: Context, key: str, seconds: float) -> bool:
    """True (and the cool-down started) unless ``key`` is still cooling down from an earlier claim."""
    now = ctx.clock.now()
    key = key[:200]
    until = now + dt.timedelta(seconds=seconds)
    try:
        with ctx.database.transaction() as connection:
            claimed = connection.execute(
                update(_LIMITS)
                .where(_LIMITS.c.key == key, (_LIMITS.c.until.is_(None)) | (_LIMITS.c.until <= now))
                .values(until=until, window_start=now, count=_LIMITS.c.count + 1)
            ).rowcount
            if claimed:
                return True
            if connection.execute(select(_LIMITS.c.key).where(_LIMITS.c.key == key)).first() is not None:
                return False
            connection.execute(insert(_LIMITS).values(key=key, window_start=now, count=1, until=until))
            return True
    except SqlIntegrityError:
        return False  # another process claimed it at the same moment
