"""OCPP 1.6 security (OCA test-case document) cases TC_073-TC_088 with the Central System under test: an
``ocpp`` 1.6 station over TLS to the module's bridge, the operator's steps through the REST API."""

from __future__ import annotations

from pathlib import Path

import pytest
import websockets
from ocpp.v16 import call as call16
from websockets.exceptions import InvalidStatus

from ocpp_bridge.gateway import Bridge
from tests.ocpp_bridge.conformance.octt import (
    FIRMWARE_CASES,
    OLD_PASSWORD,
    Api,
    enroll,
    now_text,
    octt_station,
    walk_client_certificate_valid,
    walk_delete,
    walk_firmware,
    walk_install_root,
    walk_password_update,
    walk_profile_upgrade,
    walk_renewal,
    walk_renewal_rejected,
    walk_tls_server_certificate,
)
from tests.ocpp_bridge.gateway_support import basic_auth, client_context, security_events, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")
V = "1.6"


async def test_tc_073_update_password_for_http_basic_auth(bridge: Bridge, api: Api) -> None:
    """TC_073: ChangeConfiguration(AuthorizationKey) → Accepted; the station reconnects with it."""
    await walk_password_update(bridge, api, V)


async def test_tc_074_sign_certificate_accepted_rsa_and_ecdsa(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_074: ExtendedTriggerMessage(SignChargePointCertificate) → SignCertificate → Accepted →
    CertificateSigned (no certificateType in 1.6) → Accepted → reconnect; once with an ECDSA key, once RSA."""
    for key_type in ("ec", "rsa"):
        await walk_renewal(
            bridge, api, tmp_path, f"074-{key_type}", V, "SignChargingStationCertificate", key_type=key_type
        )


async def test_tc_075_1_install_manufacturer_root_certificate(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_075_1: InstallCertificate(ManufacturerRootCertificate) → Accepted."""
    await walk_install_root(bridge, api, tmp_path, "075-1", V, "ManufacturerRootCertificate")


async def test_tc_075_2_install_central_system_root_certificate(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_075_2: InstallCertificate(CentralSystemRootCertificate) → Accepted."""
    await walk_install_root(bridge, api, tmp_path, "075-2", V, "CSMSRootCertificate")


async def test_tc_076_delete_a_specific_certificate(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_076: GetInstalledCertificateIds(ManufacturerRootCertificate) → the hash data → DeleteCertificate
    with exactly those (each hash algorithm) → Accepted."""
    await walk_delete(bridge, api, tmp_path, "076", V, "mf-root")


async def test_tc_077_invalid_charge_point_certificate_security_event(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_077: the station rejects the certificate it was sent and reports InvalidChargePointCertificate;
    the Central System confirms the event and records it (A04.FR.03), and keeps the old certificate."""
    await walk_renewal_rejected(bridge, api, tmp_path, "077", V, event="InvalidChargePointCertificate")


async def test_tc_078_invalid_central_system_certificate_security_event(bridge: Bridge, tmp_path: Path) -> None:
    """TC_078: the station reports InvalidCentralSystemCertificate; the Central System confirms and records it.

    Skipped: the station's failed TLS attempt against a server certificate it cannot validate (the
    station's step -- evpki only ever presents its valid certificate)."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, tmp_path, "078", V)
    async with octt_station(bridge, V, identity, serial, credential) as station:
        # 1. The station sends the event; 2. the Central System answers (an empty confirmation).
        notification = call16.SecurityEventNotification(
            type="InvalidCentralSystemCertificate", timestamp=now_text(), tech_info="server certificate expired"
        )
        assert await station.call(notification, suppress=False) is not None
    # 3. The event is in the audit log under the station.
    (event,) = security_events(pki, identity)
    assert (event["type"], event["tech_info"]) == ("InvalidCentralSystemCertificate", "server certificate expired")


async def test_tc_079_get_security_log(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_079: GetLog(SecurityLog) to the operator's URL → Accepted → LogStatusNotification Uploading,
    Uploaded, filed under the call (requestId = the call's id). Skipped: the upload itself (to the
    operator's server, not evpki)."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, tmp_path, "079", V)
    async with octt_station(bridge, V, identity, serial, credential) as station:
        # 1. The operator asks for the log; 2. the station receives GetLog and accepts.
        answer = await api.call(identity, "security-log", {"remoteLocation": "https://logs.example.com/up"})
        assert answer["status"] == "accepted" and answer["result"]["status"] == "Accepted"
        (get_log,) = station.got("GetLog")
        assert get_log == {
            "logType": "SecurityLog",
            "requestId": answer["id"],
            "log": {"remoteLocation": "https://logs.example.com/up"},
        }
        # 3. The station's LogStatusNotifications are recorded under the call.
        await wait_until(station.reported.is_set)
        await wait_until(
            lambda: len(pki.station_calls.notifications(identity, [answer["id"]]).get(answer["id"], [])) == 2
        )
    listed = await api.get(f"/api/v1/stations/{identity}/calls/{answer['id']}")
    assert [n["status"] for n in listed["notifications"]] == ["Uploading", "Uploaded"]


async def test_tc_080_secure_firmware_update(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_080: SignedUpdateFirmware with certificate and signature → Accepted → SignedFirmwareStatusNotification
    Downloading … Installed → FirmwareUpdated."""
    await walk_firmware(bridge, api, tmp_path, "080", V, **FIRMWARE_CASES["installed"])


async def test_tc_081_secure_firmware_update_invalid_signature(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_081: … Downloaded → InvalidSignature and the InvalidFirmwareSignature event; outcome failed."""
    await walk_firmware(bridge, api, tmp_path, "081", V, **FIRMWARE_CASES["invalid-signature"])


@pytest.mark.parametrize("listener", [None, "combined"])
async def test_tc_083_upgrade_security_profile_2_to_3(
    bridge: Bridge, api: Api, tmp_path: Path, listener: str | None
) -> None:
    """TC_083: ChangeConfiguration(SecurityProfile=3) → Accepted → the station reconnects on profile 3;
    profile 2 is refused from then on. Skipped: the station's own reboot (1.6 has no Reset in A05)."""
    await walk_profile_upgrade(bridge, api, tmp_path, V, listener)


async def test_tc_085_basic_authentication_valid(bridge: Bridge) -> None:
    """TC_085: profile 2, the right password → the upgrade succeeds and BootNotification is Accepted; a wrong
    one → 401 with a Basic challenge and a FailedToAuthenticateAtCsms event (A00.FR.201-206)."""
    pki = bridge.pki
    identity = "OCTT-085-16"
    pki.stations.add(identity=identity, serial="SN-085", security_profile=2, password=OLD_PASSWORD)
    pki.station_calls.set_root_sync(identity, mode="off")
    async with octt_station(bridge, V, identity, "-", password=OLD_PASSWORD):
        pass
    assert pki.stations.get(identity).ocpp_version == V
    with pytest.raises(InvalidStatus) as refused:
        async with octt_station(bridge, V, identity, "-", password="wrong-password-000000"):
            pass
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Basic")
    assert [e["type"] for e in security_events(pki, identity)] == ["FailedToAuthenticateAtCsms"]


async def test_tc_086_tls_server_certificate(bridge: Bridge) -> None:
    """TC_086: the server certificate and suites (as 2.0.1 TC_A_04), then a 1.6 BootNotification over it.

    Skipped: the whitepaper's tolerance of TLS 1.0/1.1 for legacy stations -- evpki serves TLS >= 1.2 only."""
    await walk_tls_server_certificate(bridge, V)


async def test_tc_087_tls_client_certificate(bridge: Bridge, tmp_path: Path) -> None:
    """TC_087: profile 3 with the Charge Point certificate: admitted, booted, recorded."""
    await walk_client_certificate_valid(bridge, tmp_path, "087", V)


async def test_tc_088_websocket_subprotocol(bridge: Bridge, tmp_path: Path) -> None:
    """TC_088: the station offers ocpp1.6 (among others) → the bridge answers ocpp1.6; none it speaks → 400."""
    pki = bridge.pki
    identity = "OCTT-088-16"
    pki.stations.add(identity=identity, serial="SN-088", security_profile=2, password=OLD_PASSWORD)
    url = f"wss://127.0.0.1:{bridge.ports['basic']}/{identity}"
    for offered in (["ocpp1.6"], ["ocpp1.6", "ocpp2.0.1"]):
        async with websockets.connect(
            url,
            subprotocols=offered,  # type: ignore[arg-type]
            ssl=client_context(pki),
            server_hostname="localhost",
            additional_headers=basic_auth(identity, OLD_PASSWORD),
        ) as connection:
            assert connection.subprotocol == "ocpp1.6"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(
            url,
            subprotocols=["ocpp1.5"],  # type: ignore[list-item]
            ssl=client_context(pki),
            server_hostname="localhost",
            additional_headers=basic_auth(identity, OLD_PASSWORD),
        ):
            pass
    assert refused.value.response.status_code == 400
