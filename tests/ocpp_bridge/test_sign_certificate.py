"""SignCertificate (OCPP A02/A03) per version: issuance, refusals with a reason, CSR dedup, and what
the station's CertificateSigned answer does to the certificates."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ocpp_bridge.core import CertificateService
from pki import PKI
from pki.store.repository import CertificateFilter
from tests.conftest import requires_openssl, run_openssl
from tests.ocpp_bridge.conftest import SECC_ID, chain_of, secc_csr, station_csr


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_a_csr_is_accepted_and_the_certificate_follows(
    service: CertificateService, station: tuple[str, str], version: str
) -> None:
    identity, serial = station
    handled = service.handle(version, identity, "SignCertificate", {"csr": station_csr(serial)})
    assert handled.response == {"status": "Accepted"}
    (follow_up,) = handled.follow_ups
    assert follow_up.action == "CertificateSigned" and follow_up.delivery_id is not None
    if version == "1.6":
        assert set(follow_up.payload) == {"certificateChain"}
    else:
        assert follow_up.payload["certificateType"] == "ChargingStationCertificate"  # A02.FR.14
    leaf, sub = chain_of(follow_up)
    assert leaf.subject.rfc4514_string().startswith(f"CN={serial}")
    assert sub.subject == service.pki.cas.chain("cso-sub")[0].subject  # leaf first, no root
    assert follow_up.to_json()["deliveryId"] == follow_up.delivery_id


@requires_openssl
def test_the_chain_verifies_against_the_csms_root_with_openssl(
    service: CertificateService, station: tuple[str, str], tmp_path: object
) -> None:
    identity, serial = station
    (follow_up,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
    root = tmp_path / "root.pem"  # type: ignore[operator]
    chain = tmp_path / "chain.pem"  # type: ignore[operator]
    root.write_text("".join(p for p in _pems(service.pki.cas.roots("CSMSRootCertificate"))))
    chain.write_text(follow_up.payload["certificateChain"])
    leaf = tmp_path / "leaf.pem"  # type: ignore[operator]
    leaf.write_text(
        follow_up.payload["certificateChain"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )
    result = run_openssl("verify", "-CAfile", str(root), "-untrusted", str(chain), "-attime", _now(service), str(leaf))
    assert result.returncode == 0, result.stderr


def _now(service: CertificateService) -> str:
    return str(int(service.pki.clock.now().timestamp()))


def _pems(certificates: list) -> list[str]:  # type: ignore[type-arg]
    from pki.runtime.views import pem

    return [pem(c) for c in certificates]


def test_2_1_echoes_request_id_and_type(service: CertificateService, station: tuple[str, str]) -> None:
    identity, serial = station
    csr = station_csr(serial)
    handled = service.handle("2.1", identity, "SignCertificate", {"csr": csr, "requestId": 42})
    (follow_up,) = handled.follow_ups
    assert follow_up.payload["requestId"] == 42
    # A re-sent CSR (new requestId) gets the same certificate, with its own requestId.
    again = service.handle("2.1", identity, "SignCertificate", {"csr": csr, "requestId": 43})
    assert again.follow_ups[0].payload["requestId"] == 43
    assert again.follow_ups[0].delivery_id == follow_up.delivery_id
    assert again.follow_ups[0].payload["certificateChain"] == follow_up.payload["certificateChain"]


def test_a_resent_csr_gets_no_second_certificate(service: CertificateService, station: tuple[str, str]) -> None:
    identity, serial = station
    csr = station_csr(serial)
    first = service.handle("2.0.1", identity, "SignCertificate", {"csr": csr})
    second = service.handle("2.0.1", identity, "SignCertificate", {"csr": csr})
    assert second.response == {"status": "Accepted"}
    assert second.follow_ups == first.follow_ups
    assert len(service.pki.certificates.list(CertificateFilter(identity=identity, profile="station"))) == 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown-station", "UnknownStation"),
        ("disabled-station", "StationDisabled"),
        ("wrong-cn", "PolicyViolation"),
        ("wrong-o", "PolicyViolation"),
        ("weak-key", "PolicyViolation"),
        ("not-a-csr", "InvalidCSR"),
    ],
)
def test_refusals_are_rejected_with_a_reason(
    service: CertificateService, station: tuple[str, str], case: str, reason: str
) -> None:
    identity, serial = station
    csr = station_csr(serial)
    if case == "unknown-station":
        identity = "CS-NOBODY"
    elif case == "disabled-station":
        service.pki.stations.set_status(identity, "disabled")
    elif case == "wrong-cn":
        csr = station_csr("SN-OTHER")
    elif case == "wrong-o":
        csr = station_csr(serial, organization="Evil Corp")
    elif case == "weak-key":
        csr = station_csr(serial, key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    else:
        csr = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    handled = service.handle("2.0.1", identity, "SignCertificate", {"csr": csr})
    assert handled.response["status"] == "Rejected"
    assert handled.response["statusInfo"]["reasonCode"] == reason
    assert handled.response["statusInfo"]["additionalInfo"]
    assert handled.follow_ups == ()  # never Accepted followed by silence
    if case == "weak-key":
        assert "rsa" in handled.response["statusInfo"]["additionalInfo"].lower()
    # 1.6 has no statusInfo: the bare status.
    assert service.handle("1.6", identity, "SignCertificate", {"csr": csr}).response == {"status": "Rejected"}


def test_v2g_csr_is_an_secc_certificate_and_v2g20_is_refused(
    service: CertificateService, station: tuple[str, str]
) -> None:
    identity, _ = station
    handled = service.handle(
        "2.0.1", identity, "SignCertificate", {"csr": secc_csr(), "certificateType": "V2GCertificate"}
    )
    assert handled.response == {"status": "Accepted"}
    (follow_up,) = handled.follow_ups
    assert follow_up.payload["certificateType"] == "V2GCertificate"
    leaf, *subs = chain_of(follow_up)
    assert SECC_ID in leaf.subject.rfc4514_string() and len(subs) == 2  # CPO Sub-CA 2, CPO Sub-CA 1
    refused = service.handle(
        "2.1", identity, "SignCertificate", {"csr": secc_csr(), "certificateType": "V2G20Certificate"}
    )
    assert refused.response["status"] == "Rejected" and refused.response["statusInfo"]["reasonCode"] == "NotSupported"


def test_2_1_hash_root_certificate_must_name_our_v2g_root(
    service: CertificateService, station: tuple[str, str]
) -> None:
    from ocpp_bridge.status import cert_id_of

    identity, _ = station
    root = service.pki.cas.roots("V2GRootCertificate")[0]
    good = cert_id_of(root, root, "SHA384")
    payload = {"csr": secc_csr(), "certificateType": "V2GCertificate", "hashRootCertificate": good}
    assert service.handle("2.1", identity, "SignCertificate", payload).response == {"status": "Accepted"}
    other = service.pki.cas.roots("MORootCertificate")[0]
    payload["hashRootCertificate"] = cert_id_of(other, other)
    refused = service.handle("2.1", identity, "SignCertificate", payload).response
    assert refused["status"] == "Rejected" and refused["statusInfo"]["reasonCode"] == "UnknownRoot"


def test_accepted_result_supersedes_and_rejected_result_revokes(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, serial = station
    (first,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
    assert service.record_result("2.0.1", identity, first, {"status": "Accepted"}) == ()
    old_serial = fresh_pki.deliveries.get(first.delivery_id).certificate_serial  # type: ignore[arg-type]
    (second,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
    assert second.delivery_id != first.delivery_id
    service.record_result("2.0.1", identity, second, {"status": "Accepted"})
    new_serial = fresh_pki.deliveries.get(second.delivery_id).certificate_serial  # type: ignore[arg-type]
    assert fresh_pki.certificates.get(old_serial, "cso-sub").superseded_by == new_serial  # type: ignore[arg-type]
    assert fresh_pki.deliveries.pending(identity) == []
    (third,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
    service.record_result(
        "2.0.1", identity, third, {"status": "Rejected", "statusInfo": {"reasonCode": "InvalidCertificate"}}
    )
    rejected = fresh_pki.certificates.get(fresh_pki.deliveries.get(third.delivery_id).certificate_serial, "cso-sub")  # type: ignore[arg-type]
    assert rejected.status == "revoked" and rejected.revocation_reason == "superseded"
    assert fresh_pki.certificates.get(new_serial, "cso-sub").status == "valid"  # type: ignore[arg-type]


def test_an_error_keeps_the_delivery_pending_for_the_next_boot(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, serial = station
    (follow_up,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
    service.record_error("2.0.1", identity, follow_up, "Timeout", "no answer")
    assert fresh_pki.deliveries.get(follow_up.delivery_id).attempts == 1  # type: ignore[arg-type]
    boot = service.on_boot("2.0.1", identity)
    assert boot[0] == follow_up
    assert boot[-1].action == "GetInstalledCertificateIds"
    assert json.dumps(boot[-1].payload)  # plain JSON
