"""API fixtures: an app over a fresh PKI, a token per role, and an httpx client through ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from pki import PKI
from pki.tokens import Role


@pytest.fixture
def tokens(fresh_pki: PKI) -> dict[Role, str]:
    return {role: fresh_pki.create_token(name=f"test-{role.value}", role=role)[1] for role in Role}


@pytest_asyncio.fixture
async def client(fresh_pki: PKI) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(fresh_pki)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
