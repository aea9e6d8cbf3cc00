"""A short-lived memory of credentials that were accepted, for checks that run on every request.

A bearer token's check costs a database read (and for a JWT a signature); remembering an accepted
one for a bound of seconds, keyed by a digest of it (never the secret), takes that off the hot path.
The owner calls :meth:`AcceptedCache.forget_all` when it withdraws a credential (a revocation, a
removed client): this process stops accepting it at once, other processes within the bound. A
look-up that started before a withdrawal is not remembered (:meth:`mark` / :meth:`remember`).
Refusals are never remembered.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

__all__ = ["AcceptedCache"]

T = TypeVar("T")


class AcceptedCache(Generic[T]):
    """digest -> what was accepted, for ``seconds``; thread-safe, at most ``max_entries`` kept."""

    def __init__(self, seconds: float, *, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[T, float]] = {}
        self._withdrawals = 0
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        known = self._entries.get(key)
        if known is None or time.monotonic() >= known[1]:
            return None
        return known[0]

    def mark(self) -> int:
        """Read before the look-up whose result :meth:`remember` may keep."""
        return self._withdrawals

    def remember(self, key: str, value: T, mark: int) -> None:
        """Keep ``value`` unless a credential was withdrawn since ``mark`` was read."""
        with self._lock:
            if mark != self._withdrawals:
                return
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (value, time.monotonic() + self.seconds)

    def forget_all(self) -> None:
        with self._lock:
            self._withdrawals += 1
            self._entries.clear()
