"""Certificate lifecycle: issue, renew, revoke (RFC 5280 §5.3.1 reasons), hold and release, CRLs, lookup.

Most tests share one module-scoped PKI with a fixed clock: they only add certificates with
identities of their own. Tests that move the clock put it back; tests that revoke a CA use
a PKI (MO, OEM) no other test here issues from.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from pki import PKI, Conflict, InvalidInput, NotFound, PolicyViolation, RequestIdentity
from pki.ca.authority import BACKDATE
from pki.core.clock import FixedClock
from pki.revocation.reasons import RevocationReason
from pki.runtime.views import CertificateView
from pki.store.repository import CertificateFilter
from tests.conftest import make_csr, requires_openssl, run_openssl
from tests.pki.builders import open_pki


@pytest.fixture(scope="module")
def lpki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    with open_pki(tmp_path_factory.mktemp("lifecycle")) as instance:
        yield instance


def _clock(pki: PKI) -> FixedClock:
    clock = pki.clock
    assert isinstance(clock, FixedClock)
    return clock


def _station_id() -> str:
    return f"CP{uuid.uuid4().hex[:10].upper()}"


def _issue_station(
    pki: PKI, station_id: str | None = None, *, key: object | None = None, validity: dt.timedelta | None = None
) -> CertificateView:
    station_id = station_id or _station_id()
    csr, _ = make_csr(station_id, key=key)
    return pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id), validity=validity
    ).certificate


def _crl_serials(pki: PKI, ca_id: str) -> dict[int, x509.RevokedCertificate]:
    crl = x509.load_der_x509_crl(pki.crls.latest(ca_id).der)
    return {entry.serial_number: entry for entry in crl}


# -- renewal ---------------------------------------------------------------------------------------


def test_renewal_marks_previous_certificate_superseded_but_not_revoked(lpki: PKI) -> None:
    station_id = _station_id()
    old = _issue_station(lpki, station_id)
    csr, _ = make_csr(station_id)
    lpki.certificates.renew(csr=csr, identity=RequestIdentity(station_id=station_id))
    after = lpki.certificates.get(old.serial, "cso-sub")
    assert after.status == "superseded"
    assert (after.revoked_at, after.revocation_reason) == (None, None)
    assert int(old.serial, 16) not in _crl_after_generation(lpki, "cso-sub")


def _crl_after_generation(pki: PKI, ca_id: str) -> dict[int, x509.RevokedCertificate]:
    pki.crls.generate(ca_id)
    return _crl_serials(pki, ca_id)


def test_renewal_reports_the_successor_serial_on_the_old_certificate(lpki: PKI) -> None:
    station_id = _station_id()
    old = _issue_station(lpki, station_id)
    csr, _ = make_csr(station_id)
    new = lpki.certificates.renew(csr=csr, identity=RequestIdentity(station_id=station_id)).certificate
    assert lpki.certificates.get(old.serial, "cso-sub").superseded_by == new.serial
    assert new.status == "valid"


def test_renewal_keeps_the_station_serial_of_the_replaced_certificate(lpki: PKI) -> None:
    station_id, serial = _station_id(), _station_id()
    csr, _ = make_csr(serial)
    lpki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id, station_serial=serial)
    )
    renewal_csr, _ = make_csr(serial)
    new = lpki.certificates.renew(csr=renewal_csr, identity=RequestIdentity(station_id=station_id)).certificate
    assert (new.identity, new.station_serial) == (station_id, serial)


def test_renewal_with_the_current_key_is_a_conflict(lpki: PKI) -> None:
    station_id = _station_id()
    key = ec.generate_private_key(ec.SECP256R1())
    old = _issue_station(lpki, station_id, key=key)
    csr, _ = make_csr(station_id, key=key)
    count = lpki.audit.count()
    with pytest.raises(Conflict):
        lpki.certificates.renew(csr=csr, identity=RequestIdentity(station_id=station_id))
    assert lpki.audit.count() == count
    assert lpki.certificates.get(old.serial, "cso-sub").status == "valid"


def test_renewal_of_an_unknown_station_is_not_found(lpki: PKI) -> None:
    station_id = _station_id()
    csr, _ = make_csr(station_id)
    with pytest.raises(NotFound):
        lpki.certificates.renew(csr=csr, identity=RequestIdentity(station_id=station_id))


# -- revocation ------------------------------------------------------------------------------------

_REASON_SPELLINGS = [(reason.value, reason) for reason in RevocationReason] + [
    ("key-compromise", RevocationReason.KEY_COMPROMISE),
    ("KEY_COMPROMISE", RevocationReason.KEY_COMPROMISE),
    ("cessation-of-operation", RevocationReason.CESSATION_OF_OPERATION),
]


@pytest.mark.parametrize(("spelling", "reason"), _REASON_SPELLINGS, ids=[s for s, _ in _REASON_SPELLINGS])
def test_revoke_accepts_each_rfc5280_reason_name(lpki: PKI, spelling: str, reason: RevocationReason) -> None:
    issued = _issue_station(lpki)
    view = lpki.revocation.revoke(issued.serial, spelling, ca_id="cso-sub")
    assert view.revocation_reason == reason.value
    assert view.status == ("on-hold" if reason is RevocationReason.CERTIFICATE_HOLD else "revoked")
    assert view.revoked_at == lpki.clock.now()


def test_revoke_with_an_unknown_reason_is_invalid_input(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    with pytest.raises(InvalidInput):
        lpki.revocation.revoke(issued.serial, "removeFromCRL", ca_id="cso-sub")
    assert lpki.certificates.get(issued.serial, "cso-sub").status == "valid"


def test_revoking_twice_is_a_conflict(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    lpki.revocation.revoke(issued.serial, "keyCompromise", ca_id="cso-sub")
    with pytest.raises(Conflict):
        lpki.revocation.revoke(issued.serial, "superseded", ca_id="cso-sub")
    assert lpki.certificates.get(issued.serial, "cso-sub").revocation_reason == "keyCompromise"


def test_holding_twice_is_a_conflict(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    lpki.revocation.revoke(issued.serial, "certificateHold", ca_id="cso-sub")
    with pytest.raises(Conflict):
        lpki.revocation.revoke(issued.serial, "certificateHold", ca_id="cso-sub")


def test_held_certificate_is_listed_in_the_crl_with_reason_hold(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    lpki.revocation.revoke(issued.serial, "certificateHold", ca_id="cso-sub")
    entry = _crl_after_generation(lpki, "cso-sub")[int(issued.serial, 16)]
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.certificate_hold


def test_released_hold_is_valid_again_and_absent_from_the_next_crl(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    lpki.revocation.revoke(issued.serial, "certificateHold", ca_id="cso-sub")
    view = lpki.revocation.release_hold(issued.serial, ca_id="cso-sub")
    assert (view.status, view.revoked_at, view.revocation_reason) == ("valid", None, None)
    assert int(issued.serial, 16) not in _crl_after_generation(lpki, "cso-sub")


def test_release_of_a_certificate_not_on_hold_is_a_conflict(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    with pytest.raises(Conflict):
        lpki.revocation.release_hold(issued.serial, ca_id="cso-sub")


def test_hold_may_be_made_final_and_keeps_the_hold_time(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    held_at = lpki.clock.now()
    lpki.revocation.revoke(issued.serial, "certificateHold", ca_id="cso-sub")
    _clock(lpki).advance(dt.timedelta(hours=1))
    view = lpki.revocation.revoke(issued.serial, "keyCompromise", ca_id="cso-sub")
    assert (view.status, view.revocation_reason, view.revoked_at) == ("revoked", "keyCompromise", held_at)
    entry = _crl_after_generation(lpki, "cso-sub")[int(issued.serial, 16)]
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise


def test_revoked_certificate_is_listed_in_the_crl(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    lpki.revocation.revoke(issued.serial, "affiliationChanged", ca_id="cso-sub")
    entry = _crl_after_generation(lpki, "cso-sub")[int(issued.serial, 16)]
    assert entry.revocation_date_utc == lpki.clock.now()


# -- CRLs ------------------------------------------------------------------------------------------


def test_crl_numbers_strictly_increase(lpki: PKI) -> None:
    numbers = [lpki.crls.generate("mf-root").number for _ in range(3)]
    assert numbers == sorted(set(numbers))
    crl = x509.load_der_x509_crl(lpki.crls.latest("mf-root").der)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == numbers[-1]


def test_crl_numbers_are_per_ca(lpki: PKI) -> None:
    first = lpki.crls.generate("cps-sub2").number
    lpki.crls.generate("cpo-sub2")
    assert lpki.crls.generate("cps-sub2").number == first + 1


def test_crl_next_update_is_configurable(lpki: PKI) -> None:
    view = lpki.crls.generate("cso-root", next_update=dt.timedelta(hours=12))
    crl = x509.load_der_x509_crl(view.der)
    assert crl.next_update_utc == lpki.clock.now() + dt.timedelta(hours=12)
    assert view.next_update == crl.next_update_utc


def test_crl_next_update_defaults_to_the_setting(lpki: PKI) -> None:
    crl = x509.load_der_x509_crl(lpki.crls.generate("cso-root").der)
    assert crl.next_update_utc - crl.last_update_utc == lpki.settings.crl_next_update


def test_latest_crl_before_any_is_not_found(lpki: PKI) -> None:
    with pytest.raises(NotFound):
        lpki.crls.latest("oem-root")


# -- validity window and serials -----------------------------------------------------------------


def test_not_before_is_back_dated_five_minutes(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    assert dt.timedelta(minutes=5) == BACKDATE
    assert issued.not_before == lpki.clock.now() - BACKDATE
    certificate = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    assert certificate.not_valid_before_utc == issued.not_before


def test_validity_is_capped_at_the_issuers_not_after(lpki: PKI) -> None:
    clock = _clock(lpki)
    issuer_not_after = lpki.cas.get("cso-sub").not_after
    start = clock.now()
    clock.set(issuer_not_after - dt.timedelta(days=30))
    try:
        issued = _issue_station(lpki)  # default validity: one year
    finally:
        clock.set(start)
    assert issued.not_after == issuer_not_after
    certificate = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    assert certificate.not_valid_after_utc == issuer_not_after


def test_an_expired_ca_cannot_issue(lpki: PKI) -> None:
    clock = _clock(lpki)
    start = clock.now()
    clock.set(lpki.cas.get("cso-sub").not_after + dt.timedelta(seconds=1))
    try:
        with pytest.raises(PolicyViolation) as caught:
            _issue_station(lpki)
    finally:
        clock.set(start)
    assert caught.value.rule == "issuer.expired"


def test_serials_are_positive_at_least_64_bits_at_most_20_octets_and_unique(lpki: PKI) -> None:
    serials = [int(_issue_station(lpki).serial, 16) for _ in range(25)]
    assert len(set(serials)) == len(serials)
    for serial in serials:
        assert serial > 0
        assert 64 <= serial.bit_length() <= 159  # 20 octets, top bit clear (RFC 5280 §4.1.2.2)


# -- revoked issuers -----------------------------------------------------------------------------


def test_a_ca_whose_certificate_is_revoked_cannot_issue(lpki: PKI) -> None:
    # Only this test issues contract certificates in this module.
    lpki.revocation.revoke(lpki.cas.get("mo-sub2").serial, "cACompromise", ca_id="mo-sub1")
    csr, _ = make_csr("DEABC123456789", organization=None, dc="MO")
    count = lpki.audit.count()
    with pytest.raises(PolicyViolation) as caught:
        lpki.certificates.issue(profile="contract", csr=csr, identity=RequestIdentity(emaid="DEABC123456789"))
    assert caught.value.rule == "issuer.revoked"
    assert lpki.audit.count() == count


def test_a_ca_whose_parent_is_on_hold_cannot_issue_until_released(lpki: PKI) -> None:
    # Only this test issues OEM provisioning certificates in this module.
    pcid = "WMI12345678901234"
    csr, _ = make_csr(pcid, organization=None, dc="OEM")
    lpki.revocation.revoke(lpki.cas.get("oem-sub1").serial, "certificateHold", ca_id="oem-root")
    with pytest.raises(PolicyViolation) as caught:
        lpki.certificates.issue(profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=pcid))
    assert caught.value.rule == "issuer.revoked"
    lpki.revocation.release_hold(lpki.cas.get("oem-sub1").serial, ca_id="oem-root")
    assert lpki.certificates.issue(profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=pcid)).certificate


# -- listing ---------------------------------------------------------------------------------------


def _serials(pki: PKI, flt: CertificateFilter) -> set[str]:
    return {view.serial for view in pki.certificates.list(flt)}


def test_listing_filters_by_status(lpki: PKI) -> None:
    valid, revoked, held = _issue_station(lpki), _issue_station(lpki), _issue_station(lpki)
    lpki.revocation.revoke(revoked.serial, "keyCompromise", ca_id="cso-sub")
    lpki.revocation.revoke(held.serial, "certificateHold", ca_id="cso-sub")
    assert {valid.serial, revoked.serial, held.serial} & _serials(lpki, CertificateFilter(status="valid")) == {
        valid.serial
    }
    assert revoked.serial in _serials(lpki, CertificateFilter(status="revoked"))
    assert held.serial in _serials(lpki, CertificateFilter(status="on-hold"))
    assert all(v.status == "revoked" for v in lpki.certificates.list(CertificateFilter(status="revoked")))


def test_listing_filters_superseded_certificates(lpki: PKI) -> None:
    station_id = _station_id()
    old = _issue_station(lpki, station_id)
    csr, _ = make_csr(station_id)
    new = lpki.certificates.renew(csr=csr, identity=RequestIdentity(station_id=station_id)).certificate
    superseded = _serials(lpki, CertificateFilter(status="superseded"))
    assert old.serial in superseded
    assert new.serial not in superseded


def test_listing_filters_expired_certificates(lpki: PKI) -> None:
    issued = _issue_station(lpki, validity=dt.timedelta(days=1))
    clock = _clock(lpki)
    clock.advance(dt.timedelta(days=2))
    try:
        assert issued.serial in _serials(lpki, CertificateFilter(status="expired"))
        assert lpki.certificates.get(issued.serial, "cso-sub").status == "expired"
    finally:
        clock.advance(-dt.timedelta(days=2))


def test_listing_with_an_unknown_status_is_invalid_input(lpki: PKI) -> None:
    with pytest.raises(InvalidInput):
        lpki.certificates.list(CertificateFilter(status="sleeping"))


def test_listing_filters_by_ca(lpki: PKI) -> None:
    views = lpki.certificates.list(CertificateFilter(ca_id="cso-sub"))
    assert views
    assert {v.issuer_id for v in views} == {"cso-sub"}


def test_listing_filters_by_identity_and_by_station_serial(lpki: PKI) -> None:
    station_id, serial = _station_id(), _station_id()
    csr, _ = make_csr(serial)
    issued = lpki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id, station_serial=serial)
    ).certificate
    assert _serials(lpki, CertificateFilter(identity=station_id)) == {issued.serial}
    assert _serials(lpki, CertificateFilter(identity=serial)) == {issued.serial}


def test_listing_filters_by_expiry(lpki: PKI) -> None:
    soon = _issue_station(lpki, validity=dt.timedelta(days=10))
    later = _issue_station(lpki, validity=dt.timedelta(days=300))
    revoked_soon = _issue_station(lpki, validity=dt.timedelta(days=10))
    lpki.revocation.revoke(revoked_soon.serial, "keyCompromise", ca_id="cso-sub")
    found = _serials(lpki, CertificateFilter(expiring_before=lpki.clock.now() + dt.timedelta(days=20)))
    assert soon.serial in found
    assert later.serial not in found
    assert revoked_soon.serial not in found


# -- lookup ----------------------------------------------------------------------------------------


def test_lookup_by_serial_in_any_case_and_with_leading_zeros(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    for key in (issued.serial, issued.serial.lower(), "00" + issued.serial, "0x" + issued.serial.lower()):
        assert lpki.certificates.get(key).sha256 == issued.sha256


@requires_openssl
def test_lookup_by_serial_as_openssl_prints_it(lpki: PKI, tmp_path: Path) -> None:
    issued = _issue_station(lpki)
    path = tmp_path / "leaf.pem"
    path.write_text(issued.certificate_pem)
    printed = run_openssl("x509", "-in", str(path), "-noout", "-serial").stdout.strip()
    assert printed.startswith("serial=")
    assert lpki.certificates.get(printed.removeprefix("serial=")).sha256 == issued.sha256


def test_lookup_by_sha256_fingerprint(lpki: PKI) -> None:
    issued = _issue_station(lpki)
    colon_form = ":".join(issued.sha256[i : i + 2] for i in range(0, 64, 2)).upper()  # openssl -fingerprint
    for key in (issued.sha256, issued.sha256.upper(), colon_form):
        assert lpki.certificates.get(key).serial == issued.serial


def test_lookup_of_an_unknown_serial_is_not_found(lpki: PKI) -> None:
    with pytest.raises(NotFound):
        lpki.certificates.get("DEADBEEF")


def test_lookup_of_non_hex_is_invalid_input(lpki: PKI) -> None:
    with pytest.raises(InvalidInput):
        lpki.certificates.get("not-a-serial")


def test_listing_by_expiry_leaves_out_superseded_certificates(lpki: PKI) -> None:
    station_id = _station_id()
    old = _issue_station(lpki, station_id, validity=dt.timedelta(days=10))
    csr, _ = make_csr(station_id)
    lpki.certificates.renew(csr=csr, identity=RequestIdentity(station_id=station_id), validity=dt.timedelta(days=300))
    found = _serials(lpki, CertificateFilter(expiring_before=lpki.clock.now() + dt.timedelta(days=20)))
    assert old.serial not in found
