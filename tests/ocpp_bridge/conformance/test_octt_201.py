"""OCPP 2.0.1 Ed. 3 Part 6 cases with the CSMS under test that concern evpki: TC_A (security), TC_M
(certificate management), TC_L (secure firmware update). One ``ocpp`` 2.0.1 station per case over TLS to
the module's bridge; the CSMS-initiated steps are started through the operator's REST API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID
from ocpp.v201 import call as call201
from websockets.exceptions import InvalidStatus

from ocpp_bridge.gateway import Bridge
from pki import PKI
from pki.ca.policy import RequestIdentity
from pki.iso15118.exi import encode_fragment
from tests.interop import car
from tests.interop.conftest import exificient  # noqa: F401 -- the session's EXIficient oracle
from tests.interop.exificient import Exificient, element_from_json
from tests.ocpp_bridge.conformance.octt import (
    FIRMWARE_CASES,
    Api,
    enroll,
    hash_entry,
    octt_station,
    walk_client_certificate_valid,
    walk_delete,
    walk_firmware,
    walk_firmware_during_update,
    walk_install_root,
    walk_profile_upgrade,
    walk_renewal,
    walk_renewal_rejected,
    walk_retrieve,
    walk_tls_server_certificate,
)
from tests.ocpp_bridge.conftest import SECC_ID, secc_csr
from tests.ocpp_bridge.gateway_support import (
    client_context,
    foreign_credential,
    issue_station_credential,
    security_events,
)
from tests.ocpp_bridge.operator_stations import snake_hash
from tests.pki.iso15118.vehicles import make_car, new_emaid

pytestmark = pytest.mark.asyncio(loop_scope="module")
V = "2.0.1"
ISO2 = "urn:iso:15118:2:2013:MsgDef"


# -- A: security ---------------------------------------------------------------------------------------------


async def test_tc_a_04_tls_server_side_certificate_valid(bridge: Bridge) -> None:
    """TC_A_04: TLS 1.2 with each suite of A00.FR.421 (both server certificates), the certificate's
    properties, no compression, then the WebSocket upgrade and BootNotification (profile 2 listener)."""
    await walk_tls_server_certificate(bridge, V)


async def test_tc_a_06_tls_server_side_certificate_tls_version_too_low(bridge: Bridge) -> None:
    """TC_A_06: the station offers TLS 1.0/1.1 only; the bridge refuses the handshake (A00.FR.416) on both
    listeners."""
    context = client_context(bridge.pki)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # that is the point: TLS 1.0/1.1
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    for listener in ("basic", "mtls"):
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            await asyncio.open_connection("127.0.0.1", bridge.ports[listener], ssl=context, server_hostname="localhost")


async def test_tc_a_07_tls_client_side_certificate_valid(bridge: Bridge, tmp_path: Path) -> None:
    """TC_A_07: profile 3, the station's certificate of ours: admitted, booted, recorded."""
    await walk_client_certificate_valid(bridge, tmp_path, "A07", V)


async def test_tc_a_08_tls_client_side_certificate_invalid(bridge: Bridge, tmp_path: Path) -> None:
    """TC_A_08: an invalid client certificate terminates the connection (A00.FR.407), with the
    InvalidChargingStationCertificate security event where a station can be named (A00.FR.408)."""
    pki = bridge.pki
    identity, serial, _ = enroll(pki, tmp_path / "own", "A08", V)
    # 1. A certificate from a CA evpki does not know: the TLS handshake fails (A00.FR.403); the identity in
    #    the URL is never sent, so no station can be blamed.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, InvalidStatus, Exception)):
        async with octt_station(bridge, V, identity, serial, foreign_credential(tmp_path, serial)):
            pass
    # 2. A certificate of ours for another station's serial: HTTP 403 at the upgrade (A00.FR.405) ...
    _, other_serial, other = enroll(pki, tmp_path / "other", "A08-OTHER", V)
    with pytest.raises(InvalidStatus) as refused:
        async with octt_station(bridge, V, identity, serial, other):
            pass
    assert refused.value.response.status_code == 403
    # 3. ... and the security event naming both serials (A00.FR.408).
    (event,) = security_events(pki, identity)
    assert event["type"] == "InvalidChargingStationCertificate"
    assert other_serial in event["tech_info"] and serial in event["tech_info"]
    # 4. A revoked certificate of its own is refused too (A00.FR.702/705).
    revoked = issue_station_credential(pki, tmp_path / "revoked", identity, serial, name="revoked")
    pki.revocation.revoke(revoked.serial, "keyCompromise", ca_id="cso-sub")
    with pytest.raises(InvalidStatus) as refused:
        async with octt_station(bridge, V, identity, serial, revoked):
            pass
    assert refused.value.response.status_code == 403


async def test_tc_a_11_update_charging_station_certificate_by_request_of_csms(
    bridge: Bridge, api: Api, tmp_path: Path
) -> None:
    """TC_A_11: TriggerMessage(SignChargingStationCertificate) → SignCertificate → Accepted →
    CertificateSigned(ChargingStationCertificate) → Accepted → reconnect with the new certificate."""
    await walk_renewal(bridge, api, tmp_path, "A11", V, "SignChargingStationCertificate")


async def test_tc_a_12_update_v2g_certificate_by_request_of_csms(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_A_12: TriggerMessage(SignV2GCertificate) → SignCertificate(V2GCertificate, CN = SECC id) →
    Accepted → CertificateSigned(V2GCertificate) chaining to the V2G root → Accepted.

    Skipped: the GetReport of ISO15118Ctrlr.SeccId before the trigger (device model, not evpki's) -- the
    station's SECC id is given; there is no reconnect step (the V2G certificate is not the TLS client's).
    """
    await walk_renewal(bridge, api, tmp_path, "A12", V, "SignV2GCertificate")


async def test_tc_a_13_update_combined_certificate_by_request_of_csms(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_A_13: TriggerMessage(SignCombinedCertificate) → one SignCertificate for a certificate serving as both
    Charging Station and V2G certificate (A00.FR.428; its type is ChargingStationCertificate, CN = serial) →
    Accepted → CertificateSigned → Accepted → reconnect with it."""
    await walk_renewal(bridge, api, tmp_path, "A13", V, "SignCombinedCertificate")


async def test_tc_a_14_update_charging_station_certificate_invalid_certificate(
    bridge: Bridge, api: Api, tmp_path: Path
) -> None:
    """TC_A_14: the station rejects the CertificateSigned (and reports InvalidChargingStationCertificate,
    A02.FR.07); the CSMS must have answered the CSR Accepted, confirms the event, keeps the old certificate."""
    await walk_renewal_rejected(bridge, api, tmp_path, "A14", V, event="InvalidChargingStationCertificate")


@pytest.mark.parametrize("listener", [None, "combined"])
async def test_tc_a_19_upgrade_charging_station_security_profile_accepted(
    bridge: Bridge, api: Api, tmp_path: Path, listener: str | None
) -> None:
    """TC_A_19: SetNetworkProfile(slot, securityProfile 3) → Accepted → SetVariables(NetworkConfigurationPriority
    = slot first) → Accepted → Reset(OnIdle) → the station reconnects on profile 3; profile 2 is refused from
    then on -- with a listener per profile, and one for both."""
    await walk_profile_upgrade(bridge, api, tmp_path, V, listener)


# -- M: certificate management --------------------------------------------------------------------------------


async def test_tc_m_01_install_ca_certificate_csms_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_01: InstallCertificate(CSMSRootCertificate) → Accepted."""
    await walk_install_root(bridge, api, tmp_path, "M01", V, "CSMSRootCertificate")


async def test_tc_m_02_install_ca_certificate_manufacturer_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_02: InstallCertificate(ManufacturerRootCertificate) → Accepted."""
    await walk_install_root(bridge, api, tmp_path, "M02", V, "ManufacturerRootCertificate")


async def test_tc_m_03_install_ca_certificate_v2g_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_03: InstallCertificate(V2GRootCertificate) → Accepted."""
    await walk_install_root(bridge, api, tmp_path, "M03", V, "V2GRootCertificate")


async def test_tc_m_04_install_ca_certificate_mo_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_04: InstallCertificate(MORootCertificate) → Accepted."""
    await walk_install_root(bridge, api, tmp_path, "M04", V, "MORootCertificate")


async def test_tc_m_05_install_ca_certificate_failed(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_05: InstallCertificate → the station answers Failed; evpki records the call as failed."""
    await walk_install_root(bridge, api, tmp_path, "M05", V, "CSMSRootCertificate", "Failed")


def _inventory(pki: PKI) -> dict[str, tuple[str, dict[str, str], list[dict[str, str]]]]:
    """What a station has installed, one entry per type, as it reports them (SHA-256)."""
    entries: dict[str, tuple[str, dict[str, str], list[dict[str, str]]]] = {}
    for use in ("CSMSRootCertificate", "ManufacturerRootCertificate", "V2GRootCertificate", "MORootCertificate"):
        (root,) = pki.cas.roots(use)
        entries[use] = (use, hash_entry(root, root), [])
    issued = pki.certificates.issue(
        profile="secc", csr=secc_csr(), identity=RequestIdentity(station_id="OCTT-M15", secc_id=SECC_ID)
    )
    leaf, *subs = x509.load_pem_x509_certificates(issued.chain_pem.encode())
    (v2g_root,) = pki.cas.roots("V2GRootCertificate")
    issuers = [*subs, v2g_root]
    # M03.FR.05: the V2G leaf is the parent entry, its sub-CAs the children.
    children = [hash_entry(sub, issuer) for sub, issuer in zip(subs, issuers[1:], strict=True)]
    entries["V2GCertificateChain"] = ("V2GCertificateChain", hash_entry(leaf, issuers[0]), children)
    return entries


async def _retrieve(bridge: Bridge, api: Api, directory: Path, case: str, asked: list[str]) -> dict[str, object]:
    """The station holds every type and reports those asked (M03.FR.01)."""
    return await walk_retrieve(bridge, api, directory, case, V, asked, list(_inventory(bridge.pki).values()))


async def test_tc_m_12_retrieve_certificates_csms_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_12: GetInstalledCertificateIds(CSMSRootCertificate) → Accepted with its hash data."""
    await _retrieve(bridge, api, tmp_path, "M12", ["CSMSRootCertificate"])


async def test_tc_m_13_retrieve_certificates_manufacturer_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_13: GetInstalledCertificateIds(ManufacturerRootCertificate) → Accepted with its hash data."""
    await _retrieve(bridge, api, tmp_path, "M13", ["ManufacturerRootCertificate"])


async def test_tc_m_14_retrieve_certificates_v2g_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_14: GetInstalledCertificateIds(V2GRootCertificate) → Accepted with its hash data."""
    await _retrieve(bridge, api, tmp_path, "M14", ["V2GRootCertificate"])


async def test_tc_m_15_retrieve_certificates_v2g_certificate_chain(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_15: GetInstalledCertificateIds(V2GCertificateChain) → the V2G leaf with its sub-CAs as
    childCertificateHashData (M03.FR.05), kept as reported."""
    result = await _retrieve(bridge, api, tmp_path, "M15", ["V2GCertificateChain"])
    (entry,) = result["certificateHashDataChain"]  # type: ignore[misc]
    assert len(entry["childCertificateHashData"]) == 2


async def test_tc_m_16_retrieve_certificates_mo_root(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_16: GetInstalledCertificateIds(MORootCertificate) → Accepted with its hash data."""
    await _retrieve(bridge, api, tmp_path, "M16", ["MORootCertificate"])


async def test_tc_m_17_retrieve_certificates_csms_root_and_manufacturer_root(
    bridge: Bridge, api: Api, tmp_path: Path
) -> None:
    """TC_M_17: two types in one request → both reported, nothing else."""
    await _retrieve(bridge, api, tmp_path, "M17", ["CSMSRootCertificate", "ManufacturerRootCertificate"])


async def test_tc_m_18_retrieve_certificates_all_certificate_types(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_18: GetInstalledCertificateIds without certificateType → every type (M03.FR.02)."""
    result = await walk_retrieve(bridge, api, tmp_path, "M18", V, [], list(_inventory(bridge.pki).values()))
    assert len(result["certificateHashDataChain"]) == 5


async def test_tc_m_19_retrieve_certificates_no_matching_certificate_found(
    bridge: Bridge, api: Api, tmp_path: Path
) -> None:
    """TC_M_19: the station holds none of the type asked → NotFound without hash data (pitfall P-7)."""
    installed = [_inventory(bridge.pki)["CSMSRootCertificate"]]
    await walk_retrieve(bridge, api, tmp_path, "M19", V, ["MORootCertificate"], installed)


async def test_tc_m_20_delete_certificate_success(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_20: GetInstalledCertificateIds, then DeleteCertificate with the hash data as reported, for
    SHA256, SHA384 and SHA512 (M04.FR.07) → Accepted."""
    await walk_delete(bridge, api, tmp_path, "M20", V, "mf-root")


async def test_tc_m_21_delete_certificate_failed(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_M_21: as TC_M_20, the station answers Failed; evpki records the call as failed."""
    await walk_delete(bridge, api, tmp_path, "M21", V, "cso-root", "Failed")


async def test_tc_m_24_get_charging_station_certificate_status(bridge: Bridge, tmp_path: Path) -> None:
    """TC_M_24: GetCertificateStatus for the station's V2G certificate → Accepted with ocspResult = Base64 of
    the DER OCSPResponse (M06.FR.08/09) for exactly that CertID, good, signed by the issuer's responder."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, tmp_path, "M24", V)
    issued = pki.certificates.issue(
        profile="secc", csr=secc_csr(), identity=RequestIdentity(station_id=identity, secc_id=SECC_ID)
    )
    leaf, issuer = x509.load_pem_x509_certificates(issued.chain_pem.encode())[:2]
    access = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    url = next(d.access_location.value for d in access if d.access_method == AuthorityInformationAccessOID.OCSP)
    request = {**snake_hash(hash_entry(leaf, issuer)), "responder_url": url}
    async with octt_station(bridge, V, identity, serial, credential) as station:
        # 1. The station asks with the CertID of its leaf and the responder URL from its AIA.
        answer = await station.call(call201.GetCertificateStatus(ocsp_request_data=request), suppress=False)
    # 2. Accepted, with Base64(DER(OCSPResponse)) -- not PEM, not the bare BasicOCSPResponse.
    assert answer.status == "Accepted"
    response = ocsp.load_der_ocsp_response(base64.b64decode(answer.ocsp_result, validate=True))
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    # 3. For exactly the certificate asked about, and good.
    assert response.serial_number == leaf.serial_number
    assert response.issuer_key_hash.hex().upper() == request["issuer_key_hash"].upper()
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    # 4. Signed by the issuer or its delegated responder.
    signer = response.certificates[0] if response.certificates else issuer
    if signer is not issuer:
        signer.verify_directly_issued_by(issuer)
    key = signer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _root_ids(pki: PKI) -> list[tuple[str, int]]:
    return [(root.issuer.rfc4514_string(), root.serial_number) for root in pki.cas.roots("V2GRootCertificate")]


async def _ev_certificate(station: Any, action: str, exi: bytes) -> Any:
    request = call201.Get15118EVCertificate(
        iso15118_schema_version=ISO2, action=action, exi_request=base64.b64encode(exi).decode()
    )
    return await station.call(request, suppress=False)


async def _install_contract(
    bridge: Bridge, station: Any, oracle: Exificient, session: bytes
) -> tuple[str, car.CarResult]:
    pki = bridge.pki
    vehicle = make_car(pki)
    emaid = new_emaid()
    pki.contracts.add(emaid=emaid, pcid=vehicle.pcid)
    exi = car.build_installation_request(oracle, _der(vehicle.certificate), vehicle.key, _root_ids(pki), session)
    # 1. The station relays the EV's CertificateInstallationReq as Base64 EXI.
    answer = await _ev_certificate(station, "Install", exi)
    # 2. Accepted, with the Base64 EXI CertificateInstallationRes the independent car opens.
    return emaid, _opened(pki, oracle, answer, vehicle.key, session, "CertificateInstallationRes")


def _opened(pki: PKI, oracle: Exificient, answer: Any, key: Any, session: bytes, body: str) -> car.CarResult:
    """The car's reading of an Accepted answer: the EXI decodes, signatures and chains verify, the key opens."""
    assert answer.status == "Accepted"
    return car.open_response(
        oracle,
        base64.b64decode(answer.exi_response),
        key,
        session,
        sa_roots=pki.cas.roots("V2GRootCertificate"),
        contract_roots=[pki.cas.chain("mo-sub2")[-1]],
        expected_body=body,
    )


async def test_tc_m_26_certificate_installation_ev(
    bridge: Bridge,
    tmp_path: Path,
    exificient: Exificient,  # noqa: F811
) -> None:
    """TC_M_26: Get15118EVCertificate(Install) → Accepted with the contract for the EV's PCID (M01.FR.01).

    Skipped: the ISO 15118 exchange between EV and station (the station's); evpki answers from its own
    contract store here (a contract certificate pool upstream is the same relay)."""
    identity, serial, credential = enroll(bridge.pki, tmp_path, "M26", V)
    async with octt_station(bridge, V, identity, serial, credential) as station:
        emaid, installed = await _install_contract(bridge, station, exificient, bytes.fromhex("DEADBEEF00112233"))
    # 3. The contract certificate carries the EV's eMAID and chains to the MO root.
    assert installed.emaid == emaid


async def test_tc_m_28_certificate_update_ev(
    bridge: Bridge,
    tmp_path: Path,
    exificient: Exificient,  # noqa: F811
) -> None:
    """TC_M_28: Get15118EVCertificate(Update) with the EV's current contract → Accepted with a renewed one
    (M02.FR.01). Precondition (installing the first contract) through TC_M_26's steps."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, tmp_path, "M28", V)
    async with octt_station(bridge, V, identity, serial, credential) as station:
        emaid, installed = await _install_contract(bridge, station, exificient, bytes.fromhex("0102030405060708"))
        chain = [installed.contract_certificate, *installed.contract_sub_certificates]
        exi = car.build_update_request(
            exificient,
            [_der(c) for c in chain],
            installed.contract_private_key,
            emaid,
            _root_ids(pki),
            b"\x07",
            fragment_encoder=lambda fragment: encode_fragment(element_from_json(dict(fragment))),
        )
        # 1. The station relays the EV's CertificateUpdateReq.
        answer = await _ev_certificate(station, "Update", exi)
    # 2. Accepted, with a CertificateUpdateRes the car opens: 3. same eMAID, a new certificate.
    renewed = _opened(pki, exificient, answer, installed.contract_private_key, b"\x07", "CertificateUpdateRes")
    assert renewed.emaid == emaid
    assert renewed.contract_certificate.serial_number != installed.contract_certificate.serial_number


# -- L: secure firmware update --------------------------------------------------------------------------------


async def test_tc_l_01_secure_firmware_update_installation_successful(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_01: UpdateFirmware with signing certificate and signature (L01.FR.11) → Accepted → Downloading …
    Installed under its requestId (L01.FR.01/10) → FirmwareUpdated (L01.FR.31). Skipped: a reboot before
    Installed (InstallRebooting, L01.FR.15) is the station's; evpki records whatever statuses come."""
    await walk_firmware(bridge, api, tmp_path, "L01", V, **FIRMWARE_CASES["installed"])


async def test_tc_l_02_secure_firmware_update_install_scheduled(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_02: with installDateTime; the station reports InstallScheduled before Installing."""
    await walk_firmware(bridge, api, tmp_path, "L02", V, **FIRMWARE_CASES["install-scheduled"])


async def test_tc_l_03_secure_firmware_update_download_scheduled(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_03: with a future retrieveDateTime; the station reports DownloadScheduled first."""
    await walk_firmware(bridge, api, tmp_path, "L03", V, **FIRMWARE_CASES["download-scheduled"])


async def test_tc_l_04_secure_firmware_update_revoked_certificate(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_04: the station finds the signing certificate revoked → RevokedCertificate and the
    InvalidFirmwareSigningCertificate event (L01.FR.22); evpki's outcome: refused."""
    await walk_firmware(bridge, api, tmp_path, "L04", V, **FIRMWARE_CASES["revoked-certificate"])


async def test_tc_l_05_secure_firmware_update_invalid_certificate(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_05: the station refuses the signing certificate → InvalidCertificate and the
    InvalidFirmwareSigningCertificate event (L01.FR.02/21); outcome: refused."""
    await walk_firmware(bridge, api, tmp_path, "L05", V, **FIRMWARE_CASES["invalid-certificate"])


async def test_tc_l_06_secure_firmware_update_invalid_signature(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_06: after download, InvalidSignature and the InvalidFirmwareSignature event (L01.FR.03)."""
    await walk_firmware(bridge, api, tmp_path, "L06", V, **FIRMWARE_CASES["invalid-signature"])


async def test_tc_l_07_secure_firmware_update_download_failed(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_07: Downloading → DownloadFailed; outcome: failed."""
    await walk_firmware(bridge, api, tmp_path, "L07", V, **FIRMWARE_CASES["download-failed"])


async def test_tc_l_08_secure_firmware_update_install_verification_failed(
    bridge: Bridge, api: Api, tmp_path: Path
) -> None:
    """TC_L_08: … Installing → InstallVerificationFailed; outcome: failed."""
    await walk_firmware(bridge, api, tmp_path, "L08", V, **FIRMWARE_CASES["install-verification-failed"])


async def test_tc_l_09_secure_firmware_update_installation_failed(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_09: … Installing → InstallationFailed; outcome: failed."""
    await walk_firmware(bridge, api, tmp_path, "L09", V, **FIRMWARE_CASES["installation-failed"])


async def test_tc_l_10_secure_firmware_update_accepted_canceled(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_10: a second update while the first downloads → AcceptedCanceled (L01.FR.24) → the second's
    statuses through Installed. evpki shows the first as superseded, the second as installed."""
    first, second = await walk_firmware_during_update(bridge, api, tmp_path, "L10", V, "AcceptedCanceled")
    assert (first["outcome"], second["outcome"]) == ("superseded", "installed")
    assert f"update {second['requestId']}" in first["reason"] and "FirmwareUpdated" in second["reason"]


async def test_tc_l_11_secure_firmware_update_unable_to_cancel(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_11: a second update while the first installs → Rejected (L01.FR.27); the first goes on to
    Installed and FirmwareUpdated, which evpki files under it, not under the refused one."""
    first, second = await walk_firmware_during_update(bridge, api, tmp_path, "L11", V, "Rejected")
    assert (first["outcome"], second["outcome"]) == ("installed", "refused")
    assert "FirmwareUpdated" in first["reason"] and "FirmwareUpdated" not in second["reason"]


async def test_tc_l_13_secure_firmware_update_ongoing_transaction(bridge: Bridge, api: Api, tmp_path: Path) -> None:
    """TC_L_13: AllowNewSessionsPendingFirmwareUpdate=false, a transaction is ongoing: the station accepts,
    downloads and verifies, waits with InstallScheduled until the transaction ends, then installs.

    Skipped: the transaction (TransactionEvent Started/Ended) and the device-model variable -- evpki owns
    neither; the CSMS's steps (the signed request, the statuses recorded in order) are asserted."""
    await walk_firmware(bridge, api, tmp_path, "L13", V, **FIRMWARE_CASES["waits-for-transaction"])
