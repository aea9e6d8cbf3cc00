"""Test vehicles for the ISO 15118 tests: a P-256 key and an OEM provisioning certificate from our OEM CA."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki import PKI, RequestIdentity

__all__ = ["Car", "make_car", "mo_roots", "new_emaid", "new_pcid", "v2g_roots"]

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
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, pcid), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "OEM")]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    issued = pki.issue(
        profile="oem-provisioning",
        csr=csr.public_bytes(serialization.Encoding.PEM),
        identity=RequestIdentity(pcid=pcid),
    )
    return Car(pcid, x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode()), key)


def v2g_roots(pki: PKI) -> list[x509.Certificate]:
    return pki.roots("V2GRootCertificate")


def mo_roots(pki: PKI) -> list[x509.Certificate]:
    return [pki.ca_chain("mo-sub2")[-1]]
