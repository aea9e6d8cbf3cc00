"""Time for the domain: timezone-aware UTC, injectable so tests can travel in time."""

from __future__ import annotations

import datetime as dt
import re
from typing import Protocol

__all__ = ["Clock", "FixedClock", "SystemClock", "parse_duration", "utc"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        # X.509 times have whole seconds; dropping microseconds keeps stored and encoded times equal.
        return dt.datetime.now(dt.UTC).replace(microsecond=0)


class FixedClock:
    """A clock that only moves when told to (tests); whole seconds, like :class:`SystemClock`."""

    def __init__(self, at: dt.datetime) -> None:
        self._at = utc(at).replace(microsecond=0)

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at = (self._at + delta).replace(microsecond=0)

    def set(self, at: dt.datetime) -> None:
        self._at = utc(at).replace(microsecond=0)


def utc(value: dt.datetime) -> dt.datetime:
    """Return ``value`` as aware UTC; naive values (as some databases return them) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def parse_duration(text: str) -> dt.timedelta:
    """Parse ``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or ``20y`` (a year is 365 days)."""
    from pki.core.errors import InvalidInput

    match = _DURATION.match(text)
    if not match:
        raise InvalidInput(f"not a duration: {text!r} (use e.g. 30d, 12h, 20y)")
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise InvalidInput(f"duration must be positive: {text!r}")
    return dt.timedelta(seconds=amount * _UNIT_SECONDS[unit])
