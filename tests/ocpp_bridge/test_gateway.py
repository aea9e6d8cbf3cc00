"""The gateway's doors: profile 3 admission (OCPP A00.FR.403-408), profile 2 Basic auth (A00.FR.201-206),
subprotocols, TLS parameters (A00.FR.416/421/424) and OCPP-J frame handling, over real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import websockets
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ocpp_bridge.gateway import Bridge, BridgeConfig, choose_subprotocol, identity_from_path
from pki import PKI, InvalidInput
from tests.conftest import ORG
from tests.ocpp_bridge.gateway_support import (
    TLS_REFUSED,
    WAIT,
    Credential,
    basic_auth,
    client_context,
    csr_pem,
    foreign_credential,
    issue_station_credential,
    security_events,
)

PASSWORD = "correct-horse-battery-1"


@pytest.fixture
def live_pki(fresh_pki: PKI) -> PKI:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    return fresh_pki


@pytest_asyncio.fixture
async def bridge(live_pki: PKI) -> AsyncIterator[Bridge]:
    async with Bridge(live_pki, BridgeConfig(port=0, basic_port=0, call_timeout=WAIT)) as running:
        yield running


@contextlib.asynccontextmanager
async def mtls(bridge: Bridge, identity: str, credential: Credential, subprotocol: str = "ocpp2.0.1") -> Any:
    async with websockets.connect(
        f"wss://127.0.0.1:{bridge.ports['mtls']}/ocpp/{identity}",
        subprotocols=[subprotocol],
        ssl=client_context(bridge.pki, credential),
        server_hostname="localhost",
        open_timeout=WAIT,
    ) as connection:
        yield connection


@contextlib.asynccontextmanager
async def basic(bridge: Bridge, identity: str, password: str, subprotocols: list[str] | None = None) -> Any:
    async with websockets.connect(
        f"wss://127.0.0.1:{bridge.ports['basic']}/{identity}",
        subprotocols=subprotocols or ["ocpp2.0.1"],
        ssl=client_context(bridge.pki),
        server_hostname="localhost",
        additional_headers=basic_auth(identity, password),
        open_timeout=WAIT,
    ) as connection:
        yield connection


async def exchange(connection: Any, message: list[Any]) -> list[Any]:
    await connection.send(json.dumps(message))
    return json.loads(await asyncio.wait_for(connection.recv(), WAIT))


def _station(pki: PKI, tmp_path: Path, identity: str, serial: str, **kwargs: Any) -> Credential:
    pki.stations.add(identity=identity, serial=serial, security_profile=3)
    return issue_station_credential(pki, tmp_path, identity, serial, validity=dt.timedelta(days=365), **kwargs)


# -- profile 3 ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_registered_station_with_its_certificate_is_admitted(bridge: Bridge, tmp_path: Path) -> None:
    credential = _station(bridge.pki, tmp_path, "CS-OK", "SN-OK-1")
    async with mtls(bridge, "CS-OK", credential) as connection:
        answer = await exchange(connection, [2, "1", "Heartbeat", {}])
        assert answer[:2] == [3, "1"] and "currentTime" in answer[2]
        assert bridge.pki.stations.get("CS-OK").ocpp_version == "2.0.1"
    assert security_events(bridge.pki, "CS-OK") == []


async def _refused(bridge: Bridge, identity: str, credential: Credential) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with mtls(bridge, identity, credential):
            pass
    return refused.value.response.status_code


@pytest.mark.asyncio
async def test_a_certificate_naming_another_serial_is_refused(bridge: Bridge, tmp_path: Path) -> None:
    _station(bridge.pki, tmp_path / "a", "CS-A", "SN-A-1")
    other = _station(bridge.pki, tmp_path / "b", "CS-B", "SN-B-1")
    assert await _refused(bridge, "CS-A", other) == 403  # A00.FR.405: CN must be CS-A's serial
    (event,) = security_events(bridge.pki, "CS-A")
    assert event["type"] == "InvalidChargingStationCertificate"  # A00.FR.408
    assert "SN-B-1" in event["tech_info"] and "SN-A-1" in event["tech_info"]


@pytest.mark.asyncio
async def test_a_certificate_of_another_station_with_the_same_serial_is_refused(bridge: Bridge, tmp_path: Path) -> None:
    _station(bridge.pki, tmp_path / "a", "CS-TWIN-A", "SN-TWIN")
    twin = _station(bridge.pki, tmp_path / "b", "CS-TWIN-B", "SN-TWIN")  # the registry allows equal serials
    assert await _refused(bridge, "CS-TWIN-A", twin) == 403  # A00.FR.427: one certificate per station
    (event,) = security_events(bridge.pki, "CS-TWIN-A")
    assert "CS-TWIN-B" in event["tech_info"]


@pytest.mark.asyncio
async def test_a_certificate_with_another_organisation_is_refused(
    bridge: Bridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential = _station(bridge.pki, tmp_path, "CS-O", "SN-O-1")
    # The CA issues only the CSO's O, so the CSO is renamed instead: O must equal the current name (A00.FR.404).
    from pki.runtime import Context

    monkeypatch.setattr(Context, "organization", lambda self, session: "Renamed CSO AG")
    assert await _refused(bridge, "CS-O", credential) == 403
    (event,) = security_events(bridge.pki, "CS-O")
    assert event["type"] == "InvalidChargingStationCertificate" and ORG in event["tech_info"]


@pytest.mark.parametrize("reason", ["keyCompromise", "certificateHold"])
@pytest.mark.asyncio
async def test_a_revoked_or_held_certificate_is_refused(bridge: Bridge, tmp_path: Path, reason: str) -> None:
    credential = _station(bridge.pki, tmp_path, "CS-R", "SN-R-1")
    bridge.pki.revocation.revoke(credential.serial, reason, ca_id="cso-sub")
    assert await _refused(bridge, "CS-R", credential) == 403  # A00.FR.702/705
    (event,) = security_events(bridge.pki, "CS-R")
    assert "revoked" in event["tech_info"] or "on-hold" in event["tech_info"]


@pytest.mark.asyncio
async def test_an_expired_certificate_passes_tls_but_is_refused_with_an_event(bridge: Bridge, tmp_path: Path) -> None:
    pki = bridge.pki
    pki.stations.add(identity="CS-E", serial="SN-E-1", security_profile=3)
    now = pki.clock.now()
    pki.clock.set(now - dt.timedelta(days=20))  # type: ignore[attr-defined]
    credential = issue_station_credential(pki, tmp_path, "CS-E", "SN-E-1", validity=dt.timedelta(days=10))
    pki.clock.set(now)  # type: ignore[attr-defined]
    assert credential.certificate.not_valid_after_utc < dt.datetime.now(dt.UTC)
    assert await _refused(bridge, "CS-E", credential) == 403
    (event,) = security_events(pki, "CS-E")
    assert "expired" in event["tech_info"]


@pytest.mark.asyncio
async def test_a_foreign_ca_certificate_fails_the_tls_handshake(bridge: Bridge, tmp_path: Path) -> None:
    bridge.pki.stations.add(identity="CS-F", serial="SN-F-1", security_profile=3)
    before = bridge.pki.audit.count()
    # A00.FR.403/407: the path check is OpenSSL's; the identity (in the URL) is never sent, so no
    # station can be blamed and no security event is recorded, only the TLS alert and a debug log.
    with pytest.raises(TLS_REFUSED):
        async with mtls(bridge, "CS-F", foreign_credential(tmp_path, "SN-F-1")) as connection:
            await exchange(connection, [2, "1", "Heartbeat", {}])
    assert bridge.pki.audit.count() == before


@pytest.mark.asyncio
async def test_no_client_certificate_fails_the_tls_handshake(bridge: Bridge) -> None:
    with pytest.raises(TLS_REFUSED):
        async with websockets.connect(
            f"wss://127.0.0.1:{bridge.ports['mtls']}/CS-X",
            subprotocols=["ocpp2.0.1"],
            ssl=client_context(bridge.pki),
            server_hostname="localhost",
        ) as connection:
            await exchange(connection, [2, "1", "Heartbeat", {}])


@pytest.mark.asyncio
async def test_unknown_disabled_and_profile_2_stations_are_refused_on_the_mtls_port(
    bridge: Bridge, tmp_path: Path
) -> None:
    pki = bridge.pki
    credential = _station(pki, tmp_path, "CS-D", "SN-D-1")
    pki.stations.set_status("CS-D", "disabled")
    assert await _refused(bridge, "CS-D", credential) == 403
    assert await _refused(bridge, "CS-UNKNOWN", credential) == 403
    pki.stations.add(identity="CS-P2", serial="SN-D-1", security_profile=2, password=PASSWORD)
    assert await _refused(bridge, "CS-P2", credential) == 403  # A00.FR.001/002: one profile per station
    assert {e["type"] for e in security_events(pki, "CS-P2")} == {"ConnectionRefused"}


@pytest.mark.asyncio
async def test_a_superseded_certificate_still_connects(bridge: Bridge, tmp_path: Path) -> None:
    """A02.FR.28: a station that cannot use its renewed certificate falls back to the previous one."""
    pki = bridge.pki
    old = _station(pki, tmp_path / "old", "CS-S", "SN-S-1")
    # Renewed through the core (A02) and accepted by the station: the old certificate is superseded.
    csr = csr_pem(ec.generate_private_key(ec.SECP256R1()), "SN-S-1")
    (signed,) = bridge.service.handle("2.0.1", "CS-S", "SignCertificate", {"csr": csr}).follow_ups
    bridge.service.record_result("2.0.1", "CS-S", signed, {"status": "Accepted"})
    assert pki.certificates.get(old.serial, "cso-sub").status == "superseded"
    async with mtls(bridge, "CS-S", old) as connection:
        assert (await exchange(connection, [2, "1", "Heartbeat", {}]))[0] == 3


# -- TLS parameters ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_server_certificates_are_reused_until_half_their_life(live_pki: PKI) -> None:
    config = BridgeConfig(port=0, basic_port=None)
    async with Bridge(live_pki, config) as first:
        serials = {kind: c.serial for kind, c in first.server_certificates.current.items()}
        assert set(serials) == {"ecdsa", "rsa"}
        assert oct(first.server_certificates.current["ecdsa"].key_path.stat().st_mode & 0o777) == "0o600"
    async with Bridge(live_pki, config) as second:
        assert {k: c.serial for k, c in second.server_certificates.current.items()} == serials
    live_pki.clock.advance(dt.timedelta(hours=13))  # type: ignore[attr-defined]
    try:
        async with Bridge(live_pki, config) as third:  # restarted past half-life: fresh certificates
            assert all(third.server_certificates.current[k].serial != s for k, s in serials.items())
    finally:
        live_pki.clock.advance(dt.timedelta(hours=-13))  # type: ignore[attr-defined]


# -- profile 2 ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_basic_auth_with_the_right_password_is_admitted(bridge: Bridge) -> None:
    bridge.pki.stations.add(identity="CS-B2", serial="SN-B2", security_profile=2, password=PASSWORD)
    async with basic(bridge, "CS-B2", PASSWORD, ["ocpp1.6"]) as connection:
        assert connection.subprotocol == "ocpp1.6"
        boot = await exchange(
            connection, [2, "b", "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}]
        )
        assert boot[2]["status"] == "Accepted" and boot[2]["interval"] == 300


@pytest.mark.asyncio
async def test_basic_auth_with_a_wrong_password_is_401_and_an_event(bridge: Bridge) -> None:
    bridge.pki.stations.add(identity="CS-B3", serial="SN-B3", security_profile=2, password=PASSWORD)
    with pytest.raises(InvalidStatus) as refused:
        async with basic(bridge, "CS-B3", "wrong-password-0000"):
            pass
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Basic")
    (event,) = security_events(bridge.pki, "CS-B3")
    assert event["type"] == "FailedToAuthenticateAtCsms" and PASSWORD not in json.dumps(event)


@pytest.mark.asyncio
async def test_a_profile_3_station_cannot_use_basic_auth(bridge: Bridge, tmp_path: Path) -> None:
    _station(bridge.pki, tmp_path, "CS-B4", "SN-B4")
    with pytest.raises(InvalidStatus) as refused:
        async with basic(bridge, "CS-B4", PASSWORD):
            pass
    assert refused.value.response.status_code == 401


@pytest.mark.asyncio
async def test_subprotocol_is_the_stations_preference_and_none_is_refused(bridge: Bridge) -> None:
    bridge.pki.stations.add(identity="CS-SP", serial="SN-SP", security_profile=2, password=PASSWORD)
    async with basic(bridge, "CS-SP", PASSWORD, ["ocpp2.0.1", "ocpp2.1", "ocpp1.6"]) as connection:
        assert connection.subprotocol == "ocpp2.0.1"
    with pytest.raises(InvalidStatus) as refused:
        async with basic(bridge, "CS-SP", PASSWORD, ["ocpp1.5", "wamp"]):
            pass
    assert refused.value.response.status_code == 400


# -- OCPP-J frames -------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def raw(bridge: Bridge) -> AsyncIterator[Any]:
    bridge.pki.stations.add(identity="CS-RAW", serial="SN-RAW", security_profile=2, password=PASSWORD)
    async with basic(bridge, "CS-RAW", PASSWORD) as connection:
        yield connection


@pytest.mark.asyncio
async def test_malformed_frames_get_rpc_framework_errors(raw: Any) -> None:
    await raw.send("not json")
    assert json.loads(await raw.recv())[:3] == [4, "-1", "RpcFrameworkError"]
    assert (await exchange(raw, [2, "x" * 37, "Heartbeat", {}]))[:3] == [4, "-1", "RpcFrameworkError"]
    assert (await exchange(raw, [7, "m7", "Heartbeat", {}]))[:3] == [4, "m7", "MessageTypeNotSupported"]
    assert (await exchange(raw, [2, "m8", "Heartbeat", []]))[:3] == [4, "m8", "RpcFrameworkError"]
    assert (await exchange(raw, [2, "m9", "Heartbeat", {}]))[:2] == [3, "m9"]  # still connected


@pytest.mark.asyncio
async def test_without_upstream_unknown_actions_are_not_implemented(raw: Any) -> None:
    answer = await exchange(raw, [2, "a1", "Authorize", {"idToken": {"idToken": "X", "type": "Central"}}])
    assert answer[:3] == [4, "a1", "NotSupported"]  # OCPP-J §4.2.3: a 2.0.1 action, not served standalone
    assert (await exchange(raw, [2, "a0", "NoSuchAction", {}]))[:3] == [4, "a0", "NotImplemented"]
    answer = await exchange(raw, [2, "a2", "StatusNotification", {"timestamp": "2026-01-01T00:00:00Z"}])
    assert answer[:2] == [4, "a2"] and answer[2] in ("ProtocolError", "OccurrenceConstraintViolation")
    status = {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    assert await exchange(raw, [2, "a3", "StatusNotification", status]) == [3, "a3", {}]


@pytest.mark.asyncio
async def test_an_oversized_frame_closes_with_1009(raw: Any) -> None:
    await raw.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "y" * 70_000}]))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(raw.recv(), WAIT)
    assert raw.close_code == 1009


@pytest.mark.asyncio
async def test_a_handler_failure_is_an_internal_error_not_a_closed_connection(
    raw: Any, bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(bridge.service, "handle", broken)
    event = {"type": "SettingSystemTime", "timestamp": "2026-01-01T00:00:00Z"}
    assert (await exchange(raw, [2, "e1", "SecurityEventNotification", event]))[:3] == [4, "e1", "InternalError"]
    assert (await exchange(raw, [2, "e2", "Heartbeat", {}]))[:2] == [3, "e2"]


# -- pure helpers ----------------------------------------------------------------------------------


def test_identity_is_the_last_percent_decoded_segment() -> None:
    assert identity_from_path("/ocpp/CS%2A01") == "CS*01"
    assert identity_from_path("/a/b/CS-1/?x=1") == "CS-1"
    for bad in ("/", "/ocpp/has%2Fslash", "/ocpp/" + "x" * 49):
        with pytest.raises(InvalidInput):
            identity_from_path(bad)


def test_subprotocol_choice_follows_the_station() -> None:
    assert choose_subprotocol(["ocpp1.6", "ocpp2.1"]) == "ocpp1.6"
    assert choose_subprotocol(["ocpp2.0", "ocpp2.0.1"]) == "ocpp2.0.1"
    assert choose_subprotocol([]) is None


async def _certificate_signed(connection: Any) -> list[Any]:
    while True:
        message = json.loads(await asyncio.wait_for(connection.recv(), WAIT))
        if message[0] == 2 and message[2] == "CertificateSigned":
            return message


@pytest.mark.asyncio
async def test_a_csr_right_after_accepting_a_certificate_is_a_new_request(raw: Any) -> None:
    """The station's frames take effect in order: its Accepted is recorded before its next CSR is handled."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]
    await raw.send(json.dumps([2, "s1", "SignCertificate", {"csr": csr_pem(keys[0], "SN-RAW")}]))
    first = await _certificate_signed(raw)
    # Accept and, in the same breath, ask again (a station renewing twice, or a bench).
    await raw.send(json.dumps([3, first[1], {"status": "Accepted"}]))
    await raw.send(json.dumps([2, "s2", "SignCertificate", {"csr": csr_pem(keys[1], "SN-RAW")}]))
    second = await _certificate_signed(raw)
    leaf = x509.load_pem_x509_certificates(second[3]["certificateChain"].encode())[0]
    assert leaf.public_key() == keys[1].public_key()
    await raw.send(json.dumps([3, second[1], {"status": "Accepted"}]))
