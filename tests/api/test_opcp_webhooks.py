"""OPCP webhooks: subscriptions per client, events from the audit log, signed deliveries that are
retried with backoff, survive a restart (a second PKI on the same database delivers them) and are
logged for the subscriber. Bodies are checked against the published ``webhook.payload.v1.json``
where the reference copy is present.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from api.opcp import deliver_once
from pki import PKI
from tests.conftest import OPCP_REFERENCE
from tests.foreign_roots import foreign_root
from tests.opcp_support import client_token, foreign_oem_chain, opcp_headers

pytestmark = pytest.mark.asyncio

PAYLOADS = OPCP_REFERENCE / "webhook.payload.v1.json"
PCID = "WMIHOOK0000000001"
EMAID = "DEABCH000000001"


@pytest_asyncio.fixture
async def http(fresh_pki: PKI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client


class Receiver:
    """The subscribers' endpoints: records every POST and answers what ``answer`` says."""

    def __init__(self) -> None:
        self.received: list[httpx.Request] = []
        self.answer: Callable[[httpx.Request], int] = lambda request: 200

    def client(self) -> httpx.AsyncClient:
        def handle(request: httpx.Request) -> httpx.Response:
            self.received.append(request)
            return httpx.Response(self.answer(request))

        return httpx.AsyncClient(transport=httpx.MockTransport(handle))

    def bodies(self, url_part: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.received if url_part in str(r.url)]


async def _subscribe(http: httpx.AsyncClient, token: str, url: str, events: list[str]) -> dict[str, Any]:
    answer = await http.post(
        "/opcp/v1/webhook/endpoints", json={"url": url, "enabledEvents": events}, headers=opcp_headers(token)
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _schema(path: str) -> dict[str, Any] | None:
    if not PAYLOADS.exists():
        return None
    spec = json.loads(PAYLOADS.read_text())
    return dict(spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"])


async def test_events_reach_the_subscribers_they_concern_signed(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    cpo = await client_token(http, fresh_pki, "cpo", "cpo")
    oem = await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"])
    other_oem = await client_token(http, fresh_pki, "oem-2", "oem", wmis=["QQQ"])
    mo = await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEABC"])
    hooks = {
        "cpo": await _subscribe(http, cpo, "https://cpo.example/hook", ["root.cert.added", "root.cert.revoked"]),
        "oem": await _subscribe(
            http, oem, "https://oem.example/hook", ["oem.contract.created", "oem.contract.deleted"]
        ),
        "oem-2": await _subscribe(http, other_oem, "https://oem2.example/hook", ["oem.contract.created"]),
        "mo": await _subscribe(http, mo, "https://mo.example/hook", ["mo.prov.cert.updated", "mo.prov.cert.deleted"]),
    }
    assert hooks["oem"]["secret"].startswith("whsec_") and hooks["oem"]["wmis"] == ["WMI"]
    # what happens: a V2G root trusted (by the CLI's path), a contract added and revoked, a vehicle's key changed
    root = foreign_root("Hook V2G Root CA")
    fresh_pki.trust.add(root.certificate.public_bytes(serialization.Encoding.DER), use="V2GRootCertificate")
    chain = foreign_oem_chain(PCID)
    fresh_pki.trust.add(chain.root.public_bytes(serialization.Encoding.DER), use="OEMRootCertificate")
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    publish = await http.put("/opcp/v1/oem/provCerts", json=chain.body(), headers=opcp_headers(oem))
    assert publish.status_code == 200
    renewed = foreign_oem_chain(PCID)  # a new key under a new root
    fresh_pki.trust.add(renewed.root.public_bytes(serialization.Encoding.DER), use="OEMRootCertificate")
    assert (await http.put("/opcp/v1/oem/provCerts", json=renewed.body(), headers=opcp_headers(oem))).status_code == 200
    fresh_pki.contracts.revoke(EMAID)

    receiver = Receiver()
    async with receiver.client() as client:
        assert await deliver_once(fresh_pki, client) == 6
        assert await deliver_once(fresh_pki, client) == 0  # nothing twice
    cpo_events = receiver.bodies("cpo.example")
    assert [e["eventType"] for e in cpo_events] == ["root.cert.added", "root.cert.added", "root.cert.added"]
    assert {e["payload"]["rootType"] for e in cpo_events} == {"V2G", "OEM"}
    assert [e["eventType"] for e in receiver.bodies("oem.example")] == ["oem.contract.created", "oem.contract.deleted"]
    assert receiver.bodies("oem2.example") == []  # not its WMI
    mo_events = receiver.bodies("mo.example")
    assert [(e["eventType"], e["payload"]) for e in mo_events] == [
        ("mo.prov.cert.updated", {"emaid": EMAID, "pcid": PCID})
    ]
    for request in receiver.received:
        owner = next(h for h in hooks.values() if h["url"] == str(request.url))
        digest = hmac.new(owner["secret"].encode(), request.content, hashlib.sha256).hexdigest()
        assert request.headers["payload-signature"] == digest
        assert request.headers["X-Hubject-Signature"] == f"sha256={digest}"
        stamp, mac = (part.split("=", 1)[1] for part in request.headers["X-Evpki-Signature"].split(","))
        assert (
            mac
            == hmac.new(owner["secret"].encode(), f"{stamp}.".encode() + request.content, hashlib.sha256).hexdigest()
        )
    root_schema = _schema("/customer.defined.root.event.webhook.path")
    ids_schema = _schema("/customer.defined.pcid.emaid.event.webhook.path")
    if root_schema is not None and ids_schema is not None:
        for event in receiver.bodies("cpo.example"):
            payload_schema = {**root_schema, "properties": {**root_schema["properties"]}}
            payload_schema["properties"]["payload"] = {**root_schema["properties"]["payload"]}
            payload_schema["properties"]["payload"]["properties"] = {
                k: v for k, v in root_schema["properties"]["payload"]["properties"].items() if k != "distinguishedName"
            }  # its DN pattern has every RDN end in ", " unless C follows: see the README
            jsonschema.validate(event, payload_schema)
        for event in receiver.bodies("oem.example") + mo_events:
            jsonschema.validate(event, ids_schema)


async def test_a_failing_receiver_gets_retries_with_backoff_even_after_a_restart(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    cpo = await client_token(http, fresh_pki, "cpo", "cpo")
    hook = await _subscribe(http, cpo, "https://down.example/hook", ["root.cert.added"])
    fresh_pki.trust.add(
        foreign_root("Retry Root").certificate.public_bytes(serialization.Encoding.DER), use="MORootCertificate"
    )
    receiver = Receiver()
    receiver.answer = lambda request: 503
    async with receiver.client() as client:
        assert await deliver_once(fresh_pki, client) == 1
        assert await deliver_once(fresh_pki, client) == 0  # not due before its backoff
        fresh_pki.clock.advance(dt.timedelta(seconds=31))  # type: ignore[attr-defined]
        assert await deliver_once(fresh_pki, client) == 1  # second attempt, 503 again
    # "restart": another process on the same database, with the receiver back up
    fresh_pki.clock.advance(dt.timedelta(seconds=61))  # type: ignore[attr-defined]
    restarted = PKI.open(fresh_pki.settings, clock=fresh_pki.clock)
    try:
        receiver.answer = lambda request: 204
        async with receiver.client() as client:
            assert await deliver_once(restarted, client) == 1
    finally:
        restarted.close()
    assert len(receiver.received) == 3 and len({r.content for r in receiver.received}) == 1  # the same event
    log = (await http.get(f"/opcp/v1/webhook/endpoints/{hook['id']}/deliveries", headers=opcp_headers(cpo))).json()
    assert [(d["status"], d["attempts"], d["lastStatus"]) for d in log] == [("delivered", 3, 204)]
    other = await client_token(http, fresh_pki, "cpo-2", "cpo")
    hidden = await http.get(f"/opcp/v1/webhook/endpoints/{hook['id']}/deliveries", headers=opcp_headers(other))
    assert hidden.status_code == 404  # another client's subscription does not exist for it


async def test_a_refusing_receiver_stops_and_expired_roots_are_announced(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    cpo = await client_token(http, fresh_pki, "cpo", "cpo")
    hook = await _subscribe(http, cpo, "https://strict.example/hook", ["root.cert.added", "root.cert.expired"])
    soon = fresh_pki.clock.now() + dt.timedelta(days=2)
    root = foreign_root("Short Root", not_after=soon)
    fresh_pki.trust.add(root.certificate.public_bytes(serialization.Encoding.DER), use="V2GRootCertificate")
    receiver = Receiver()
    receiver.answer = lambda request: 400
    async with receiver.client() as client:
        assert await deliver_once(fresh_pki, client) == 1
        fresh_pki.clock.advance(dt.timedelta(days=3))  # type: ignore[attr-defined]
        receiver.answer = lambda request: 200
        assert await deliver_once(fresh_pki, client) == 1
        assert await deliver_once(fresh_pki, client) == 0
    assert [json.loads(r.content)["eventType"] for r in receiver.received] == ["root.cert.added", "root.cert.expired"]
    cpo = await client_token(http, fresh_pki, "cpo-later", "cpo")  # the first token has expired by now
    assert (
        await http.get(f"/opcp/v1/webhook/endpoints/{hook['id']}/deliveries", headers=opcp_headers(cpo))
    ).status_code == 404
    fresh_pki.clock.advance(dt.timedelta(days=-3))  # type: ignore[attr-defined]
    owner = fresh_pki.opcp.list_clients()[0].principal
    log = fresh_pki.opcp.webhooks.deliveries(owner, hook["id"])
    assert [(d.event_type, d.status, d.attempts) for d in log] == [
        ("root.cert.expired", "delivered", 1),
        ("root.cert.added", "failed", 1),  # 400: the receiver refused it, no retry
    ]


async def test_subscriptions_are_the_clients_own(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    mo = await client_token(http, fresh_pki, "mo", "mo-own-pki", providers=["DEABC"])
    cps = await client_token(http, fresh_pki, "cps", "cps")
    hook = await _subscribe(http, mo, "https://mo.example/hook", ["mo.prov.cert.deleted"])
    assert hook["providerIds"] == ["DEABC"] and hook["userRole"] == "MO_OWN_PKI"
    assert (await http.get("/opcp/v1/webhook/endpoints", headers=opcp_headers(cps))).json() == []
    assert (await http.get(f"/opcp/v1/webhook/endpoints/{hook['id']}", headers=opcp_headers(cps))).status_code == 404
    updated = await http.put(
        f"/opcp/v1/webhook/endpoints/{hook['id']}",
        json={"url": "https://mo.example/v2", "status": "disabled"},
        headers=opcp_headers(mo),
    )
    assert updated.status_code == 200 and updated.json()["status"] == "disabled"
    assert updated.json()["enabledEvents"] == ["mo.prov.cert.deleted"]
    bad = await http.post(
        "/opcp/v1/webhook/endpoints",
        json={"url": "ftp://x", "enabledEvents": ["root.cert.added"]},
        headers=opcp_headers(mo),
    )
    assert bad.status_code == 400
    unknown = await http.post(
        "/opcp/v1/webhook/endpoints",
        json={"url": "https://x.example", "enabledEvents": ["nope"]},
        headers=opcp_headers(mo),
    )
    assert unknown.status_code == 400 and "unknown event" in unknown.json()["errorMessages"][0]
    assert (await http.delete(f"/opcp/v1/webhook/endpoints/{hook['id']}", headers=opcp_headers(cps))).status_code == 404
    assert (await http.delete(f"/opcp/v1/webhook/endpoints/{hook['id']}", headers=opcp_headers(mo))).status_code == 200
    assert (await http.get("/opcp/v1/webhook/endpoints", headers=opcp_headers(mo))).json() == []
