"""The station registry and OCPP deliveries: identity ↔ serial, Basic-auth passwords, CSR de-duplication,
and what a station's answer does to the certificate it was offered."""

from __future__ import annotations

import itertools

import pytest
from cryptography import x509

from pki import PKI, Conflict, InvalidInput, NotFound
from pki.store.repository import CertificateFilter
from tests.conftest import ORG, make_csr

_numbers = itertools.count(1)
TOPIC = "CertificateSigned:ChargingStationCertificate"


def _station(pki: PKI, **kwargs: object) -> tuple[str, str]:
    n = next(_numbers)
    identity, serial = f"CP-{n:04d}", f"SN-{n:04d}"
    pki.stations.add(identity=identity, serial=serial, **kwargs)  # type: ignore[arg-type]
    return identity, serial


def _offer(pki: PKI, identity: str, serial: str, csr: str | None = None):  # type: ignore[no-untyped-def]
    csr = csr or make_csr(serial, organization=ORG)[0]
    return pki.deliveries.issue_for_station(
        station=identity, profile="station", csr=csr, topic=TOPIC, payload_for=lambda chain: {"certificateChain": chain}
    )


def test_a_station_is_registered_once_with_a_valid_identity(pki: PKI) -> None:
    identity, serial = _station(pki)
    view = pki.stations.get(identity)
    assert (view.serial, view.security_profile, view.has_password, view.status) == (serial, 3, False, "active")
    with pytest.raises(Conflict):
        pki.stations.add(identity=identity, serial="OTHER")
    for bad in ("", "a/b", "x" * 49, "with space"):
        with pytest.raises(InvalidInput):
            pki.stations.add(identity=bad, serial="SN")
    with pytest.raises(InvalidInput, match="password"):
        pki.stations.add(identity="CP-NOPASS", serial="SN", security_profile=2)
    with pytest.raises(NotFound):
        pki.stations.get("CP-UNKNOWN")


def test_basic_auth_passwords_are_checked_against_a_hash(pki: PKI) -> None:
    identity, _ = _station(pki, security_profile=2, password="correct horse battery")
    assert pki.stations.check_password(identity, "correct horse battery") is not None
    assert pki.stations.check_password(identity, "wrong horse battery!") is None
    assert pki.stations.check_password("CP-NOBODY", "correct horse battery") is None
    pki.stations.set_status(identity, "disabled")
    assert pki.stations.check_password(identity, "correct horse battery") is None
    with pytest.raises(InvalidInput, match="16-40"):
        pki.stations.set_password(identity, "short")
    records = pki.audit.records(action="station-add", limit=1000) + pki.audit.records(action="station-password")
    assert records and "correct horse" not in str(records)


def test_a_resent_csr_gets_the_pending_certificate_not_a_second_one(pki: PKI) -> None:
    identity, serial = _station(pki)
    csr, _ = make_csr(serial, organization=ORG)
    first, new = _offer(pki, identity, serial, csr)
    again, new_again = _offer(pki, identity, serial, csr)
    assert new and not new_again and again.id == first.id
    assert len(pki.certificates.list(CertificateFilter(identity=identity))) == 1
    chain = x509.load_pem_x509_certificates(first.payload["certificateChain"].encode())
    assert chain[0].subject.rfc4514_string() == f"CN={serial},O={ORG}"
    assert [c.subject for c in chain[1:]] == [pki.cas.chain("cso-sub")[0].subject]  # no root
    assert [d.id for d in pki.deliveries.pending(identity)] == [first.id]


def test_acceptance_supersedes_the_previous_certificate(pki: PKI) -> None:
    identity, serial = _station(pki)
    old, _ = _offer(pki, identity, serial)
    pki.deliveries.record_result(old.id, {"status": "Accepted"})
    new, _ = _offer(pki, identity, serial)
    assert pki.certificates.get(old.certificate_serial, "cso-sub").superseded_by is None  # not before acceptance
    closed = pki.deliveries.record_result(new.id, {"status": "Accepted"})
    assert closed.status == "accepted" and closed.result == {"status": "Accepted"}
    assert pki.certificates.get(old.certificate_serial, "cso-sub").superseded_by == new.certificate_serial
    assert pki.deliveries.pending(identity) == []
    late = pki.deliveries.record_result(new.id, {"status": "Rejected"})  # a late answer changes nothing
    assert late.status == "accepted" and pki.certificates.get(new.certificate_serial, "cso-sub").status == "valid"


def test_a_rejected_certificate_is_revoked(pki: PKI) -> None:
    identity, serial = _station(pki)
    offered, _ = _offer(pki, identity, serial)
    closed = pki.deliveries.record_result(offered.id, {"status": "Rejected", "statusInfo": {"reasonCode": "Bad"}})
    assert closed.status == "rejected"
    view = pki.certificates.get(offered.certificate_serial, "cso-sub")
    assert (view.status, view.revocation_reason) == ("revoked", "superseded")


def test_a_disabled_or_unknown_station_gets_nothing(pki: PKI) -> None:
    identity, serial = _station(pki)
    pki.stations.set_status(identity, "disabled")
    with pytest.raises(Conflict, match="disabled"):
        _offer(pki, identity, serial)
    with pytest.raises(NotFound):
        _offer(pki, "CP-NOBODY", "SN-NOBODY")


def test_a_csr_for_another_serial_is_refused_and_nothing_is_pending(pki: PKI) -> None:
    from pki import PolicyViolation

    identity, _ = _station(pki)
    with pytest.raises(PolicyViolation):
        _offer(pki, identity, "SN-SOMEONE-ELSE")
    assert pki.deliveries.pending(identity) == []


def test_other_deliveries_are_superseded_by_a_newer_one_on_the_same_topic(pki: PKI) -> None:
    identity, _ = _station(pki)
    first = pki.deliveries.create(station=identity, action="InstallCertificate", topic="roots", payload={"a": 1})
    second = pki.deliveries.create(station=identity, action="InstallCertificate", topic="roots", payload={"a": 2})
    assert pki.deliveries.get(first.id).status == "superseded"
    assert [d.id for d in pki.deliveries.pending(identity)] == [second.id]
    pki.deliveries.mark_sent(second.id)
    assert pki.deliveries.get(second.id).attempts == 1
    gone = pki.deliveries.create(station=identity, action="DeleteCertificate", topic="delete", payload={})
    assert pki.deliveries.record_result(gone.id, {"status": "NotFound"}).status == "accepted"


def test_a_csr_for_a_new_key_replaces_the_pending_certificate_and_revokes_it(pki: PKI) -> None:
    identity, serial = _station(pki)
    first, _ = _offer(pki, identity, serial)
    audit_before = len(pki.audit.records(limit=100000))
    second, new = _offer(pki, identity, serial)  # another key: the pending certificate was never installed
    assert new and second.id != first.id
    assert pki.deliveries.get(first.id).status == "superseded"
    old = pki.certificates.get(first.certificate_serial, "cso-sub")  # type: ignore[arg-type]
    assert (old.status, old.revocation_reason) == ("revoked", "superseded")
    assert pki.certificates.get(second.certificate_serial, "cso-sub").status == "valid"  # type: ignore[arg-type]
    assert [d.id for d in pki.deliveries.pending(identity)] == [second.id]
    actions = [r.action for r in pki.audit.records(limit=100000)[audit_before:]]
    assert sorted(a for a in actions if "crl" not in a) == ["issue", "revoke"]  # and the CRLs republished
    crl = x509.load_der_x509_crl(pki.crls.current("cso-sub").der)
    assert crl.get_revoked_certificate_by_serial_number(int(first.certificate_serial, 16)) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        ("other-serial", "station.cn-serial"),
        ("bad-signature", "csr.proof-of-possession"),
        ("weak-key", "key.rsa-min-bits"),
    ],
)
def test_a_refused_csr_leaves_the_pending_delivery_as_it_was(pki: PKI, case: str, rule: str) -> None:
    from pki import PolicyViolation
    from tests.conftest import TEST_CERTS

    identity, serial = _station(pki)
    pending, _ = _offer(pki, identity, serial)
    if case == "other-serial":
        csr = make_csr("SOMEONE-ELSE", organization=ORG)[0]
    elif case == "bad-signature":
        csr = (TEST_CERTS / "csr" / "bad-signature.csr.pem").read_text()
    else:
        csr = (TEST_CERTS / "csr" / "rsa1024.csr.pem").read_text()
    audit_before = len(pki.audit.records(limit=100000))
    with pytest.raises(PolicyViolation) as refused:
        _offer(pki, identity, serial, csr)
    assert refused.value.rule == rule
    assert pki.deliveries.get(pending.id) == pending
    assert pki.certificates.get(pending.certificate_serial, "cso-sub").status == "valid"  # type: ignore[arg-type]
    assert len(pki.audit.records(limit=100000)) == audit_before


def test_the_same_csr_sent_at_once_gets_one_certificate(pki: PKI) -> None:
    from concurrent.futures import ThreadPoolExecutor

    identity, serial = _station(pki)
    csr, _ = make_csr(serial, organization=ORG)
    with ThreadPoolExecutor(4) as pool:
        offers = list(pool.map(lambda _: _offer(pki, identity, serial, csr)[0], range(4)))
    assert len({offer.id for offer in offers}) == 1
    assert [c.status for c in pki.certificates.list(CertificateFilter(identity=identity))] == ["valid"]
