"""Firmware signatures checked by OpenSSL, and OpenSSL's signatures checked by evpki (OCPP L01).

A station verifies with its own crypto library, not ours: ``openssl dgst -sha256 -verify`` over
the raw file is the closest stand-in -- ECDSA for EC signers, RSASSA-PSS with a digest-length
salt (``rsa_pss_saltlen:-1`` in OpenSSL 3.0) for RSA signers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from pki import PKI
from pki.core.errors import VerificationFailed
from pki.firmware.payloads import FirmwareSignature
from tests.conftest import TEST_PASSPHRASE, requires_openssl, run_openssl
from tests.pki.builders import open_pki
from tests.pki.firmware.test_firmware import mf_hierarchy

pytestmark = [pytest.mark.interop, requires_openssl]

PSS_VERIFY = ("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1")


@pytest.fixture(scope="module")
def rsa_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    home = tmp_path_factory.mktemp("firmware-rsa")
    config = home / "hierarchy.toml"
    config.write_text(mf_hierarchy("rsa-2048"), encoding="utf-8")
    with open_pki(home, config=config) as instance:
        yield instance


@pytest.fixture
def firmware(tmp_path: Path) -> Path:
    path = tmp_path / "firmware.bin"
    with path.open("wb") as handle:
        for index in range(40):  # 2.5 MiB, not a multiple of any chunk size
            handle.write(bytes([index]) * 65_536)
        handle.write(b"tail")
    return path


def chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def write_signature_files(directory: Path, signed: FirmwareSignature) -> tuple[Path, Path, Path]:
    """sig.bin (raw signature), cert.pem and pub.pem (the certificate's public key, via openssl)."""
    signature = directory / "sig.bin"
    signature.write_bytes(base64.b64decode(signed.signature))
    certificate = directory / "cert.pem"
    certificate.write_text(signed.certificate_pem)
    public = directory / "pub.pem"
    extracted = run_openssl("x509", "-in", str(certificate), "-noout", "-pubkey")
    assert extracted.returncode == 0, extracted.stderr
    public.write_text(extracted.stdout)
    return signature, certificate, public


def test_openssl_verifies_an_ecdsa_firmware_signature(pki: PKI, firmware: Path, tmp_path: Path) -> None:
    signed = pki.firmware.sign(chunks(firmware), location=None, actor="test")
    assert signed.algorithm == "ecdsa-sha256"
    signature, _, public = write_signature_files(tmp_path, signed)
    result = run_openssl("dgst", "-sha256", "-verify", str(public), "-signature", str(signature), str(firmware))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verified OK" in result.stdout


def test_openssl_rejects_an_ecdsa_signature_over_a_tampered_file(pki: PKI, firmware: Path, tmp_path: Path) -> None:
    signed = pki.firmware.sign(chunks(firmware), location=None, actor="test")
    signature, _, public = write_signature_files(tmp_path, signed)
    with firmware.open("r+b") as handle:
        handle.seek(1_000_000)
        handle.write(b"\xff")
    result = run_openssl("dgst", "-sha256", "-verify", str(public), "-signature", str(signature), str(firmware))
    assert result.returncode != 0
    assert "Verification failure" in result.stdout + result.stderr


def test_openssl_verifies_an_rsa_pss_firmware_signature(rsa_pki: PKI, firmware: Path, tmp_path: Path) -> None:
    signed = rsa_pki.firmware.sign(chunks(firmware), location=None, actor="test")
    assert signed.algorithm == "rsassa-pss-sha256"
    signature, _, public = write_signature_files(tmp_path, signed)
    # saltlen -1: the salt must be exactly the digest length (32 octets); MGF1 follows -sha256.
    args = ("dgst", "-sha256", *PSS_VERIFY, "-verify", str(public), "-signature", str(signature), str(firmware))
    result = run_openssl(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verified OK" in result.stdout
    # Without the PSS options OpenSSL expects PKCS#1 v1.5, which this is not.
    plain = run_openssl("dgst", "-sha256", "-verify", str(public), "-signature", str(signature), str(firmware))
    assert plain.returncode != 0


def test_openssl_verifies_the_signing_certificate_under_mf_root(pki: PKI, tmp_path: Path) -> None:
    signed = pki.firmware.sign([b"firmware"], location=None, actor="test")
    certificate = tmp_path / "cert.pem"
    certificate.write_text(signed.certificate_pem)
    root = tmp_path / "mf-root.pem"
    root.write_text(pki.cas.get("mf-root").certificate_pem)
    # OCPP L01 remarks: no intermediates, so the root alone verifies the signer.
    result = run_openssl("verify", "-x509_strict", "-CAfile", str(root), str(certificate))
    assert result.returncode == 0, result.stderr


def _decrypted_signer_key(pki: PKI, tmp_path: Path) -> Path:
    encrypted = pki.settings.keys_dir / "leaf-firmware-signer.key.pem"
    key = tmp_path / "signer.key"
    result = run_openssl("pkey", "-in", str(encrypted), "-passin", f"pass:{TEST_PASSPHRASE}", "-out", str(key))
    assert result.returncode == 0, result.stderr
    return key


def _openssl_signature(key: Path, firmware: Path, tmp_path: Path, *options: str) -> str:
    signature = tmp_path / "openssl.sig"
    result = run_openssl("dgst", "-sha256", "-sign", str(key), *options, "-out", str(signature), str(firmware))
    assert result.returncode == 0, result.stderr
    return base64.b64encode(signature.read_bytes()).decode()


def test_evpki_verifies_an_ecdsa_signature_made_by_openssl(pki: PKI, firmware: Path, tmp_path: Path) -> None:
    signed = pki.firmware.sign([b"x"], location=None, actor="test")
    signature = _openssl_signature(_decrypted_signer_key(pki, tmp_path), firmware, tmp_path)
    result = pki.firmware.verify(chunks(firmware), signature=signature, certificate=signed.certificate_pem)
    assert result.size == firmware.stat().st_size


@pytest.mark.parametrize("salt", ["digest", "max"])
def test_evpki_verifies_an_rsa_pss_signature_made_by_openssl(
    rsa_pki: PKI, firmware: Path, tmp_path: Path, salt: str
) -> None:
    signed = rsa_pki.firmware.sign([b"x"], location=None, actor="test")
    key = _decrypted_signer_key(rsa_pki, tmp_path)
    signature = _openssl_signature(
        key, firmware, tmp_path, "-sigopt", "rsa_padding_mode:pss", "-sigopt", f"rsa_pss_saltlen:{salt}"
    )
    result = rsa_pki.firmware.verify(chunks(firmware), signature=signature, certificate=signed.certificate_pem)
    assert result.algorithm == "rsassa-pss-sha256"


def test_evpki_refuses_a_pkcs1_v15_rsa_signature(rsa_pki: PKI, firmware: Path, tmp_path: Path) -> None:
    # OCPP 2.0.1 L01.FR.04 names RSA-PSS; a PKCS#1 v1.5 signature by the right key is not accepted.
    signed = rsa_pki.firmware.sign([b"x"], location=None, actor="test")
    signature = _openssl_signature(_decrypted_signer_key(rsa_pki, tmp_path), firmware, tmp_path)
    with pytest.raises(VerificationFailed, match="signature does not match the file"):
        rsa_pki.firmware.verify(chunks(firmware), signature=signature, certificate=signed.certificate_pem)
