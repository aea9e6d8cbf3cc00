"""The bridge stops when asked, even when the stop arrives as a waited-for event completes.

Python 3.11's ``asyncio.wait_for`` returns the inner result and drops a cancellation that arrives
in the same loop turn as that result (fixed only by 3.12's rewrite). A monitor loop that waited
with it then went on forever after ``Bridge.stop()`` cancelled it, and ``evpki bridge`` did not
exit on SIGTERM (seen in CI on PostgreSQL, where the operator-call feed wakes the monitor right
after start-up). These tests put the cancellation in exactly that turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ocpp_bridge.core import CertificateService
from ocpp_bridge.gateway import Bridge, BridgeConfig
from ocpp_bridge.session import Frame, SessionOptions, StationSession
from pki import PKI


async def _cancelled_as_it_wakes(task: asyncio.Task[Any], wake: Any) -> None:
    await asyncio.sleep(0.01)  # the task waits
    wake()  # its wait completes in the next turn ...
    task.cancel()  # ... where the cancellation arrives too
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done, "the task went on after it was cancelled"
    assert task.cancelled()


@pytest.mark.asyncio
@pytest.mark.parametrize("attempt", range(5))
async def test_the_operator_call_monitor_stops_when_cancelled_as_it_is_woken(
    fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch, attempt: int
) -> None:
    bridge = Bridge(fresh_pki, BridgeConfig(call_poll_interval=30))
    looks: list[int] = []

    async def deliver_calls() -> None:
        looks.append(attempt)

    monkeypatch.setattr(bridge, "deliver_calls", deliver_calls)
    task = asyncio.create_task(bridge._call_monitor())
    await _cancelled_as_it_wakes(task, bridge._call_wake.set)
    assert looks == []  # cancelled before it looked


class _Quiet:
    """A connection that takes what is sent and never closes."""

    async def send(self, message: str) -> None:
        return None


@pytest.mark.asyncio
@pytest.mark.parametrize("attempt", range(5))
async def test_a_session_waiting_for_an_answer_stops_when_cancelled_as_the_answer_arrives(
    fresh_pki: PKI, attempt: int
) -> None:
    session = StationSession(
        connection=_Quiet(),  # type: ignore[arg-type]
        identity=f"CP-{attempt}",
        version="2.0.1",
        service=CertificateService(fresh_pki),
        options=SessionOptions(call_timeout=30),
    )
    task = asyncio.create_task(session._await_answer("m-1", '[2,"m-1","Heartbeat",{}]'))

    def answer() -> None:
        session._waiting["m-1"].set_result(Frame(3, "m-1", payload={"currentTime": "2026-12-07T00:00:00Z"}))

    await _cancelled_as_it_wakes(task, answer)
    assert session._waiting == {}
