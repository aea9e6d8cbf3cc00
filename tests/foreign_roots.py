"""Roots made without evpki, with plain ``cryptography``: the foreign anchors the trust store is tested with.

An ecosystem root operator (a V2G root, an OEM root) shares nothing with evpki but X.509; building
its certificates here, independently of ``pki/``, keeps the trust store's checks honest.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import FRESH_EPOCH

__all__ = ["ForeignRoot", "foreign_root", "pem_of", "rcp_entry", "sha256_of"]


@dataclass(frozen=True, slots=True)
class ForeignRoot:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def foreign_root(
    name: str = "Foreign V2G Root CA",
    *,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    ca: bool | None = True,
    issuer: x509.Name | None = None,
    signer: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> ForeignRoot:
    """A root certificate; the keyword arguments make the broken variants the store must refuse.

    ``ca=None`` leaves basicConstraints out; ``issuer`` names another issuer; ``signer`` signs with
    another key than the certificate's own.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Foreign Root Operator"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "V2G"),
        ]
    )
    start = not_before or FRESH_EPOCH - dt.timedelta(days=30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + dt.timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    certificate = builder.sign(signer or key, hashes.SHA256())
    return ForeignRoot(certificate, key)


def pem_of(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def sha256_of(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def rcp_entry(certificate: x509.Certificate, root_type: str, identifier: str) -> dict[str, str]:
    """One root certificate object as an OPCP Root Certificate Pool lists it."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {
        "rootCertificateId": identifier,
        "distinguishedName": certificate.subject.rfc4514_string(),
        "rootType": root_type,
        "caCertificate": base64.b64encode(der).decode(),
        "fingerprint": hashlib.sha256(der).hexdigest(),
    }
