"""Distinguished names: short attribute keys (``CN``, ``O``, ``DC`` ...) to and from ``x509.Name``."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.core.errors import InvalidInput

__all__ = ["ATTRIBUTE_KEYS", "attribute_key", "build_name", "single_values"]

ATTRIBUTE_KEYS: dict[str, x509.ObjectIdentifier] = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
}
_KEY_BY_OID = {oid: key for key, oid in ATTRIBUTE_KEYS.items()}


def attribute_key(oid: x509.ObjectIdentifier) -> str:
    return _KEY_BY_OID.get(oid, oid.dotted_string)


def build_name(pairs: list[tuple[str, str]]) -> x509.Name:
    """Build a Name of one attribute per RDN, in the given order."""
    attributes = []
    for key, value in pairs:
        oid = ATTRIBUTE_KEYS.get(key)
        if oid is None:
            raise InvalidInput(f"unknown subject attribute {key!r}; use one of {', '.join(ATTRIBUTE_KEYS)}")
        if not value:
            raise InvalidInput(f"subject attribute {key} is empty")
        if oid == NameOID.COUNTRY_NAME and (len(value) != 2 or not value.isalpha()):
            raise InvalidInput(f"country must be a two-letter code, got {value!r}")
        attributes.append(x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)]))
    return x509.Name(attributes)


def single_values(name: x509.Name) -> dict[x509.ObjectIdentifier, list[str]]:
    """Every attribute's values, in order of appearance."""
    values: dict[x509.ObjectIdentifier, list[str]] = {}
    for attribute in name:
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode("latin-1")
        values.setdefault(attribute.oid, []).append(value)
    return values
