"""Secure firmware update (OCPP L01, 1.6 SignedUpdateFirmware) through REST, the CLI and the bridge to a real
``ocpp`` station, following OCTT TC_L_01 (installed), TC_L_04/05 (RevokedCertificate / InvalidCertificate),
TC_L_06 (InvalidSignature) and 1.6 TC_080 / TC_081.

The signature is checked with ``cryptography`` directly (SHA-256 over the whole file, the signer's key), not
with evpki's own verifier.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli_app
from ocpp_bridge.gateway import Bridge, BridgeConfig
from pki import PKI
from pki.operations.tokens import Role
from tests.conftest import TEST_PASSPHRASE
from tests.ocpp_bridge.gateway_support import WAIT, wait_until
from tests.ocpp_bridge.operator_stations import connected, register, verify_firmware_signature

pytestmark = pytest.mark.asyncio
FIRMWARE = b"firmware image v2 " * 1000
LOCATION = "https://fw.example.com/v2.bin"


@pytest.fixture
def live_pki(fresh_pki: PKI) -> PKI:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    return fresh_pki


@pytest.fixture(scope="module")
def server_certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One set of bridge server certificates for the module (every fresh PKI has the same CAs): no RSA
    key generation per test."""
    return tmp_path_factory.mktemp("bridge-certificates")


@pytest_asyncio.fixture
async def bridge(live_pki: PKI, server_certificates: Path) -> AsyncIterator[Bridge]:
    config = BridgeConfig(
        port=0, basic_port=0, call_timeout=WAIT, call_poll_interval=0.02, certificate_dir=server_certificates
    )
    async with Bridge(live_pki, config) as running:
        yield running


@pytest_asyncio.fixture
async def api(live_pki: PKI) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    token = live_pki.tokens.create(name="operator", role=Role.OPERATOR)[1]
    transport = httpx.ASGITransport(app=create_app(live_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client, {"Authorization": f"Bearer {token}"}


async def _update(api: Any, identity: str, query: str = "") -> httpx.Response:
    client, headers = api
    return await client.post(
        f"/api/v1/stations/{identity}/firmware?location={LOCATION}&retries=2&wait=20s{query}",
        content=FIRMWARE,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )


async def _status(api: Any, identity: str) -> list[dict[str, Any]]:
    client, headers = api
    answer = await client.get(f"/api/v1/stations/{identity}/firmware", headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["updates"])


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_secure_firmware_update_is_installed(bridge: Bridge, api: Any, tmp_path: Path, version: str) -> None:
    """TC_L_01 / 1.6 TC_080: signed, sent with requestId, every status recorded through Installed."""
    pki = bridge.pki
    identity, serial = f"CS-FW-{version.replace('.', '')}", f"SN-FW-{version.replace('.', '')}"
    credential = register(pki, tmp_path, identity, serial, version)
    pki.station_calls.set_root_sync(identity, mode="off")
    action = "SignedUpdateFirmware" if version == "1.6" else "UpdateFirmware"
    async with connected(bridge, version, identity, serial, credential) as station:
        answer = await _update(api, identity, "&installDateTime=2030-01-01T00:00:00Z")
        assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text
        call_id = answer.json()["id"]
        (sent,) = station.got(action)
        assert sent["requestId"] == call_id and sent["retries"] == 2
        assert sent["firmware"]["location"] == LOCATION
        assert sent["firmware"]["installDateTime"] == "2030-01-01T00:00:00Z"
        signer = verify_firmware_signature(sent["firmware"], FIRMWARE)
        signer.verify_directly_issued_by(
            x509.load_pem_x509_certificate(pki.cas.get("mf-root").certificate_pem.encode())
        )
        await wait_until(station.reported.is_set)
        await wait_until(lambda: len(pki.station_calls.notifications(identity, [call_id]).get(call_id, [])) == 6)
    (update,) = await _status(api, identity)
    assert update["requestId"] == call_id and update["outcome"] == "installed", update
    assert "FirmwareUpdated" in update["reason"]
    statuses = [n["status"] for n in update["notifications"] if n["action"] != "SecurityEventNotification"]
    assert statuses == ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]


@pytest.mark.parametrize(
    ("answer", "event", "outcome", "words"),
    [
        ("InvalidCertificate", "InvalidFirmwareSigningCertificate", "refused", "L01.FR.02"),
        ("RevokedCertificate", "InvalidFirmwareSigningCertificate", "refused", "L01.FR.22"),
    ],
)
async def test_a_refused_signing_certificate_is_a_clear_outcome(
    bridge: Bridge, api: Any, tmp_path: Path, answer: str, event: str, outcome: str, words: str
) -> None:
    """TC_L_05 / TC_L_04: the station refuses the signer and reports InvalidFirmwareSigningCertificate."""
    pki = bridge.pki
    identity, serial = f"CS-FW-{answer[:7]}", f"SN-FW-{answer[:7]}"
    credential = register(pki, tmp_path, identity, serial, "2.0.1")
    pki.station_calls.set_root_sync(identity, mode="off")
    async with connected(bridge, "2.0.1", identity, serial, credential) as station:
        station.answers["UpdateFirmware"] = answer
        station.firmware_events = (event,)
        response = await _update(api, identity)
        assert response.status_code == 200 and response.json()["status"] == "rejected", response.text
        await wait_until(station.reported.is_set)
        await wait_until(lambda: bool(pki.station_calls.notifications(identity, [response.json()["id"]])))
    (update,) = await _status(api, identity)
    assert update["outcome"] == outcome and words in update["reason"] and event in update["reason"], update


async def test_an_invalid_signature_reported_by_the_station_is_a_failure(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    """TC_L_06 / 1.6 TC_081: InvalidSignature status and the InvalidFirmwareSignature event."""
    pki = bridge.pki
    identity, serial = "CS-FW-BADSIG", "SN-FW-BADSIG"
    credential = register(pki, tmp_path, identity, serial, "1.6")
    pki.station_calls.set_root_sync(identity, mode="off")
    async with connected(bridge, "1.6", identity, serial, credential) as station:
        station.firmware_statuses = ("Downloading", "Downloaded", "InvalidSignature")
        station.firmware_events = ("InvalidFirmwareSignature",)
        response = await _update(api, identity)
        assert response.status_code == 200, response.text
        await wait_until(station.reported.is_set)
        await wait_until(
            lambda: len(pki.station_calls.notifications(identity, [response.json()["id"]])[response.json()["id"]]) == 4
        )
    (update,) = await _status(api, identity)
    assert update["outcome"] == "failed" and "L01.FR.03" in update["reason"], update
    assert "InvalidFirmwareSignature" in update["reason"]


async def test_a_firmware_whose_signer_was_revoked_since_is_not_sent(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    """Queued while the station is offline; the signer is revoked before it connects: the update never goes out."""
    pki = bridge.pki
    identity, serial = "CS-FW-REVOKED", "SN-FW-REVOKED"
    credential = register(pki, tmp_path, identity, serial, "2.0.1")
    pki.station_calls.set_root_sync(identity, mode="off")
    client, headers = api
    queued = await client.post(
        f"/api/v1/stations/{identity}/firmware?location={LOCATION}",
        content=FIRMWARE,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert queued.status_code == 202, queued.text
    signer = x509.load_pem_x509_certificate(queued.json()["payload"]["firmware"]["signingCertificate"].encode())
    pki.revocation.revoke(format(signer.serial_number, "X"), "keyCompromise", ca_id="mf-root")
    async with connected(bridge, "2.0.1", identity, serial, credential) as station:
        waited = await client.get(f"/api/v1/stations/{identity}/calls/{queued.json()['id']}?wait=20s", headers=headers)
        assert waited.json()["status"] == "error", waited.text
        assert (
            waited.json()["result"]["errorCode"] == "NotSent"
            and "revoked" in waited.json()["result"]["errorDescription"]
        )
        assert station.got("UpdateFirmware") == []
    # An existing signature by the revoked signer is refused outright, and nothing is queued.
    before = len(pki.station_calls.list(identity))
    refused = await client.post(
        f"/api/v1/stations/{identity}/firmware?location={LOCATION}",
        content=FIRMWARE,
        headers={
            **headers,
            "Firmware-Signature": queued.json()["payload"]["firmware"]["signature"],
            "Firmware-Signing-Certificate": base64.b64encode(signer.public_bytes(serialization.Encoding.DER)).decode(),
        },
    )
    assert refused.status_code == 422 and "revoked" in refused.json()["detail"], refused.text
    assert len(pki.station_calls.list(identity)) == before


async def test_the_cli_updates_firmware_and_shows_the_status(
    live_pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_certificates: Path
) -> None:
    """`evpki station update-firmware --wait` and `firmware-status`, the bridge in this process."""
    monkeypatch.setenv("EVPKI_HOME", str(live_pki.settings.home))
    monkeypatch.setenv("EVPKI_DATABASE_URL", live_pki.settings.resolved_database_url)
    monkeypatch.setenv("EVPKI_KEY_PASSPHRASE", TEST_PASSPHRASE)
    identity, serial = "CS-FW-CLI", "SN-FW-CLI"
    credential = register(live_pki, tmp_path, identity, serial, "2.1")
    live_pki.station_calls.set_root_sync(identity, mode="off")
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(FIRMWARE)
    runner = CliRunner()
    config = BridgeConfig(
        port=0, basic_port=0, call_timeout=WAIT, call_poll_interval=0.02, certificate_dir=server_certificates
    )
    async with Bridge(live_pki, config) as bridge, connected(bridge, "2.1", identity, serial, credential) as station:
        args = ["station", "update-firmware", identity, "--firmware", str(firmware), "--location", LOCATION]
        result = await asyncio.to_thread(runner.invoke, cli_app, [*args, "--wait", "20s", "--json"])
        assert result.exit_code == 0, (result.stdout, result.stderr)
        call = json.loads(result.stdout)
        assert call["status"] == "accepted" and station.got("UpdateFirmware")[0]["requestId"] == call["id"]
        await wait_until(station.reported.is_set)
        await wait_until(
            lambda: len(live_pki.station_calls.notifications(identity, [call["id"]]).get(call["id"], [])) == 6
        )
    shown = runner.invoke(cli_app, ["station", "firmware-status", identity, "--json"])
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)[0]["outcome"] == "installed"
    table = runner.invoke(cli_app, ["station", "calls", identity])
    assert table.exit_code == 0 and "UpdateFirmware" in table.stdout
