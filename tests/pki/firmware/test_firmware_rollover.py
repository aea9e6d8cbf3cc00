"""Firmware signing across a rollover of ``mf-root`` (OCPP L01 with M03-M05 root reconciliation).

The rollover gives ``mf-root-2`` a firmware signer of its own; ``sign_firmware`` uses the newest
valid signer; a signature by the old signer verifies while ``mf-root`` is valid and not revoked
(stations in the field still hold only the old ManufacturerRootCertificate), and no longer once it
is revoked, when signing carries on with the new signer. OpenSSL checks the new signatures and the
new signer's certificate against the new root.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from pki import PKI, InvalidInput, PolicyViolation
from pki.core.clock import FixedClock
from pki.core.errors import VerificationFailed
from pki.firmware.payloads import FirmwareSignature
from pki.runtime.views import pem
from tests.conftest import requires_openssl, run_openssl
from tests.interop.test_firmware_openssl import write_signature_files
from tests.pki.firmware.test_firmware import FIRMWARE, verify

OLD, NEW = "mf-root", "mf-root-2"


def _sign(pki: PKI) -> FirmwareSignature:
    return pki.firmware.sign([FIRMWARE], location=None, actor="test")


def _issuer_of(signed: FirmwareSignature) -> x509.Name:
    return x509.load_pem_x509_certificate(signed.certificate_pem.encode()).issuer


def test_after_the_rollover_firmware_is_signed_by_the_new_generation(fresh_pki: PKI) -> None:
    before = _sign(fresh_pki)
    assert fresh_pki.cas.rollover(OLD) == NEW
    after = _sign(fresh_pki)
    new_root = fresh_pki.cas.chain(NEW)[0]
    assert _issuer_of(after) == new_root.subject and after.signer_serial != before.signer_serial
    assert fresh_pki.certificates.get(after.signer_serial, NEW).profile == "firmware-signer"
    # The audit record names the CA that issued the signer used.
    (record,) = fresh_pki.audit.records(action="firmware-sign", ca_id=NEW, limit=10)
    assert record.serial == after.signer_serial and json.loads(record.details)["sha256"] == after.sha256
    assert verify(fresh_pki, FIRMWARE, after).signer_serial == after.signer_serial  # type: ignore[attr-defined]


def test_the_old_signers_signatures_verify_while_the_old_root_is_valid(fresh_pki: PKI) -> None:
    old = _sign(fresh_pki)
    fresh_pki.cas.rollover(OLD)
    assert verify(fresh_pki, FIRMWARE, old).signer_serial == old.signer_serial  # type: ignore[attr-defined]
    assert fresh_pki.certificates.get(old.signer_serial, OLD).status == "valid"


def test_once_the_old_root_is_revoked_its_signer_fails_and_the_new_one_signs(fresh_pki: PKI) -> None:
    old = _sign(fresh_pki)
    fresh_pki.cas.rollover(OLD)
    fresh_pki.revocation.revoke(fresh_pki.cas.get(OLD).serial, "superseded", ca_id=OLD)
    with pytest.raises(VerificationFailed, match=f"{OLD} cannot vouch"):
        verify(fresh_pki, FIRMWARE, old)
    new = _sign(fresh_pki)  # not a PolicyViolation about the revoked mf-root
    assert _issuer_of(new) == fresh_pki.cas.chain(NEW)[0].subject
    verify(fresh_pki, FIRMWARE, new)


def test_without_a_rollover_a_revoked_root_still_stops_signing(fresh_pki: PKI) -> None:
    fresh_pki.revocation.revoke(fresh_pki.cas.get(OLD).serial, "cACompromise", ca_id=OLD)
    with pytest.raises(PolicyViolation, match=OLD):
        _sign(fresh_pki)


def test_a_revoked_new_signer_falls_back_to_the_old_valid_one(fresh_pki: PKI) -> None:
    old = _sign(fresh_pki)
    fresh_pki.cas.rollover(OLD)
    new = _sign(fresh_pki)
    fresh_pki.revocation.revoke(new.signer_serial, "keyCompromise", ca_id=NEW)
    assert _sign(fresh_pki).signer_serial == old.signer_serial  # the newest *valid* signer
    with pytest.raises(VerificationFailed, match="revoked"):
        verify(fresh_pki, FIRMWARE, new)


def test_with_no_valid_signer_left_the_newest_signers_fault_is_reported(fresh_pki: PKI) -> None:
    old = _sign(fresh_pki)
    fresh_pki.cas.rollover(OLD)
    new = _sign(fresh_pki)
    fresh_pki.revocation.revoke(old.signer_serial, "superseded", ca_id=OLD)
    fresh_pki.revocation.revoke(new.signer_serial, "keyCompromise", ca_id=NEW)
    before = fresh_pki.audit.count()
    with pytest.raises(PolicyViolation, match=new.signer_serial) as refused:
        _sign(fresh_pki)
    assert refused.value.rule == "firmware.signer-revoked"
    assert fresh_pki.audit.count() == before


def test_the_old_signer_expiring_does_not_matter_to_the_new_one(fresh_pki: PKI) -> None:
    old = _sign(fresh_pki)
    clock = fresh_pki.clock
    assert isinstance(clock, FixedClock)
    clock.set(clock.now() + dt.timedelta(days=365))  # a rollover a year into the old signer's life
    fresh_pki.cas.rollover(OLD)
    clock.set(fresh_pki.certificates.get(old.signer_serial, OLD).not_after + dt.timedelta(days=1))
    with pytest.raises(VerificationFailed, match="expired"):
        verify(fresh_pki, FIRMWARE, old)
    verify(fresh_pki, FIRMWARE, _sign(fresh_pki))


def test_a_second_rollover_signs_with_the_third_generation(fresh_pki: PKI) -> None:
    fresh_pki.cas.rollover(OLD)
    second = _sign(fresh_pki)
    assert fresh_pki.cas.rollover(NEW) == "mf-root-3"
    third = _sign(fresh_pki)
    assert _issuer_of(third) == fresh_pki.cas.chain("mf-root-3")[0].subject
    verify(fresh_pki, FIRMWARE, second)
    verify(fresh_pki, FIRMWARE, third)


def test_a_signer_of_another_generation_cannot_pass_for_the_one_it_names(fresh_pki: PKI) -> None:
    """A firmware signer must be issued *directly* by a manufacturer root; the new root's name on a
    certificate the old root signed is no such thing."""
    fresh_pki.cas.rollover(OLD)
    link = fresh_pki.cas.root_link(NEW)  # a CA certificate the old root issued: not a firmware signer
    assert link is not None
    with pytest.raises(VerificationFailed, match=r"CA certificate|not issued"):
        fresh_pki.firmware.verify([FIRMWARE], signature=_sign(fresh_pki).signature, certificate=pem(link))


@requires_openssl
def test_openssl_verifies_the_new_signature_and_the_new_signer_against_the_new_root(
    fresh_pki: PKI, tmp_path: Path
) -> None:
    fresh_pki.cas.rollover(OLD)
    fresh_pki.revocation.revoke(fresh_pki.cas.get(OLD).serial, "superseded", ca_id=OLD)
    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(FIRMWARE)
    signed = _sign(fresh_pki)
    signature, certificate, public = write_signature_files(tmp_path, signed)
    # What a station does (OCPP L01.FR.12): the signature over the file, and the signing certificate
    # against its ManufacturerRootCertificate -- here the new root alone.
    checked = run_openssl("dgst", "-sha256", "-verify", str(public), "-signature", str(signature), str(firmware))
    assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked.stdout + checked.stderr
    root = tmp_path / "mf-root-2.pem"
    root.write_text(pem(fresh_pki.cas.chain(NEW)[0]))
    at = str(int(fresh_pki.clock.now().timestamp()))
    chained = run_openssl("verify", "-attime", at, "-CAfile", str(root), str(certificate))
    assert chained.returncode == 0, chained.stdout + chained.stderr
    old_root = tmp_path / "mf-root.pem"
    old_root.write_text(pem(fresh_pki.cas.chain(OLD)[0]))
    assert run_openssl("verify", "-attime", at, "-CAfile", str(old_root), str(certificate)).returncode != 0


def test_signer_ca_picks_a_generation_and_refuses_other_cas_before_reading(fresh_pki: PKI) -> None:
    fresh_pki.cas.rollover(OLD)
    old = fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test", signer_ca=OLD)
    assert old.signer_ca == OLD and _issuer_of(old) == fresh_pki.cas.chain(OLD)[0].subject
    read: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        read.append(FIRMWARE)
        yield FIRMWARE

    before = fresh_pki.audit.count()
    with pytest.raises(InvalidInput, match="not a manufacturer root"):
        fresh_pki.firmware.sign(chunks(), location=None, actor="test", signer_ca="cso-root")
    assert read == [] and fresh_pki.audit.count() == before
