"""API fixtures: an app over a fresh PKI, a token per role, an httpx client (ASGITransport), captured JSON logs."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.observability import JsonFormatter
from pki import PKI
from pki.operations.tokens import Role


@pytest.fixture
def tokens(fresh_pki: PKI) -> dict[Role, str]:
    return {role: fresh_pki.tokens.create(name=f"test-{role.value}", role=role)[1] for role in Role}


@pytest_asyncio.fixture
async def client(fresh_pki: PKI) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(fresh_pki)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every logger at DEBUG into one JSON-lines buffer, the way ``evpki serve`` writes them."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in logging.root.manager.loggerDict:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)
