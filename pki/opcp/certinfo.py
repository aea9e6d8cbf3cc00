"""The informative certificate fields OPCP objects carry (names, serial, key identifiers, fingerprints)."""

from __future__ import annotations

import base64
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448

__all__ = [
    "ISO2_NAMESPACE",
    "ISO20_NAMESPACE",
    "b64_der",
    "colon_hex",
    "common_name",
    "der",
    "distinguished_name",
    "fingerprints",
    "iso_time",
    "key_identifier",
    "load_b64_certificate",
    "organization",
    "signature_algorithm",
    "xsd_namespace",
]

ISO2_NAMESPACE = "urn:iso:15118:2:2013:MsgDef"
ISO20_NAMESPACE = "urn:iso:15118:20:2022:MsgDef"
# rcp.v1.json RootCertV2.distinguishedName: only these attribute types, no escaped commas.
_DN = re.compile(r"^((CN|OU|O|C|DC|ST)=[^,]+,? ?)+$")
_MAX_B64_CHARS = 8192


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def b64_der(certificate: x509.Certificate) -> str:
    return base64.b64encode(der(certificate)).decode()


def load_b64_certificate(text: object) -> x509.Certificate | None:
    """A Base64 DER certificate (whitespace ignored), or None when it is not one."""
    if not isinstance(text, str) or not text.strip() or len(text) > _MAX_B64_CHARS:
        return None
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
        certificate = x509.load_der_x509_certificate(raw)
        certificate.public_key()
    except Exception:
        return None
    return certificate


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def common_name(certificate: x509.Certificate) -> str | None:
    return _attribute(certificate.subject, x509.NameOID.COMMON_NAME)


def organization(certificate: x509.Certificate) -> str | None:
    return _attribute(certificate.subject, x509.NameOID.ORGANIZATION_NAME)


def distinguished_name(name: x509.Name) -> str | None:
    """RFC 4514, when it fits OPCP's pattern (else None: the field is informative and optional)."""
    try:
        text = name.rfc4514_string()
    except ValueError:
        return None
    return text if _DN.match(text) else None


def key_identifier(certificate: x509.Certificate) -> bytes:
    """The subject key identifier, or RFC 5280 §4.2.1.2 method 1 when the certificate has none."""
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest  # type: ignore[arg-type]


def colon_hex(data: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in data)


def iso_time(certificate_time: object) -> str:
    return certificate_time.strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[attr-defined]


def signature_algorithm(certificate: x509.Certificate) -> str | None:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp521r1"):
        return key.curve.name
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448"
    return None


def xsd_namespace(certificate: x509.Certificate) -> str | None:
    """Which ISO 15118 part a root serves, from its key (-2: P-256; -20: P-521 or Ed448)."""
    algorithm = signature_algorithm(certificate)
    if algorithm == "secp256r1":
        return ISO2_NAMESPACE
    if algorithm in ("secp521r1", "ed448"):
        return ISO20_NAMESPACE
    return None


def fingerprints(certificate: x509.Certificate) -> tuple[str, str]:
    raw = der(certificate)
    return hashlib.sha256(raw).hexdigest(), hashlib.sha1(raw).hexdigest()  # noqa: S324 - an informative field
