"""Group commit: the signed certificates of concurrent callers stored in one shared transaction.

Each caller checks and signs its certificate in its own thread, then hands it to
:meth:`GroupCommit.store` and waits. One caller at a time is the *leader*: it takes every
certificate waiting (its own first), stores them with :func:`pki.ca.batch_store.store_batch` --
one transaction, one audit-head update -- hands each caller its own outcome, and passes the lead
to the first caller that arrived meanwhile. A caller alone stores alone
(:func:`pki.ca.batch_store.store_one`), exactly as before.

Before it takes the batch, the leader waits for the callers that are still signing (counted
from :meth:`GroupCommit.prepare` to :meth:`GroupCommit.store`), at most :data:`MAX_GATHER_S`.
That wait is what makes batches large in Python: signing holds the GIL, so a transaction that
overlaps other threads' signing gets the GIL back only after each of them -- a batch's nine
statements took ~9 signatures' time, and the next batch was as small as the last. Gathering
first, then committing while nobody else runs, keeps the transaction short and the batch as big
as the number of concurrent callers. A lone caller never waits (nobody else is signing).
While fewer callers wait than the previous batch held, the leader also lingers up to
:data:`LINGER_S` for callers that have not started signing yet (requests still in the web
framework); the batch then shrinks to what really arrives.

A caller on an event loop (:meth:`GroupCommit.store_async`: the REST API checks and signs on the
loop, where a thread hop per request cost more than the checks) waits on a future instead: it
never leads, a thread of the instance's own leads for it, and a batch wakes each loop it touched
once, not each caller.

A caller returns only once the transaction holding its certificate has committed: a crash
mid-batch loses nothing that anyone was told about. A refusal inside the batch (an issuer
revoked meanwhile, a renewal with nothing to renew, a hook that raises) is that caller's alone.

One instance per :class:`~pki.store.db.Database` (so per process and database): processes do
not share batches, they queue on the database's write lock (SQLite) or the audit-head row lock
(PostgreSQL) once per batch instead of once per certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

from pki.ca.batch_store import Signed, StoreAlone, store_batch, store_one
from pki.store.db import Database

__all__ = ["LINGER_S", "MAX_BATCH", "MAX_GATHER_S", "GroupCommit", "for_database"]

# Enough to amortise the transaction; small enough that one batch stays a short transaction.
MAX_BATCH = 256
# The longest a leader waits for callers still signing: a few signatures' time, so that a slow
# signer (an HSM, an RSA-4096 key, a caller's before_store hook) delays the others this much at most.
MAX_GATHER_S = 0.005
# How long a leader waits for callers not yet signing (a REST request still being parsed) while fewer
# wait than the last batch held: under steady load the next batch is as big as the last, and the
# worker's idle millisecond is the other worker's. A lone caller's last batch was 1: it never waits.
LINGER_S = 0.001

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
    __slots__ = ("done", "future", "lead", "loop", "outcome", "signed")

    def __init__(
        self,
        signed: Signed,
        future: asyncio.Future[None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.signed = signed
        self.done = threading.Event()
        self.future = future  # an event-loop caller's (with its loop); it never leads
        self.loop = loop
        self.lead = False  # woken to lead the next batch rather than with an outcome
        # What storing gave: None once stored; until then "not stored, store alone", so that no
        # failure between here and the commit can make a caller believe it was stored.
        self.outcome: BaseException | None = StoreAlone()


class GroupCommit:
    """Leader/follower batching of :class:`~pki.ca.batch_store.Signed` certificates."""

    def __init__(
        self, max_batch: int = MAX_BATCH, max_gather_s: float = MAX_GATHER_S, linger_s: float = LINGER_S
    ) -> None:
        self._max_batch = max_batch
        self._max_gather_s = max_gather_s
        self._linger_s = linger_s
        self._lock = threading.Condition(threading.Lock())
        self._waiting: list[_Slot] = []
        self._leading = False  # invariant: not leading => nobody waiting, or a _flush is queued
        self._preparing = 0  # callers between prepare() and store() or abandon()
        self._last_batch = 1
        self._leader: ThreadPoolExecutor | None = None  # leads for event-loop callers
        # Loops with a _flush queued: their waiting callers have a leader coming even while
        # nobody leads (the one exception to "not leading => nobody waiting").
        self._flushing: set[asyncio.AbstractEventLoop] = set()

    def prepare(self) -> None:
        """Count a caller that is about to check and sign a certificate it will :meth:`store`."""
        with self._lock:
            self._preparing += 1

    def abandon(self) -> None:
        """A caller counted by :meth:`prepare` will not store (its request was refused)."""
        with self._lock:
            self._preparing -= 1
            self._lock.notify_all()

    def store(self, signed: Signed, *, prepared: bool = False) -> None:
        """Store ``signed`` (alone or with whatever else is waiting); raises what refused it.

        ``prepared``: the caller was counted by :meth:`prepare`, which this call ends.
        """
        slot = _Slot(signed)
        with self._lock:
            if prepared:
                self._preparing -= 1
            lead = not self._leading
            if lead:
                self._waiting.insert(0, slot)  # a leader's own slot is in its batch (loop callers may wait)
            else:
                self._waiting.append(slot)
            self._leading = True
            self._lock.notify_all()
        if not lead:
            slot.done.wait()
            lead = slot.lead
        if lead:
            self._lead(slot)
        if slot.outcome is not None:
            raise slot.outcome

    async def store_async(self, signed: Signed, *, prepared: bool = False) -> None:
        """:meth:`store` for a caller on an event loop: it awaits its outcome, a thread leads.

        The lead is not taken at once but by a callback queued behind whatever the loop has ready:
        the requests that arrived together are checked and signed first and join this batch.
        """
        loop = asyncio.get_running_loop()
        slot = _Slot(signed, loop.create_future(), loop)
        with self._lock:
            if prepared:
                self._preparing -= 1
            self._waiting.append(slot)
            self._lock.notify_all()
            schedule = loop not in self._flushing
            self._flushing.add(loop)
        if schedule:
            loop.call_soon(self._flush, loop)
        assert slot.future is not None
        await slot.future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Lead for the loop's waiting callers, unless a leader will take them anyway."""
        with self._lock:
            self._flushing.discard(loop)
            if self._leading or not self._waiting:
                return  # the leader passes the lead on to them (see _lead)
            self._leading = True
        self._lead_elsewhere()

    def _lead_elsewhere(self) -> None:
        """Lead the next batch from the instance's own thread (its first slot cannot lead)."""
        if self._leader is None:
            with _instances_lock:
                if self._leader is None:
                    self._leader = ThreadPoolExecutor(1, thread_name_prefix="evpki-group-commit")
        self._leader.submit(self._lead, None)

    def _lead(self, own: _Slot | None) -> None:
        """Store what waits (``own``, this thread's slot, first) and wake everyone in it."""
        with self._lock:
            deadline = time.monotonic() + self._max_gather_s
            while self._preparing > 0 and len(self._waiting) < self._max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            expected = min(self._last_batch, self._max_batch)
            linger_until = time.monotonic() + self._linger_s
            while len(self._waiting) < expected:
                remaining = linger_until - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self._last_batch = len(batch)
        try:
            self._store(batch)
        finally:
            with self._lock:
                successor = self._waiting[0] if self._waiting else None
                if successor is None:
                    self._leading = False
            _wake([slot for slot in batch if slot is not own])
            if successor is not None:
                if successor.future is not None:
                    self._lead_elsewhere()
                else:
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


def _wake(slots: list[_Slot]) -> None:
    """Hand each slot its outcome: a thread's event, or one callback per event loop for its futures."""
    loops: dict[asyncio.AbstractEventLoop, list[_Slot]] = {}
    for slot in slots:
        if slot.loop is None:
            slot.done.set()
        else:
            loops.setdefault(slot.loop, []).append(slot)
    for loop, waiting in loops.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to tell (stored stays stored)
            loop.call_soon_threadsafe(_settle, waiting)


def _settle(slots: list[_Slot]) -> None:
    for slot in slots:
        future = slot.future
        if future is None or future.done():  # the caller went away (its request was cancelled)
            continue
        if slot.outcome is None:
            future.set_result(None)
        else:
            future.set_exception(slot.outcome)
