"""pki.runtime.gc_tuning.settle: what is alive at start-up leaves the collector's generations."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pki.runtime import gc_tuning


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as before


class _StartUpState:
    pass


def test_settle_freezes_what_is_alive_and_collects_what_is_not(unfrozen: None) -> None:
    alive = _StartUpState()
    alive.cycle = alive  # type: ignore[attr-defined]
    garbage = _StartUpState()
    garbage.cycle = garbage  # type: ignore[attr-defined]
    garbage_id = id(garbage)
    del garbage
    gc_tuning.settle()
    assert gc.get_freeze_count() > 0
    tracked = gc.get_objects()
    assert not any(o is alive for o in tracked)  # frozen: no collection walks it any more
    assert not any(id(o) == garbage_id and isinstance(o, _StartUpState) for o in tracked)
    created_after = _StartUpState()
    assert any(o is created_after for o in gc.get_objects())  # what comes later is collected as usual
