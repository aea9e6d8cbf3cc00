"""Test vehicles for the ISO 15118 tests: a P-256 key and an OEM provisioning certificate from our OEM CA."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki import PKI, RequestIdentity
from pki.iso15118.ev import vehicle_csr

__all__ = ["Car", "foreign_certificate", "make_car", "mo_roots", "new_emaid", "new_pcid", "v2g_roots"]

_numbers = itertools.count(1)


@dataclass(frozen=True)
class Car:
    pcid: str
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def new_pcid() -> str:
    return f"WMI{next(_numbers):014d}"


def new_emaid() -> str:
    return f"DETST{next(_numbers):09d}"


def make_car(pki: PKI, pcid: str | None = None) -> Car:
    pcid = pcid or new_pcid()
    csr, key = vehicle_csr(pcid)
    issued = pki.certificates.issue(profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=pcid))
    return Car(pcid, x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode()), key)


def foreign_certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None,
    path_length: int | None = None,
) -> x509.Certificate:
    """A certificate from a CA that is not ours (``issuer`` None: self-signed); a CA when ``path_length`` is set."""
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "OEM")]
    )
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=path_length is not None, path_length=path_length), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def v2g_roots(pki: PKI) -> list[x509.Certificate]:
    return pki.cas.roots("V2GRootCertificate")


def mo_roots(pki: PKI) -> list[x509.Certificate]:
    return [pki.cas.chain("mo-sub2")[-1]]
