"""``POST /api/v1/contracts`` with ``concurrent`` and ``priority``: several contracts per vehicle (ISO 15118-20)."""

from __future__ import annotations

import httpx
import pytest

from pki.operations.tokens import Role
from tests.api.conftest import bearer

pytestmark = pytest.mark.asyncio

PCID = "WMIV2G0000000020A"


async def test_concurrent_contracts_through_rest(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    operator = bearer(tokens[Role.OPERATOR])
    first = await client.post("/api/v1/contracts", json={"emaid": "DEABCC123AB020", "pcid": PCID}, headers=operator)
    assert first.status_code == 201 and first.json()["priority"] == 0
    refused = await client.post("/api/v1/contracts", json={"emaid": "DEABCC123AB021", "pcid": PCID}, headers=operator)
    assert refused.status_code == 409, refused.text
    second = await client.post(
        "/api/v1/contracts",
        json={"emaid": "DEABCC123AB021", "pcid": PCID, "concurrent": True, "priority": 3},
        headers=operator,
    )
    assert second.status_code == 201, second.text
    listed = await client.get("/api/v1/contracts", params={"pcid": PCID, "status": "active"}, headers=operator)
    assert [(c["emaid"], c["priority"]) for c in listed.json()["items"]] == [
        ("DEABCC123AB020", 0),
        ("DEABCC123AB021", 3),
    ]
