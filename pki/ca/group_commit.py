"""Group commit: the signed certificates of concurrent callers stored in one shared transaction.

Each caller signs its certificate in its own thread (the crypto runs in parallel with the
database work), then hands it to :meth:`GroupCommit.store` and waits. One caller at a time is
the *leader*: it takes every certificate waiting at that moment (its own first), stores them
with :func:`pki.ca.batch_store.store_batch` -- one transaction, one audit-head update -- hands
each caller its own outcome, and passes the lead to the first caller that arrived meanwhile.
A caller alone stores alone (:func:`pki.ca.batch_store.store_one`), exactly as before, so the
latency of a lone issuance does not change; under load the batches grow by themselves to what
arrived during the previous commit, and no caller waits for a timer.

A caller returns only once the transaction holding its certificate has committed: a crash
mid-batch loses nothing that anyone was told about. A refusal inside the batch (an issuer
revoked meanwhile, a renewal with nothing to renew, a hook that raises) is that caller's alone.

One instance per :class:`~pki.store.db.Database` (so per process and database): processes do
not share batches, they queue on the database's write lock (SQLite) or the audit-head row lock
(PostgreSQL) once per batch instead of once per certificate.
"""

from __future__ import annotations

import threading
import weakref

from pki.ca.batch_store import Signed, StoreAlone, store_batch, store_one
from pki.store.db import Database

__all__ = ["MAX_BATCH", "GroupCommit", "for_database"]

# Enough to amortise the transaction; small enough that one batch stays a short transaction.
MAX_BATCH = 256

_instances: weakref.WeakKeyDictionary[Database, GroupCommit] = weakref.WeakKeyDictionary()
_instances_lock = threading.Lock()


def for_database(database: Database) -> GroupCommit:
    """The group commit of ``database`` (created on first use)."""
    found = _instances.get(database)
    if found is None:
        with _instances_lock:
            found = _instances.get(database)
            if found is None:
                found = _instances[database] = GroupCommit()
    return found


class _Slot:
    __slots__ = ("done", "lead", "outcome", "signed")

    def __init__(self, signed: Signed) -> None:
        self.signed = signed
        self.done = threading.Event()
        self.lead = False  # woken to lead the next batch rather than with an outcome
        # What storing gave: None once stored; until then "not stored, store alone", so that no
        # failure between here and the commit can make a caller believe it was stored.
        self.outcome: BaseException | None = StoreAlone()


class GroupCommit:
    """Leader/follower batching of :class:`~pki.ca.batch_store.Signed` certificates."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Slot] = []
        self._leading = False  # invariant: not leading => nobody waiting

    def store(self, signed: Signed) -> None:
        """Store ``signed`` (alone or with whatever else is waiting); raises what refused it."""
        slot = _Slot(signed)
        with self._lock:
            self._waiting.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            slot.done.wait()
            lead = slot.lead
        if lead:
            self._lead()
        if slot.outcome is not None:
            raise slot.outcome

    def _lead(self) -> None:
        """Store what waits (this thread's slot is first) and wake everyone in it."""
        with self._lock:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
        try:
            self._store(batch)
        finally:
            with self._lock:
                successor = self._waiting[0] if self._waiting else None
                if successor is None:
                    self._leading = False
            for slot in batch[1:]:
                slot.done.set()
            if successor is not None:
                successor.lead = True
                successor.done.set()

    @staticmethod
    def _store(batch: list[_Slot]) -> None:
        if len(batch) == 1:
            try:
                store_one(batch[0].signed)
            except Exception as refusal:
                batch[0].outcome = refusal
            else:
                batch[0].outcome = None
            return
        try:
            outcomes = store_batch(batch[0].signed.ctx, [slot.signed for slot in batch])
        except Exception:
            # The shared transaction failed as a whole (the database went away, the commit failed):
            # nothing of it is stored, and each caller finds out on its own what storing alone gives.
            return
        for slot, outcome in zip(batch, outcomes, strict=True):
            slot.outcome = outcome
