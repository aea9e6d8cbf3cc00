"""Root reconciliation (M03/M04/M05), renewal triggers (A02), superseded revocation on reconnect,
Get15118EVCertificate (local and contract pool), SecurityEventNotification."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from cryptography import x509

from ocpp_bridge.core import CertificateService, FollowUp
from ocpp_bridge.pool import ContractPool
from ocpp_bridge.status import cert_id_of
from pki import PKI
from pki.runtime.views import pem
from tests.ocpp_bridge.conftest import secc_csr, station_csr

USES = ["CSMSRootCertificate", "V2GRootCertificate", "MORootCertificate", "ManufacturerRootCertificate"]


def _inventory(service: CertificateService, version: str, identity: str) -> FollowUp:
    (follow_up,) = [f for f in service.on_boot(version, identity) if f.action == "GetInstalledCertificateIds"][-1:]
    return follow_up


def test_boot_asks_for_every_root_type(service: CertificateService, station: tuple[str, str]) -> None:
    identity, _ = station
    assert _inventory(service, "2.0.1", identity).payload == {"certificateType": USES}
    assert _inventory(service, "2.1", identity).payload == {"certificateType": [*USES, "OEMRootCertificate"]}
    boot16 = service.on_boot("1.6", identity)
    assert [f.payload for f in boot16] == [
        {"certificateType": "CentralSystemRootCertificate"},
        {"certificateType": "ManufacturerRootCertificate"},
    ]


def test_missing_roots_are_installed_once(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, _ = station
    inventory = _inventory(service, "2.0.1", identity)
    installs = service.record_result("2.0.1", identity, inventory, {"status": "NotFound"})
    assert [(f.action, f.payload["certificateType"]) for f in installs] == [("InstallCertificate", use) for use in USES]
    assert all(f.delivery_id is not None for f in installs)
    assert installs[0].payload["certificate"] == pem(fresh_pki.cas.roots("CSMSRootCertificate")[0])
    again = service.record_result("2.0.1", identity, inventory, {"status": "NotFound"})
    assert [f.delivery_id for f in again] == [f.delivery_id for f in installs]  # one pending delivery per root
    for follow_up in installs:
        assert service.record_result("2.0.1", identity, follow_up, {"status": "Accepted"}) == ()
    assert fresh_pki.deliveries.pending(identity) == []


def test_installed_roots_match_whatever_hash_the_station_uses(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, _ = station
    chain = []
    for use, algorithm in zip(USES, ["SHA256", "SHA384", "SHA512", "SHA256"], strict=True):
        root = fresh_pki.cas.roots(use)[0]
        data = cert_id_of(root, root, algorithm)
        data["issuerNameHash"] = data["issuerNameHash"].upper()  # identifierString: case-insensitive
        chain.append({"certificateType": use, "certificateHashData": data})
    foreign = {"hashAlgorithm": "SHA256", "issuerNameHash": "ab" * 32, "issuerKeyHash": "cd" * 32, "serialNumber": "1"}
    chain.append({"certificateType": "CSMSRootCertificate", "certificateHashData": foreign})
    response = {"status": "Accepted", "certificateHashDataChain": chain}
    assert service.record_result("2.0.1", identity, _inventory(service, "2.0.1", identity), response) == ()


def test_a_revoked_root_of_ours_is_deleted_with_the_stations_hash(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, _ = station
    mo_root = fresh_pki.cas.roots("MORootCertificate")[0]
    reported = cert_id_of(mo_root, mo_root, "SHA384")
    fresh_pki.revocation.revoke(format(mo_root.serial_number, "X"), "cACompromise", ca_id="mo-root")
    response = {
        "status": "Accepted",
        "certificateHashDataChain": [{"certificateType": "MORootCertificate", "certificateHashData": reported}],
    }
    inventory = FollowUp("GetInstalledCertificateIds", {"certificateType": ["MORootCertificate"]})
    (delete,) = service.record_result("2.0.1", identity, inventory, response)
    assert delete.action == "DeleteCertificate"
    assert delete.payload == {"certificateHashData": reported}  # M04.FR.07: SHA384 as reported
    assert service.record_result("2.0.1", identity, delete, {"status": "NotFound"}) == ()
    assert fresh_pki.deliveries.get(delete.delivery_id).status == "accepted"  # type: ignore[arg-type]


def test_1_6_reconciliation_installs_the_central_system_root(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, _ = station
    first = service.on_boot("1.6", identity)[0]
    (install,) = service.record_result("1.6", identity, first, {"status": "NotFound"})
    assert install.payload == {
        "certificateType": "CentralSystemRootCertificate",
        "certificate": pem(fresh_pki.cas.roots("CSMSRootCertificate")[0]),
    }


def test_renewal_is_triggered_within_the_threshold_and_not_while_pending(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, serial = station
    assert service.renewal_due("2.0.1", identity) == ()  # no certificate of ours yet
    (signed,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
    service.record_result("2.0.1", identity, signed, {"status": "Accepted"})
    (secc,) = service.handle(
        "2.0.1", identity, "SignCertificate", {"csr": secc_csr(), "certificateType": "V2GCertificate"}
    ).follow_ups
    service.record_result("2.0.1", identity, secc, {"status": "Accepted"})
    assert service.renewal_due("2.0.1", identity) == ()
    fresh_pki.clock.advance(dt.timedelta(days=31))  # type: ignore[attr-defined]  # SECC: 60 days, renew 30 before
    (v2g,) = service.renewal_due("2.0.1", identity)
    assert v2g.payload == {"requestedMessage": "SignV2GCertificate"}
    fresh_pki.clock.advance(dt.timedelta(days=310))  # type: ignore[attr-defined]  # station: one year
    due = service.renewal_due("2.0.1", identity)
    assert [f.payload["requestedMessage"] for f in due] == ["SignChargingStationCertificate", "SignV2GCertificate"]
    assert service.renewal_due("1.6", identity)[0] == FollowUp(
        "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
    )
    wrapped = service.renewal_due("1.6", identity)[1]
    assert wrapped.action == "DataTransfer" and json.loads(wrapped.payload["data"]) == {
        "requestedMessage": "SignV2GCertificate"
    }
    service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)})  # renewal under way
    assert [f.payload["requestedMessage"] for f in service.renewal_due("2.0.1", identity)] == ["SignV2GCertificate"]


def test_reconnecting_with_the_new_certificate_revokes_the_superseded_one(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, serial = station
    certificates = []
    for _ in range(2):
        (signed,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
        service.record_result("2.0.1", identity, signed, {"status": "Accepted"})
        certificates.append(x509.load_pem_x509_certificates(signed.payload["certificateChain"].encode())[0])
    old, new = certificates
    service.on_connected("2.0.1", identity, new)  # the setting is off: nothing revoked
    assert fresh_pki.certificates.get(format(old.serial_number, "X"), "cso-sub").status == "superseded"
    assert fresh_pki.stations.get(identity).ocpp_version == "2.0.1"
    fresh_pki.settings.ocpp_revoke_superseded = True
    service.on_connected("2.0.1", identity, old)  # still on the old one: keep it
    assert fresh_pki.certificates.get(format(old.serial_number, "X"), "cso-sub").status == "superseded"
    service.on_connected("2.0.1", identity, new)
    revoked = fresh_pki.certificates.get(format(old.serial_number, "X"), "cso-sub")
    assert (revoked.status, revoked.revocation_reason) == ("revoked", "superseded")
    assert fresh_pki.certificates.get(format(new.serial_number, "X"), "cso-sub").status == "valid"


def test_get_15118_ev_certificate_locally_always_has_an_exi_response(service: CertificateService) -> None:
    payload = {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "AAAA"}
    for version in ("2.0.1", "2.1"):
        response = service.handle(version, "CS-X", "Get15118EVCertificate", payload).response
        assert response["status"] in ("Accepted", "Failed") and "exiResponse" in response


def test_get_15118_ev_certificate_through_a_contract_pool(fresh_pki: PKI) -> None:
    seen: list[httpx.Request] = []

    def pool(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        if body["certificateInstallationReq"] == "FAIL":
            return httpx.Response(500)
        answer = {"CCPResponse": {"emaidContent": [{"messageDef": {"certificateInstallationRes": "RVhJ"}}]}}
        return httpx.Response(200, json=answer)

    contract_pool = ContractPool("https://ccp.example/", "secret", transport=httpx.MockTransport(pool))
    service = CertificateService(fresh_pki, contract_pool=contract_pool)
    payload = {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "UkVR"}
    assert service.handle("2.0.1", "CS-X", "Get15118EVCertificate", payload).response == {
        "status": "Accepted",
        "exiResponse": "RVhJ",
    }
    assert str(seen[0].url) == "https://ccp.example/v1/ccp/signedContractData"
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert json.loads(seen[0].content) == {
        "certificateInstallationReq": "UkVR",
        "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
    }
    failed = service.handle("2.1", "CS-X", "Get15118EVCertificate", {**payload, "exiRequest": "FAIL"}).response
    assert failed["status"] == "Failed" and failed["exiResponse"] == ""  # pitfall P-10
    assert failed["statusInfo"]["reasonCode"] == "PoolError"


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_security_events_are_confirmed_and_audited(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str], version: str
) -> None:
    identity, _ = station
    payload = {"type": "InvalidChargingStationCertificate", "timestamp": "2026-01-15T12:00:00Z", "techInfo": "x"}
    assert service.handle(version, identity, "SecurityEventNotification", payload).response == {}
    (record,) = fresh_pki.audit.records(action="security-event", limit=1000)
    assert json.loads(record.details)["station"] == identity
