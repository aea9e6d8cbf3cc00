"""Every integer the REST API takes from the network is bounded, in the OpenAPI and in practice (issue 11, item 3).

The reproducers of the issue answered 500 (SQLite ``OverflowError``, PostgreSQL ``integer out of range``);
each is here, with the largest value still in bounds, which must reach the database and answer normally.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.app import create_app
from api.schemas import INT32_MAX, INT32_MIN, MAX_ROW_NUMBER
from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer

pytestmark = pytest.mark.asyncio

HUGE = 99999999999999999999  # the reproducer: more than 64 bits
OCPP_VERSIONS = ("1.6", "2.0.1", "2.1")


def _assert_validation_problem(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "urn:evpki:problem:validation-error"
    assert any(field in error["loc"] for error in problem["errors"]), problem


def _integer_schemas(node: Any, components: dict[str, Any], path: str, seen: frozenset[str]) -> list[tuple[str, dict]]:
    """Every integer (sub)schema under ``node``, with a readable path, following ``$ref``s."""
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                found += _integer_schemas(components[name], components, f"{path}->{name}", seen | {name})
        if node.get("type") == "integer":
            found.append((path, node))
        for key, value in node.items():
            if key != "$ref":
                found += _integer_schemas(value, components, f"{path}.{key}", seen)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _integer_schemas(value, components, f"{path}[{index}]", seen)
    return found


async def test_every_request_integer_has_bounds_in_the_openapi(fresh_pki: PKI) -> None:
    document = create_app(fresh_pki).openapi()
    components = document["components"]["schemas"]
    integers: list[tuple[str, dict]] = []
    for url, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {url}"
            for parameter in operation.get("parameters", ()):
                integers += _integer_schemas(
                    parameter["schema"], components, f"{where} {parameter['name']}", frozenset()
                )
            body = operation.get("requestBody")
            if body is not None:
                integers += _integer_schemas(body, components, f"{where} body", frozenset())
    assert integers, "the walk found no integer at all: it is broken"
    unbounded = [path for path, schema in integers if "minimum" not in schema or "maximum" not in schema]
    assert not unbounded, unbounded
    assert all(schema["maximum"] <= 2**63 - 1 and schema["minimum"] >= -(2**63) for _, schema in integers)


@pytest.mark.parametrize("resource", ["/api/v1/certificates", "/api/v1/contracts"])
async def test_a_huge_offset_is_a_400_problem(
    client: httpx.AsyncClient, tokens: dict[Role, str], resource: str
) -> None:
    auditor = bearer(tokens[Role.AUDITOR])
    for offset in (HUGE, MAX_ROW_NUMBER + 1, -1):
        _assert_validation_problem(await client.get(resource, params={"offset": offset}, headers=auditor), "offset")
    last = await client.get(resource, params={"offset": MAX_ROW_NUMBER}, headers=auditor)
    assert last.status_code == 200, last.text
    assert last.json()["items"] == [] and last.json()["nextOffset"] is None


async def test_a_huge_audit_cursor_is_a_400_problem(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    auditor = bearer(tokens[Role.AUDITOR])
    for after in (HUGE, MAX_ROW_NUMBER + 1, -1):
        _assert_validation_problem(await client.get("/api/v1/audit", params={"after": after}, headers=auditor), "after")
    last = await client.get("/api/v1/audit", params={"after": MAX_ROW_NUMBER}, headers=auditor)
    assert last.status_code == 200 and last.json() == []


@pytest.mark.parametrize("version", OCPP_VERSIONS)
@pytest.mark.parametrize("report", ["results", "errors"])
async def test_a_huge_delivery_id_is_a_400_problem(
    client: httpx.AsyncClient, tokens: dict[Role, str], version: str, report: str
) -> None:
    csms = bearer(tokens[Role.CSMS])
    follow_up = {"action": "CertificateSigned", "payload": {"certificateChain": "-----BEGIN CERTIFICATE-----\n"}}
    answer = {"response": {"status": "Accepted"}} if report == "results" else {"code": "Timeout"}
    url = f"/api/v1/ocpp/{version}/{report}"
    for delivery_id in (HUGE, MAX_ROW_NUMBER + 1, 0):
        body = {"stationId": "CS-BOUNDS", "followUp": {**follow_up, "deliveryId": delivery_id}, **answer}
        _assert_validation_problem(await client.post(url, json=body, headers=csms), "deliveryId")
    # The largest id in bounds reaches the database and is simply not there.
    body = {"stationId": "CS-BOUNDS", "followUp": {**follow_up, "deliveryId": MAX_ROW_NUMBER}, **answer}
    response = await client.post(url, json=body, headers=csms)
    assert response.status_code in (200, 404), response.text


async def test_firmware_request_id_is_an_ocpp_int32(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    operator = bearer(tokens[Role.OPERATOR])
    url = "/api/v1/firmware/sign"
    for request_id in (INT32_MAX + 1, INT32_MIN - 1, HUGE):
        params = {"location": "https://fw.example/fw.bin", "requestId": request_id}
        response = await client.post(url, params=params, content=b"firmware", headers=operator)
        _assert_validation_problem(response, "requestId")
    params = {"location": "https://fw.example/fw.bin", "requestId": INT32_MAX}
    signed = await client.post(url, params=params, content=b"firmware", headers=operator)
    assert signed.status_code == 200, signed.text
    assert signed.json()["updateFirmware"]["requestId"] == INT32_MAX


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit?action=%00",
        "/api/v1/audit?ca=a%00b",
        "/api/v1/certificates?identity=%00",
        "/api/v1/contracts?pcid=%00",
    ],
)
async def test_a_nul_character_in_a_filter_is_never_a_server_error(
    client: httpx.AsyncClient, tokens: dict[Role, str], path: str
) -> None:
    # Found by the fuzzer on PostgreSQL, whose text cannot hold NUL: the store answers InvalidInput.
    response = await client.get(path, headers=bearer(tokens[Role.ADMIN]))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.headers["content-type"].startswith("application/problem+json")
