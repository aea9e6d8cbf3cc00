"""Every route × every role: 401 without a token, 403 for a role not declared, through for the others.

The declared roles are read from the OpenAPI extension each route carries (``x-evpki-roles``
or ``x-evpki-public``), so a route added without a declaration fails here.
"""

from __future__ import annotations

import re

import httpx
import pytest

from api.app import create_app
from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer

_PATH_VALUES = {
    "ca_id": "cso-sub",
    "key": "0A1B",
    "encoded": "MAA=",
    "name": "cso-sub.crl",
    "station_id": "CS-0001",
    "call_id": "1",
}
_QUERY = {"/api/v1/roots": {"use": "CSMSRootCertificate"}}


def _routes(pki: PKI) -> list[tuple[str, str, dict[str, object]]]:
    document = create_app(pki).openapi()
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: _PATH_VALUES[m.group(1)], path)


async def _call(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    return await client.request(
        method, _url(path), headers=headers, params=_QUERY.get(path), content=b"{}" if method == "POST" else None
    )


def test_every_route_declares_who_may_call_it(fresh_pki: PKI) -> None:
    routes = _routes(fresh_pki)
    assert len(routes) >= 18
    for method, path, extra in routes:
        assert ("x-evpki-roles" in extra) != ("x-evpki-public" in extra), f"{method} {path} declares no access rule"


@pytest.mark.asyncio
async def test_every_route_for_every_role(client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]) -> None:
    checked = 0
    for method, path, extra in _routes(fresh_pki):
        anonymous = await _call(client, method, path, {})
        if extra.get("x-evpki-public"):
            assert anonymous.status_code not in (401, 403), f"public {method} {path}: {anonymous.status_code}"
            continue
        assert anonymous.status_code == 401, f"{method} {path} without a token: {anonymous.status_code}"
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        allowed = set(extra["x-evpki-roles"])  # type: ignore[arg-type]
        assert "admin" in allowed
        for role, token in tokens.items():
            response = await _call(client, method, path, bearer(token))
            if role.value in allowed:
                assert response.status_code not in (401, 403), f"{role} on {method} {path}: {response.text}"
            else:
                assert response.status_code == 403, f"{role} on {method} {path}: {response.status_code}"
                assert response.json()["type"] == "urn:evpki:problem:forbidden"
            checked += 1
    assert checked >= 4 * 12


@pytest.mark.asyncio
async def test_unknown_malformed_and_revoked_tokens_are_401(client: httpx.AsyncClient, fresh_pki: PKI) -> None:
    view, token = fresh_pki.tokens.create(name="short-lived", role="auditor")
    assert (await client.get("/api/v1/cas", headers=bearer(token))).status_code == 200
    for header in ("Bearer evpki_" + "A" * 43, "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "):
        response = await client.get("/api/v1/cas", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["type"] == "urn:evpki:problem:unauthenticated"
    fresh_pki.tokens.revoke(view.name)
    response = await client.get("/api/v1/cas", headers=bearer(token))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_tokens_are_stored_only_as_hashes(fresh_pki: PKI) -> None:
    from sqlalchemy import text

    _, token = fresh_pki.tokens.create(name="hash-check", role="operator")
    engine = fresh_pki._ctx.database.engine
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT token_hash FROM api_token")).all()
    assert all(token not in row[0] for row in rows)
    assert not any(token[len("evpki_") :] in str(row) for row in rows)


@pytest.mark.asyncio
async def test_a_token_revoked_by_another_process_is_refused_once_the_cache_bound_passed(
    client: httpx.AsyncClient, fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted tokens are remembered for AUTH_CACHE_SECONDS; another process's revocation waits that long."""
    from pki.core import accepted
    from pki.operations import services

    clock = [1000.0]
    monkeypatch.setattr(accepted.time, "monotonic", lambda: clock[0])
    view, token = fresh_pki.tokens.create(name="elsewhere-revoked", role="auditor")
    assert (await client.get("/api/v1/cas", headers=bearer(token))).status_code == 200
    other = PKI.open(fresh_pki.settings, migrate=False)  # a second API process on the same database
    try:
        other.tokens.revoke(view.name)
    finally:
        other.close()
    clock[0] += services.AUTH_CACHE_SECONDS / 2
    assert (await client.get("/api/v1/cas", headers=bearer(token))).status_code == 200  # within the bound
    clock[0] += services.AUTH_CACHE_SECONDS
    response = await client.get("/api/v1/cas", headers=bearer(token))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
