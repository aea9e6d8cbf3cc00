"""The webhook delivery loop of ``evpki serve``: pump the event feed, POST what is due, record the outcome.

Each round runs in every worker process: the pump is serialised by its cursor row and deliveries
are leased when claimed, so workers share the load without a leader. The HTTP calls happen here,
at the edge (``pki`` only stores and decides). The receiver's URL is the subscriber's own input:
redirects are not followed, only the status is read (the body never), and each POST has a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from starlette.concurrency import run_in_threadpool

from pki import PKI
from pki.opcp import DeliveryJob, signature_headers

__all__ = ["deliver_once", "delivery_loop"]

log = logging.getLogger("evpki.opcp.webhooks")
_TIMEOUT = httpx.Timeout(10.0)
_IDLE = 1.0  # seconds between rounds when nothing was due
# POSTs in flight per round: httpcore's pool scans its queue for every request, so a deep queue
# costs more than it gains (measured with bench/opcp_webhooks.py).
_IN_FLIGHT = 16


async def _post(client: httpx.AsyncClient, job: DeliveryJob) -> tuple[int, int | None, str | None]:
    headers = signature_headers(job.secret, job.body, int(time.time()))
    try:
        async with client.stream("POST", job.url, content=job.body, headers=headers) as response:
            return job.id, response.status_code, None
    except httpx.HTTPError as exc:
        return job.id, None, f"{type(exc).__name__}: {exc}"[:300]


async def deliver_once(pki: PKI, client: httpx.AsyncClient) -> int:
    """One round: new events fanned out, then every due delivery attempted once. How many were due."""
    await run_in_threadpool(pki.opcp.pump_events)
    jobs = await run_in_threadpool(pki.opcp.claim_deliveries)
    if not jobs:
        return 0
    gate = asyncio.Semaphore(_IN_FLIGHT)

    async def post(job: DeliveryJob) -> tuple[int, int | None, str | None]:
        async with gate:
            return await _post(client, job)

    outcomes = await asyncio.gather(*(post(job) for job in jobs))
    await run_in_threadpool(pki.opcp.record_deliveries, list(outcomes))
    failed = [
        (job.url, status or error) for job, (_, status, error) in zip(jobs, outcomes, strict=True) if status != 200
    ]
    if failed:
        log.info("webhook round: %d of %d not delivered (first: %s %s)", len(failed), len(jobs), *failed[0])
    return len(jobs)


async def delivery_loop(pki: PKI) -> None:
    async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False) as client:
        while True:
            try:
                due = await deliver_once(pki, client)
            except Exception:
                log.exception("webhook delivery round failed")
                due = 0
            if not due:
                await asyncio.sleep(_IDLE)
