"""``pki.store.db.WriterQueue``: SQLite writers of several processes take turns through a flock, promptly."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from pki.store.db import Database, WriterQueue


def _hold(path: str, held: threading.Event | None, seconds: float) -> None:
    queue = WriterQueue(Path(path))
    with queue:
        if held is not None:
            held.set()
        time.sleep(seconds)
    queue.close()


def _hold_in_process(path: str, ready: object, seconds: float) -> None:
    queue = WriterQueue(Path(path))
    with queue:
        ready.set()  # type: ignore[attr-defined]
        time.sleep(seconds)
    queue.close()


def test_another_process_waits_for_the_holder_and_gets_its_turn_at_once(tmp_path: Path) -> None:
    path = tmp_path / "evpki.db-writer"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_in_process, args=(str(path), ready, 0.5))
    holder.start()
    try:
        assert ready.wait(30)
        queue = WriterQueue(path)
        started = time.monotonic()
        with queue:
            waited = time.monotonic() - started
        queue.close()
    finally:
        holder.join(30)
    assert holder.exitcode == 0
    assert waited > 0.2  # it did wait for the other process (which held it for 0.5 s)


def test_threads_queue_and_one_thread_may_nest(tmp_path: Path) -> None:
    queue = WriterQueue(tmp_path / "evpki.db-writer")
    order: list[str] = []
    with queue:
        with queue:  # reentrant: a write inside a write of the same thread
            order.append("outer")

        def other() -> None:
            with queue:
                order.append("other")

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.2)
        assert thread.is_alive()  # still waiting: this thread holds it
        order.append("outer done")
    thread.join(10)
    assert order == ["outer", "outer done", "other"]
    queue.close()


def test_a_dead_holder_leaves_the_lock_to_the_next(tmp_path: Path) -> None:
    path = tmp_path / "evpki.db-writer"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_in_process, args=(str(path), ready, 60))
    holder.start()
    assert ready.wait(30)
    holder.kill()
    holder.join(30)
    queue = WriterQueue(path)
    with queue:
        pass
    queue.close()


def test_sqlite_database_writes_through_the_queue_and_memory_databases_need_no_file(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'evpki.db'}")
    with database.transaction() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    assert (tmp_path / "evpki.db-writer").exists()
    with database.read() as session:
        assert session.execute(text("SELECT x FROM t")).scalar_one() == 1
    database.dispose()
    memory = Database("sqlite:///:memory:")
    with memory.transaction() as connection:
        connection.execute(text("SELECT 1"))
    memory.dispose()


def test_an_error_inside_a_write_releases_the_turn(tmp_path: Path) -> None:
    path = tmp_path / "evpki.db-writer"
    queue = WriterQueue(path)
    with pytest.raises(RuntimeError), queue:
        raise RuntimeError("boom")
    held = threading.Event()
    thread = threading.Thread(target=_hold, args=(str(path), held, 0.0))
    thread.start()
    assert held.wait(10)  # another holder (its own file description) got it
    thread.join(10)
    queue.close()
