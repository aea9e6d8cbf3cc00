"""Errors keep their context (issue 11, item 4).

A 500 carries ``X-Request-Id`` and its log lines the request id; a chunked body over the limit is
the same 413 as one announced by Content-Length; the OpenAPI documents 401/403 on exactly the
operations that check a token, ``/metrics`` included; a 405 names the allowed methods.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from api.limits import DEFAULT_LIMIT
from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import make_csr

pytestmark = pytest.mark.asyncio


def _log_lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


async def test_a_500_carries_the_request_id_in_its_header_and_log_lines(
    client: httpx.AsyncClient,
    fresh_pki: PKI,
    tokens: dict[Role, str],
    captured_logs: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> None:
        raise RuntimeError("database said something internal")

    monkeypatch.setattr(fresh_pki.cas, "list", broken)
    response = await client.get("/api/v1/cas", headers={**bearer(tokens[Role.ADMIN]), "X-Request-Id": "boom-500"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-500"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:evpki:problem:internal-error"
    assert "internal" not in response.json()["detail"]  # nothing of the exception reaches the client
    lines = _log_lines(captured_logs)
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors, lines
    assert all(line["request_id"] == "boom-500" for line in errors), errors
    assert any("RuntimeError: database said something internal" in str(line.get("exception")) for line in errors)
    access = [line for line in lines if line["logger"] == "evpki.access"]
    assert [(line["status"], line["request_id"]) for line in access] == [(500, "boom-500")]


def _issue_body(padding: int) -> bytes:
    csr, _ = make_csr("CP-TOO-LARGE")
    body = {"profile": "station", "csr": csr, "identity": {"stationId": "CP-TOO-LARGE", "fqdn": "x" * padding}}
    return json.dumps(body).encode()


async def _chunked(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    "url", ["/api/v1/certificates", "/api/v1/contracts", "/api/v1/ocpp/2.0.1/SignCertificate", "/ocsp"]
)
async def test_a_chunked_body_over_the_limit_is_413_like_an_announced_one(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str], url: str
) -> None:
    admin = {**bearer(tokens[Role.ADMIN]), "Content-Type": "application/json"}
    data = _issue_body(DEFAULT_LIMIT + 1)
    audit_before = fresh_pki.audit.count()

    announced = await client.post(url, content=data, headers=admin)
    chunked = await client.post(url, content=_chunked(data), headers=admin)

    assert "content-length" not in chunked.request.headers  # really sent chunked
    for response in (announced, chunked):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "urn:evpki:problem:payload-too-large"
        assert "x-request-id" in response.headers
    assert fresh_pki.audit.count() == audit_before


async def test_a_chunked_body_within_the_limit_still_works(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    csr, _ = make_csr("CP-CHUNKED")
    data = json.dumps({"profile": "station", "csr": csr, "identity": {"stationId": "CP-CHUNKED"}}).encode()
    headers = {**bearer(tokens[Role.CSMS]), "Content-Type": "application/json"}
    issued = await client.post("/api/v1/certificates", content=_chunked(data, 64), headers=headers)
    assert issued.status_code == 201, issued.text


async def test_a_chunked_firmware_over_its_own_limit_is_413(fresh_pki: PKI, tokens: dict[Role, str]) -> None:
    fresh_pki.settings.firmware_max_bytes = 10_000
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as http:
        audit_before = fresh_pki.audit.count()
        response = await http.post(
            "/api/v1/firmware/sign", content=_chunked(b"\x00" * 20_000), headers=bearer(tokens[Role.OPERATOR])
        )
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "urn:evpki:problem:payload-too-large"
    assert fresh_pki.audit.count() == audit_before  # nothing was signed


async def test_the_openapi_documents_401_and_403_where_a_token_is_checked(fresh_pki: PKI) -> None:
    document = create_app(fresh_pki).openapi()
    checked = public = 0
    for url, item in document["paths"].items():
        for method, operation in item.items():
            documented = set(operation["responses"])
            if "x-evpki-roles" in operation:
                checked += 1
                assert {"401", "403"} <= documented, f"{method.upper()} {url}"
                for status in ("401", "403"):
                    content = operation["responses"][status]["content"]
                    assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
            else:
                public += 1
                assert operation.get("x-evpki-public") is True, f"{method.upper()} {url}"
                assert not {"401", "403"} & documented, f"{method.upper()} {url} is public"
    assert checked and public
    assert {"401", "403"} <= set(document["paths"]["/metrics"]["get"]["responses"])


async def test_metrics_answers_the_documented_401_and_403(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=bearer(tokens[Role.CSMS]))).status_code == 403
    assert (await client.get("/metrics", headers=bearer(tokens[Role.AUDITOR]))).status_code == 200


async def test_a_405_names_the_allowed_methods(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["type"] == "urn:evpki:problem:method-not-allowed"
    assert response.headers["allow"] == "GET"  # RFC 9110 §15.5.6
