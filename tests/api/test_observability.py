"""Observability: ``/metrics``, ``/readyz``, request ids, JSON logs, and no secret in any log line."""

from __future__ import annotations

import io
import json
import shutil
import uuid

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from prometheus_client.parser import text_string_to_metric_families

from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import TEST_PASSPHRASE, make_csr

pytestmark = pytest.mark.asyncio


def _station_body(station_id: str | None = None) -> dict[str, object]:
    station_id = station_id or f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    return {"profile": "station", "csr": csr, "identity": {"stationId": station_id}}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _scrape(client: httpx.AsyncClient, token: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def _ocsp_request(pki: PKI, serial: str) -> bytes:
    """An OCSP request for ``serial`` of cso-sub, built from hashes (the leaf itself is not needed)."""
    issuer = pki.cas.chain("cso-sub")[0]
    name_hash = hashes.Hash(hashes.SHA1())
    name_hash.update(issuer.subject.public_bytes())
    key_hash = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest  # SHA-1 of the key bits
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        name_hash.finalize(), key_hash, int(serial, 16), hashes.SHA1()
    )
    return builder.build().public_bytes(serialization.Encoding.DER)


async def test_metrics_count_issuance_revocation_and_ocsp(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    auditor, csms, operator = tokens[Role.AUDITOR], bearer(tokens[Role.CSMS]), bearer(tokens[Role.OPERATOR])
    before = await _scrape(client, auditor)

    issued = await client.post("/api/v1/certificates", json=_station_body(), headers=csms)
    assert issued.status_code == 201, issued.text
    serial = issued.json()["certificate"]["serial"]
    refused = await client.post("/api/v1/certificates", json={**_station_body(), "csr": "garbage"}, headers=csms)
    assert refused.status_code in (400, 422)
    good = await client.post("/ocsp", content=_ocsp_request(fresh_pki, serial))
    assert good.status_code == 200
    malformed = await client.post("/ocsp", content=b"\x30\x00")
    assert malformed.status_code == 200
    revoked = await client.post(
        f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"}, headers=operator
    )
    assert revoked.status_code == 200, revoked.text
    after_revoke = await client.post("/ocsp", content=_ocsp_request(fresh_pki, serial))
    assert after_revoke.status_code == 200

    after = await _scrape(client, auditor)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("evpki_issuance_total", profile="station", outcome="issued") == 1
    assert delta("evpki_revocations_total", reason="keyCompromise") == 1
    ocsp_good = sum(delta("evpki_ocsp_requests_total", status="good", cache=c) for c in ("hit", "miss"))
    ocsp_revoked = sum(delta("evpki_ocsp_requests_total", status="revoked", cache=c) for c in ("hit", "miss"))
    ocsp_malformed = sum(delta("evpki_ocsp_requests_total", status="malformed", cache=c) for c in ("hit", "miss"))
    assert (ocsp_good, ocsp_revoked, ocsp_malformed) == (1, 1, 1)
    assert sum(delta("evpki_ocsp_duration_seconds_count", cache=c) for c in ("hit", "miss")) == 3
    # HTTP latency by route template: the serial is not a label, the template is.
    assert delta("evpki_http_request_duration_seconds_count", method="POST", route="/ocsp", status="200") == 3
    assert delta("evpki_http_request_duration_seconds_count", method="POST", route="/api/v1/certificates",
                 status="201") == 1  # fmt: skip
    assert not any("route" in dict(labels) and serial in dict(labels)["route"] for _, labels in after)


async def test_expiring_gauge_counts_certificates_near_their_end(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    import datetime as dt

    from pki import RequestIdentity

    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    fresh_pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station_id),
                    validity=dt.timedelta(days=10))  # fmt: skip
    counts = fresh_pki.certificates.expiring_counts(dt.timedelta(days=30))
    assert counts.get("cso-sub", 0) >= 1
    samples = await _scrape(client, tokens[Role.ADMIN])
    assert _value(samples, "evpki_certificates_expiring_30d", ca="cso-sub") == counts["cso-sub"]


async def test_metrics_need_an_auditor(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=bearer(tokens[Role.CSMS]))).status_code == 403


async def test_readyz_is_ready_then_503_without_the_key_store(client: httpx.AsyncClient, fresh_pki: PKI) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    keys = fresh_pki.settings.keys_dir
    shutil.move(keys, keys.with_name("keys-away"))
    try:
        down = await client.get("/readyz")
    finally:
        shutil.move(keys.with_name("keys-away"), keys)
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert "key" in down.json()["detail"]
    assert (await client.get("/healthz")).status_code == 200


async def test_request_id_is_echoed_when_sane_and_made_otherwise(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-Id": "abc.DEF-123_x"})
    assert echoed.headers["x-request-id"] == "abc.DEF-123_x"
    for insane in ("a" * 65, "has space", "semi;colon", ""):
        response = await client.get("/healthz", headers={"X-Request-Id": insane})
        made = response.headers["x-request-id"]
        assert made != insane and len(made) == 32
    fast_path = await client.post("/ocsp", content=b"\x30\x00", headers={"X-Request-Id": "ocsp-1"})
    assert fast_path.headers["x-request-id"] == "ocsp-1"


async def test_json_log_lines_carry_the_request_id(client: httpx.AsyncClient, captured_logs: io.StringIO) -> None:
    await client.get("/healthz", headers={"X-Request-Id": "trace-me-42"})
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "evpki.access" and line["request_id"] == "trace-me-42"]
    assert len(access) == 1
    entry = access[0]
    assert entry["method"] == "GET" and entry["path"] == "/healthz" and entry["status"] == 200
    assert entry["duration_ms"] >= 0 and entry["level"] == "INFO" and entry["time"].endswith("+00:00")


async def test_no_secret_ever_reaches_the_logs(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str], captured_logs: io.StringIO
) -> None:
    csms, operator = bearer(tokens[Role.CSMS]), bearer(tokens[Role.OPERATOR])
    # issuance and token authentication
    issued = await client.post("/api/v1/certificates", json=_station_body(), headers=csms)
    assert issued.status_code == 201
    serial = issued.json()["certificate"]["serial"]
    # revocation, then OCSP and CRL signing after it
    assert (await client.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"},
                              headers=operator)).status_code == 200  # fmt: skip
    assert (await client.post("/ocsp", content=_ocsp_request(fresh_pki, serial))).status_code == 200
    # firmware signing (loads the signer's encrypted key with the passphrase)
    signed = await client.post("/api/v1/firmware/sign", content=b"firmware" * 1000, params={"location": "https://x/y"},
                               headers={**operator, "Content-Type": "application/octet-stream"})  # fmt: skip
    assert signed.status_code == 200, signed.text
    # error paths: a bad token, a forbidden role, a refused CSR, an unknown certificate
    assert (await client.get("/api/v1/cas", headers=bearer("evpki_" + "B" * 43))).status_code == 401
    assert (await client.post("/api/v1/firmware/sign", content=b"x", headers=csms)).status_code == 403
    assert (await client.post("/api/v1/certificates", json={**_station_body(), "csr": "-----BEGIN"},
                              headers=csms)).status_code in (400, 422)  # fmt: skip
    assert (await client.get("/api/v1/certificates/0A1B2C", headers=csms)).status_code == 404

    output = captured_logs.getvalue()
    assert "evpki.access" in output  # the capture did see the requests
    secrets = [TEST_PASSPHRASE, "PRIVATE KEY", *tokens.values()]
    pin = getattr(fresh_pki.settings, "pkcs11_pin", None)
    if pin is not None:
        secrets.append(pin.get_secret_value())
    for secret in secrets:
        assert secret not in output, f"a secret reached the logs: {secret[:12]}..."
    for key_file in fresh_pki.settings.keys_dir.iterdir():
        body = key_file.read_text(encoding="ascii", errors="ignore").splitlines()
        assert not any(len(line) > 20 and line in output for line in body[1:-1])
