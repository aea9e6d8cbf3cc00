"""Domain events for observers (metrics): issuance and revocation outcomes, OCSP answers.

``pki`` must not know who listens (the API's Prometheus metrics do), so it only calls
:func:`emit`; edges :func:`subscribe` a callable once per process. An observer that raises is
logged and ignored: counting must never break an issuance.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Event", "Observer", "emit", "subscribe", "unsubscribe"]

log = logging.getLogger("evpki.events")


@dataclass(frozen=True, slots=True)
class Event:
    """``kind`` is ``issuance`` (labels: profile, outcome), ``revocation`` (reason) or ``ocsp``
    (status, cache, duration_s)."""

    kind: str
    labels: dict[str, str]
    duration_s: float | None = None


Observer = Callable[[Event], None]

_observers: tuple[Observer, ...] = ()
_lock = threading.Lock()


def subscribe(observer: Observer) -> None:
    """Add ``observer`` (idempotent: the same callable is called once per event)."""
    global _observers
    with _lock:
        if observer not in _observers:
            _observers = (*_observers, observer)


def unsubscribe(observer: Observer) -> None:
    global _observers
    with _lock:
        _observers = tuple(o for o in _observers if o is not observer)


def emit(kind: str, labels: dict[str, str], duration_s: float | None = None) -> None:
    if not _observers:
        return
    event = Event(kind, labels, duration_s)
    for observer in _observers:
        try:
            observer(event)
        except Exception:
            log.exception("observer %r failed on a %s event", observer, kind)
