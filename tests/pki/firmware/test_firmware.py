"""Firmware signing (OCPP 2.0.1/2.1 L01, 1.6 SignedUpdateFirmware): sign, verify, refuse, payloads, memory."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import textwrap
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from pki import PKI, InvalidInput, NotFound, PolicyViolation, RequestIdentity
from pki.ca.authority import fingerprint, new_serial, serial_hex
from pki.core.clock import FixedClock
from pki.core.errors import IntegrityError, VerificationFailed
from pki.firmware.payloads import SIGNATURE_MAX_CHARS, SIGNING_CERTIFICATE_MAX_CHARS, FirmwareSignature, OcppVersion
from pki.firmware.signing import sign_firmware
from pki.firmware.verification import verify_firmware
from pki.store import repository
from pki.store.models import AuditRecord, CertificateRow
from tests.conftest import FRESH_EPOCH, ORG, make_csr
from tests.pki.builders import open_pki

FIRMWARE = b"\x7fELF evpki test firmware image\n" * 1000
LOCATION = "https://firmware.example.com/cp/v2.3.1.bin"
RETRIEVE = dt.datetime(2026, 2, 1, 2, 0, tzinfo=dt.UTC)
MIB = 1 << 20


def mf_hierarchy(algorithm: str, *, with_signer: bool = True) -> str:
    """A hierarchy file with only the manufacturer PKI of the default one, keyed with ``algorithm``."""
    text = f"""
organization = "{ORG}"
country = "DE"

[pki.mf]
standard = "ocpp"
algorithm = "{algorithm}"

[ca.mf-root]
pki = "mf"
subject = {{ C = "{{country}}", O = "{{org}} Manufacturer", CN = "{{org}} Manufacturer Root CA" }}
validity = "20y"
issues = ["firmware-signer"]
"""
    if with_signer:
        text += """
[leaf.firmware-signer]
profile = "firmware-signer"
issuer = "mf-root"
subject = { C = "{country}", O = "{org} Manufacturer", CN = "{org} Firmware Signer" }
validity = "3y"
"""
    return text


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def signer_view(pki: PKI) -> CertificateRow:
    with pki._ctx.database.read() as session:
        row = repository.managed_leaf(session, "firmware-signer")
        assert row is not None
        session.expunge(row)
        return row


def verify(pki: PKI, data: bytes, signed: FirmwareSignature, *, chunk: int = 4096) -> object:
    return pki.firmware.verify(split(data, chunk), signature=signed.signature, certificate=signed.certificate_pem)


def last_audit(pki: PKI) -> AuditRecord:
    with pki._ctx.database.read() as session:
        record = session.execute(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).scalar_one()  # type: ignore[attr-defined]
        session.expunge(record)
        return record


@pytest.fixture(scope="module", params=["ec-p384", "ec-p521", "rsa-2048", "rsa-4096"])
def mf_pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    """A manufacturer-only PKI whose firmware signer has the parametrized key algorithm."""
    home = tmp_path_factory.mktemp(f"mf-{request.param}")
    config = home / "hierarchy.toml"
    config.write_text(mf_hierarchy(request.param), encoding="utf-8")
    with open_pki(home, config=config) as instance:
        yield instance


# -- signing and verifying -------------------------------------------------------------------------


def test_signature_verifies_and_names_the_firmware_signer(pki: PKI) -> None:
    signed = pki.firmware.sign(split(FIRMWARE, 1000), location=LOCATION, actor="test")
    row = signer_view(pki)
    assert signed.sha256 == hashlib.sha256(FIRMWARE).hexdigest()
    assert signed.size == len(FIRMWARE)
    assert signed.algorithm == "ecdsa-sha256"
    assert signed.signer_serial == row.serial
    assert x509.load_pem_x509_certificate(signed.certificate_pem.encode()).serial_number == int(row.serial, 16)
    result = verify(pki, FIRMWARE, signed)
    assert result.sha256 == signed.sha256
    assert result.size == len(FIRMWARE)
    assert result.signer_serial == row.serial
    assert "Firmware Signer" in result.signer_subject


def test_ec_signature_is_plain_ecdsa_sha256_over_the_whole_file(pki: PKI) -> None:
    # OCPP 2.0.1 L01.FR.04: a signature over the SHA-256 of the entire file, checkable without evpki.
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    certificate = x509.load_pem_x509_certificate(signed.certificate_pem.encode())
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(base64.b64decode(signed.signature), FIRMWARE, ec.ECDSA(hashes.SHA256()))


def test_chunk_boundaries_do_not_matter(pki: PKI) -> None:
    signed = pki.firmware.sign(split(FIRMWARE, 7), location=None, actor="test")
    assert signed.sha256 == pki.firmware.sign([FIRMWARE], location=None, actor="test").sha256
    verify(pki, FIRMWARE, signed, chunk=len(FIRMWARE))
    verify(pki, FIRMWARE, signed, chunk=1)


def test_signing_appends_one_audit_record_and_keeps_the_chain_intact(pki: PKI) -> None:
    before = pki.audit.count()
    signed = pki.firmware.sign([FIRMWARE], location=LOCATION, actor="test:firmware")
    assert pki.audit.count() == before + 1
    record = last_audit(pki)
    assert (record.action, record.actor, record.ca_id, record.serial) == (
        "firmware-sign",
        "test:firmware",
        "mf-root",
        signed.signer_serial,
    )
    assert json.loads(record.details) == {"sha256": signed.sha256, "size": len(FIRMWARE), "location": LOCATION}
    assert pki.audit.verify().ok


def test_verifying_writes_nothing(pki: PKI) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    before = pki.audit.count()
    verify(pki, FIRMWARE, signed)
    assert pki.audit.count() == before


@pytest.mark.parametrize(
    "altered",
    [
        FIRMWARE[:-1],
        FIRMWARE + b"\x00",
        FIRMWARE[:100] + bytes([FIRMWARE[100] ^ 1]) + FIRMWARE[101:],
    ],
    ids=["truncated", "appended", "one-bit-flipped"],
)
def test_altered_file_fails_verification(pki: PKI, altered: bytes) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    with pytest.raises(VerificationFailed, match="signature does not match the file"):
        verify(pki, altered, signed)


def test_signature_by_another_key_fails_verification(pki: PKI) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    other = ec.generate_private_key(ec.SECP256R1()).sign(FIRMWARE, ec.ECDSA(hashes.SHA256()))
    forged = dataclasses.replace(signed, signature=base64.b64encode(other).decode())
    with pytest.raises(VerificationFailed, match="altered or signed by another key"):
        verify(pki, FIRMWARE, forged)


def test_signer_algorithms(mf_pki: PKI) -> None:
    signed = mf_pki.firmware.sign(split(FIRMWARE, 3000), location=LOCATION, actor="test")
    certificate = x509.load_pem_x509_certificate(signed.certificate_pem.encode())
    public_key = certificate.public_key()
    signature = base64.b64decode(signed.signature)
    if isinstance(public_key, rsa.RSAPublicKey):
        assert signed.algorithm == "rsassa-pss-sha256"
        # RSASSA-PSS, MGF1-SHA256, salt = digest length: checked with the exact salt, not AUTO.
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public_key.verify(signature, FIRMWARE, pss, hashes.SHA256())
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        assert signed.algorithm == "ecdsa-sha256"
        public_key.verify(signature, FIRMWARE, ec.ECDSA(hashes.SHA256()))
    assert verify(mf_pki, FIRMWARE, signed).signer_serial == signed.signer_serial
    # Even the largest key we generate (RSA-4096, P-521) fits the OCPP field limits.
    assert len(signed.signature) <= SIGNATURE_MAX_CHARS
    assert len(signed.certificate_pem) <= SIGNING_CERTIFICATE_MAX_CHARS
    for version in ("1.6", "2.0.1", "2.1"):
        assert signed.payload(version, 1, RETRIEVE)["firmware"]["signature"] == signed.signature


@pytest.mark.parametrize("mf_pki", ["rsa-2048", "rsa-4096"], indirect=True)
def test_rsa_signature_with_maximum_salt_is_accepted(mf_pki: PKI) -> None:
    """Verification takes any PSS salt length (AUTO), as signers such as OpenSSL default to the maximum."""
    signed = mf_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    key = mf_pki._ctx.keys.load(signer_view(mf_pki).key_id)._key  # type: ignore[arg-type, attr-defined]
    assert isinstance(key, rsa.RSAPrivateKey)
    max_salt = key.sign(
        FIRMWARE, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256()
    )
    verify(mf_pki, FIRMWARE, dataclasses.replace(signed, signature=base64.b64encode(max_salt).decode()))


# -- what is refused when verifying ----------------------------------------------------------------


def test_station_certificate_is_not_a_firmware_signer(pki: PKI) -> None:
    csr, key = make_csr("CPFIRMWARE01")
    station = pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id="CPFIRMWARE01"))
    signature = key.sign(FIRMWARE, ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
    with pytest.raises(VerificationFailed, match="was not issued by mf-root"):
        pki.firmware.verify(
            [FIRMWARE],
            signature=base64.b64encode(signature).decode(),
            certificate=station.certificate.certificate_pem,
        )


def test_the_manufacturer_root_itself_is_not_a_firmware_signer(pki: PKI) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    root = pki.cas.get("mf-root").certificate_pem
    with pytest.raises(VerificationFailed, match="is a CA certificate"):
        pki.firmware.verify([FIRMWARE], signature=signed.signature, certificate=root)


def _impostor(subject: x509.Name, issuer: x509.Name, public_key: object, signing_key: object) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(new_serial())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
    )
    return builder.sign(signing_key, hashes.SHA256())  # type: ignore[arg-type]


def test_certificate_naming_mf_root_but_signed_by_another_key_is_refused(pki: PKI) -> None:
    root_name = x509.load_pem_x509_certificate(pki.cas.get("mf-root").certificate_pem.encode()).subject
    fake_root = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Impostor Firmware Signer")])
    impostor = _impostor(subject, root_name, leaf_key.public_key(), fake_root)
    signature = leaf_key.sign(FIRMWARE, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(VerificationFailed, match="was not issued by mf-root"):
        pki.firmware.verify(
            [FIRMWARE],
            signature=base64.b64encode(signature).decode(),
            certificate=impostor.public_bytes(serialization.Encoding.PEM),
        )


def test_certificate_signed_by_mf_root_but_never_issued_is_refused(pki: PKI) -> None:
    """A certificate the mf-root key signed outside this PKI's records (a lost backup, a stolen key)."""
    root = x509.load_pem_x509_certificate(pki.cas.get("mf-root").certificate_pem.encode())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unrecorded Firmware Signer")])
    root_signer = pki._ctx.keys.load("ca-mf-root")
    unrecorded = _impostor(subject, root.subject, leaf_key.public_key(), root_signer._key)  # type: ignore[attr-defined]
    signature = leaf_key.sign(FIRMWARE, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(VerificationFailed, match="not one that mf-root of this PKI issued"):
        pki.firmware.verify(
            [FIRMWARE],
            signature=base64.b64encode(signature).decode(),
            certificate=unrecorded.public_bytes(serialization.Encoding.PEM),
        )


@pytest.mark.parametrize(
    ("certificate", "message"),
    [
        ("not a certificate", "not a PEM X.509 certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a PEM X.509 certificate"),
    ],
)
def test_malformed_certificate_is_invalid_input(pki: PKI, certificate: str, message: str) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    with pytest.raises(InvalidInput, match=message):
        pki.firmware.verify([FIRMWARE], signature=signed.signature, certificate=certificate)


def test_a_chain_instead_of_the_signing_certificate_is_invalid_input(pki: PKI) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    chain = signed.certificate_pem + pki.cas.get("mf-root").certificate_pem
    with pytest.raises(InvalidInput, match="expected one signing certificate, got 2"):
        pki.firmware.verify([FIRMWARE], signature=signed.signature, certificate=chain)


@pytest.mark.parametrize("signature", ["", "not base64!", "QUJD=x"])
def test_malformed_signature_is_invalid_input(pki: PKI, signature: str) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    with pytest.raises(InvalidInput, match="signature"):
        pki.firmware.verify([FIRMWARE], signature=signature, certificate=signed.certificate_pem)


def test_signature_with_line_breaks_is_accepted(pki: PKI) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    wrapped = "\n".join(textwrap.wrap(signed.signature, 40))
    pki.firmware.verify([FIRMWARE], signature=wrapped + "\n", certificate=signed.certificate_pem)


# -- what is refused when signing, and what becomes unverifiable ---------------------------------


def test_revoked_signer_cannot_sign_and_its_signatures_fail(fresh_pki: PKI) -> None:
    signed = fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    fresh_pki.revocation.revoke(signed.signer_serial, "keyCompromise", ca_id="mf-root")
    before = fresh_pki.audit.count()
    with pytest.raises(PolicyViolation, match="revoked") as refused:
        fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    assert refused.value.rule == "firmware.signer-revoked"
    assert fresh_pki.audit.count() == before
    since = FRESH_EPOCH.date().isoformat()
    with pytest.raises(VerificationFailed, match=rf"is revoked \(keyCompromise\) since {since}"):
        verify(fresh_pki, FIRMWARE, signed)


def test_signer_on_hold_signs_again_once_released(fresh_pki: PKI) -> None:
    signed = fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    fresh_pki.revocation.revoke(signed.signer_serial, "certificateHold", ca_id="mf-root")
    with pytest.raises(PolicyViolation) as refused:
        fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    assert refused.value.rule == "firmware.signer-on-hold"
    with pytest.raises(VerificationFailed, match="on hold"):
        verify(fresh_pki, FIRMWARE, signed)
    fresh_pki.revocation.release_hold(signed.signer_serial, ca_id="mf-root")
    verify(fresh_pki, FIRMWARE, fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test"))


def test_expired_signer_cannot_sign_and_its_signatures_fail(fresh_pki: PKI) -> None:
    signed = fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    clock = fresh_pki.clock
    assert isinstance(clock, FixedClock)
    clock.set(signer_view(fresh_pki).not_after + dt.timedelta(seconds=1))
    with pytest.raises(PolicyViolation) as refused:
        fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    assert refused.value.rule == "firmware.signer-expired"
    with pytest.raises(VerificationFailed, match="expired on"):
        verify(fresh_pki, FIRMWARE, signed)


def test_revoked_manufacturer_root_stops_signing_and_verification(fresh_pki: PKI) -> None:
    signed = fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    fresh_pki.revocation.revoke(fresh_pki.cas.get("mf-root").serial, "cACompromise", ca_id="mf-root")
    with pytest.raises(PolicyViolation, match="mf-root"):
        fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    with pytest.raises(VerificationFailed, match="mf-root cannot vouch"):
        verify(fresh_pki, FIRMWARE, signed)


def test_revocation_during_the_read_is_seen_by_the_verdict(fresh_pki: PKI) -> None:
    signed = fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")

    def chunks_then_revoke() -> Iterator[bytes]:
        yield FIRMWARE
        fresh_pki.revocation.revoke(signed.signer_serial, "keyCompromise", ca_id="mf-root")

    with pytest.raises(VerificationFailed, match="revoked"):
        fresh_pki.firmware.verify(chunks_then_revoke(), signature=signed.signature, certificate=signed.certificate_pem)


def test_without_a_firmware_signer_signing_is_not_found(tmp_path: Path) -> None:
    config = tmp_path / "no-signer.toml"
    config.write_text(mf_hierarchy("ec-p256", with_signer=False), encoding="utf-8")
    with open_pki(tmp_path, config=config) as instance, pytest.raises(NotFound, match="evpki init"):
        instance.firmware.sign([FIRMWARE], location=None, actor="test")


def _add_signer_row(pki: PKI, key_id: str, public_key: object) -> None:
    """Store a newer firmware-signer certificate, signed by mf-root, for ``public_key`` and ``key_id``."""
    ctx = pki._ctx
    root = x509.load_pem_x509_certificate(pki.cas.get("mf-root").certificate_pem.encode())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{ORG} Manufacturer"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Replacement Firmware Signer"),
        ]
    )
    now = pki.clock.now()
    certificate = _impostor(subject, root.subject, public_key, ctx.keys.load("ca-mf-root")._key)  # type: ignore[attr-defined]
    with ctx.database.write() as session:
        repository.add_certificate(
            session,
            CertificateRow(
                issuer_id="mf-root",
                serial=serial_hex(certificate.serial_number),
                sha256=fingerprint(certificate),
                profile="firmware-signer",
                subject=certificate.subject.rfc4514_string(),
                identity="Replacement Firmware Signer",
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
                der=certificate.public_bytes(serialization.Encoding.DER),
                key_id=key_id,
                label="firmware-signer",
                created_at=now,
            ),
        )


def test_eddsa_signer_is_refused_with_a_clear_rule(fresh_pki: PKI) -> None:
    # The hierarchy file refuses EdDSA for an OCPP PKI; a signer stored some other way still cannot sign.
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    signer = fresh_pki._ctx.keys.generate("leaf-firmware-ed448", "ed448")
    _add_signer_row(fresh_pki, "leaf-firmware-ed448", signer.public_key())
    with pytest.raises(PolicyViolation, match="EdDSA") as refused:
        fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    assert refused.value.rule == "firmware.signer-algorithm"


def test_signer_whose_key_does_not_match_its_certificate_is_an_integrity_error(fresh_pki: PKI) -> None:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    _add_signer_row(fresh_pki, "ca-mf-root", ec.generate_private_key(ec.SECP256R1()).public_key())
    before = fresh_pki.audit.count()
    with pytest.raises(IntegrityError, match="does not belong"):
        fresh_pki.firmware.sign([FIRMWARE], location=None, actor="test")
    assert fresh_pki.audit.count() == before


# -- input limits ----------------------------------------------------------------------------------


def test_oversized_file_is_refused_without_reading_on_or_auditing(pki: PKI) -> None:
    read: list[int] = []

    def chunks() -> Iterator[bytes]:
        for index in range(100):
            read.append(index)
            yield b"x" * 8

    before = pki.audit.count()
    with pytest.raises(InvalidInput, match="larger than the limit of 20 bytes"):
        sign_firmware(pki._ctx, chunks(), location=None, max_bytes=20, actor="test")
    assert len(read) == 3  # stopped at the chunk that passed the limit
    assert pki.audit.count() == before
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    with pytest.raises(InvalidInput, match="larger than the limit"):
        verify_firmware(
            pki._ctx,
            [FIRMWARE],
            signature_b64=signed.signature,
            certificate_pem=signed.certificate_pem,
            max_bytes=len(FIRMWARE) - 1,
        )


def test_file_exactly_at_the_limit_is_signed(pki: PKI) -> None:
    signed = sign_firmware(pki._ctx, [FIRMWARE], location=None, max_bytes=len(FIRMWARE), actor="test")
    assert signed.size == len(FIRMWARE)


@pytest.mark.parametrize("chunks", [[], [b""], [b"", b""]], ids=["no-chunks", "one-empty", "two-empty"])
def test_empty_file_is_refused(pki: PKI, chunks: list[bytes]) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        pki.firmware.sign(chunks, location=None, actor="test")


def test_chunks_of_the_wrong_type_are_a_type_error(pki: PKI) -> None:
    with pytest.raises(TypeError, match="iterable of byte chunks"):
        pki.firmware.sign(FIRMWARE, location=None, actor="test")
    with pytest.raises(TypeError, match="not str"):
        pki.firmware.sign(["text"], location=None, actor="test")  # type: ignore[list-item]


def test_bytearray_and_memoryview_chunks_are_accepted(pki: PKI) -> None:
    signed = pki.firmware.sign([bytearray(FIRMWARE[:10]), memoryview(FIRMWARE)[10:]], location=None, actor="test")
    assert signed.sha256 == hashlib.sha256(FIRMWARE).hexdigest()


def test_location_longer_than_any_ocpp_version_allows_is_refused_before_signing(pki: PKI) -> None:
    before = pki.audit.count()
    with pytest.raises(InvalidInput, match="at most 2000"):
        pki.firmware.sign([FIRMWARE], location="https://x/" + "a" * 1991, actor="test")
    assert pki.audit.count() == before


@pytest.mark.parametrize(
    ("location", "payloads", "request_id", "message"),
    [
        ("https://x/fw.bin", ("2.0.1",), 2**31, "requestId must be between"),
        ("https://x/" + "a" * 600, ("1.6", "2.0.1"), 1, "OCPP 1.6 allows at most 512"),
    ],
)
def test_payload_fields_are_refused_before_signing(
    pki: PKI, location: str, payloads: tuple[OcppVersion, ...], request_id: int, message: str
) -> None:
    # The payloads are built after signing; checking them first keeps a refusal free of any audit record.
    before = pki.audit.count()
    with pytest.raises(InvalidInput, match=message):
        pki.firmware.sign([FIRMWARE], location=location, payloads=payloads, request_id=request_id, actor="test")
    assert pki.audit.count() == before


def _stream(mebibytes: int) -> Iterator[bytes]:
    """Fresh 1 MiB chunks (a new object each), so that holding on to them would show in the peak."""
    for index in range(mebibytes):
        yield hashlib.sha512(index.to_bytes(4, "big")).digest() * (MIB // 64)


def test_a_large_file_streams_in_constant_memory(pki: PKI) -> None:
    expected = hashlib.sha256()
    for chunk in _stream(64):
        expected.update(chunk)
    pki.firmware.sign([b"warm up the key cache"], location=None, actor="test")
    tracemalloc.start()
    try:
        signed = pki.firmware.sign(_stream(64), location=LOCATION, actor="test")
        result = pki.firmware.verify(_stream(64), signature=signed.signature, certificate=signed.certificate_pem)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert signed.size == result.size == 64 * MIB
    assert signed.sha256 == result.sha256 == expected.hexdigest()
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB while streaming 64 MiB"


# -- OCPP payloads ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(pki: PKI) -> FirmwareSignature:
    return pki.firmware.sign([FIRMWARE], location=LOCATION, actor="test")


def test_update_firmware_201_payload(signed: FirmwareSignature) -> None:
    payload = signed.update_firmware_201(42, RETRIEVE)
    assert payload == {
        "requestId": 42,
        "firmware": {
            "location": LOCATION,
            "retrieveDateTime": "2026-02-01T02:00:00Z",
            "signingCertificate": signed.certificate_pem,
            "signature": signed.signature,
        },
    }


def test_optional_fields_are_camel_case_and_only_present_when_given(signed: FirmwareSignature) -> None:
    install = dt.datetime(2026, 2, 1, 4, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    payload = signed.update_firmware_201(7, RETRIEVE, install_date_time=install, retries=3, retry_interval=60)
    assert payload["retries"] == 3
    assert payload["retryInterval"] == 60
    assert payload["firmware"]["installDateTime"] == "2026-02-01T03:30:00Z"  # converted to UTC


def test_signed_update_firmware_16_carries_the_required_certificate_and_signature(signed: FirmwareSignature) -> None:
    payload = signed.signed_update_firmware_16(5, RETRIEVE)
    assert payload["requestId"] == 5
    assert payload["firmware"]["signingCertificate"] == signed.certificate_pem
    assert payload["firmware"]["signature"] == signed.signature
    assert payload == signed.payload("1.6", 5, RETRIEVE)


def test_payload_location_and_retrieve_time_default_to_those_given_when_signing(pki: PKI) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=LOCATION, retrieve_at=RETRIEVE, actor="test")
    assert signed.update_firmware_201(1)["firmware"]["retrieveDateTime"] == "2026-02-01T02:00:00Z"
    other = signed.update_firmware_201(1, location="https://mirror.example.com/fw.bin")
    assert other["firmware"]["location"] == "https://mirror.example.com/fw.bin"


def test_payload_without_location_names_what_is_missing(pki: PKI) -> None:
    signed = pki.firmware.sign([FIRMWARE], location=None, actor="test")
    for build in (signed.update_firmware_201, signed.signed_update_firmware_16):
        with pytest.raises(InvalidInput, match="firmware location is needed"):
            build(1, RETRIEVE)


def test_payload_without_retrieve_time_is_invalid_input(signed: FirmwareSignature) -> None:
    with pytest.raises(InvalidInput, match="retrieveDateTime"):
        signed.update_firmware_201(1)


@pytest.mark.parametrize(("version", "limit"), [("1.6", 512), ("2.0.1", 512), ("2.1", 2000)])
def test_location_limit_per_version(signed: FirmwareSignature, version: str, limit: int) -> None:
    at_limit = "https://x/" + "a" * (limit - 10)
    assert signed.payload(version, 1, RETRIEVE, location=at_limit)["firmware"]["location"] == at_limit  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=f"OCPP {version} allows at most {limit}"):
        signed.payload(version, 1, RETRIEVE, location=at_limit + "a")  # type: ignore[arg-type]


def test_update_firmware_21_takes_a_location_too_long_for_201(signed: FirmwareSignature) -> None:
    long_location = "https://x/" + "a" * 1000
    payload = signed.update_firmware_201(1, RETRIEVE, location=long_location, ocpp_version="2.1")
    assert payload["firmware"]["location"] == long_location
    with pytest.raises(InvalidInput):
        signed.update_firmware_201(1, RETRIEVE, location=long_location)


def test_signature_and_certificate_limits(signed: FirmwareSignature) -> None:
    with pytest.raises(InvalidInput, match="signature has 801 characters; OCPP allows at most 800"):
        dataclasses.replace(signed, signature="A" * 801).update_firmware_201(1, RETRIEVE)
    with pytest.raises(InvalidInput, match="signingCertificate has 5501 characters"):
        dataclasses.replace(signed, certificate_pem="A" * 5501).signed_update_firmware_16(1, RETRIEVE)
    assert dataclasses.replace(signed, signature="A" * 800).update_firmware_201(1, RETRIEVE)


def test_payload_argument_checks(signed: FirmwareSignature) -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        signed.update_firmware_201(1, dt.datetime(2026, 2, 1, 2, 0))
    with pytest.raises(TypeError):
        signed.update_firmware_201(True, RETRIEVE)
    with pytest.raises(InvalidInput, match="requestId"):
        signed.update_firmware_201(2**31, RETRIEVE)
    with pytest.raises(InvalidInput, match="retries"):
        signed.update_firmware_201(1, RETRIEVE, retries=-1)
    with pytest.raises(InvalidInput, match="unknown OCPP version"):
        signed.payload("2.0", 1, RETRIEVE)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="SignedUpdateFirmware"):
        signed.update_firmware_201(1, RETRIEVE, ocpp_version="1.6")  # type: ignore[arg-type]


def test_results_serialise_to_json(pki: PKI, signed: FirmwareSignature) -> None:
    data = json.loads(json.dumps(signed.to_json()))
    assert data["sha256"] == signed.sha256
    assert data["certificate_pem"] == signed.certificate_pem
    result = verify(pki, FIRMWARE, signed)
    assert json.loads(json.dumps(result.to_json()))["signer_serial"] == signed.signer_serial


def test_payloads_validate_against_the_ocpp_json_schemas(signed: FirmwareSignature) -> None:
    ocpp = pytest.importorskip("ocpp", reason="the ocpp package (its JSON schemas) is not installed")
    jsonschema = pytest.importorskip("jsonschema")
    schemas = Path(ocpp.__file__).parent
    install = RETRIEVE + dt.timedelta(hours=2)
    cases = [
        ("v16/schemas/SignedUpdateFirmware.json", signed.signed_update_firmware_16(1, RETRIEVE, retries=2)),
        ("v201/schemas/UpdateFirmwareRequest.json", signed.update_firmware_201(1, RETRIEVE, install_date_time=install)),
        (
            "v21/schemas/UpdateFirmwareRequest.json",
            signed.update_firmware_201(1, RETRIEVE, retry_interval=30, ocpp_version="2.1"),
        ),
    ]
    for schema_path, payload in cases:
        schema = json.loads((schemas / schema_path).read_text(encoding="utf-8"))
        jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(payload)
