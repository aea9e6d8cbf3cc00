"""CSR policy: decide whether a request may become a certificate of a profile, and with which subject.

Every refusal is a :class:`~pki.core.errors.PolicyViolation` whose ``rule`` names the broken rule;
nothing here touches the store. The subject of the issued certificate is rebuilt from
validated attributes, never copied blindly from the request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, x448
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from pki.ca.hierarchy import allowed_leaf_algorithms
from pki.ca.profiles import ALT_PUBLIC_KEY_OID, KeyRule, Profile, ProfileName
from pki.core.algorithms import describe_key
from pki.core.errors import InvalidInput, PolicyViolation
from pki.core.names import attribute_key, single_values

__all__ = [
    "EMAID_PATTERN",
    "MAX_CSR_CHARS",
    "PCID_PATTERN",
    "ApprovedRequest",
    "RequestIdentity",
    "check_key",
    "check_request",
    "load_csr",
]

MAX_CSR_CHARS = 5500  # OCPP SignCertificateRequest.csr maxLength
_RSA_MIN_BITS = 2048  # OCPP A00.FR.502
_RSA_MAX_BITS = 8192  # larger keys only cost the verifier time
_EC_MIN_BITS = 224  # OCPP A00.FR.503
_OCPP_CURVES = {
    "ec-p224",
    "ec-p256",
    "ec-p384",
    "ec-p521",
    "ec-brainpoolP256r1",
    "ec-brainpoolP384r1",
    "ec-brainpoolP512r1",
}
# ISO 15118-2 eMAIDType (14-15 characters): country, provider, 9-character instance, optional
# check character, no separators (hyphens are for humans only, OPCP "handling of IDs").
EMAID_PATTERN = re.compile(r"^[A-Z]{2}[0-9A-Z]{3}[0-9A-Z]{9}[0-9A-Z]?$")
# PCID: WMI + 14 characters + optional check character (ISO 15118-2 Annex H).
PCID_PATTERN = re.compile(r"^[A-Za-z0-9]{17,18}$")
_SECC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9*-]{0,63}$")
_STATION_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:*-]{0,63}$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_FQDN = re.compile(rf"^(?=.{{1,253}}$)({_LABEL})(\.{_LABEL})*$")


@dataclass(frozen=True, slots=True)
class RequestIdentity:
    """What the caller vouches the certificate is for (from the command line, API or registry)."""

    station_id: str | None = None  # OCPP identity
    station_serial: str | None = None  # goes into CN (A00.FR.511); defaults to station_id
    secc_id: str | None = None
    fqdn: str | None = None
    emaid: str | None = None
    pcid: str | None = None

    @property
    def serial_for_cn(self) -> str | None:
        return self.station_serial or self.station_id


@dataclass(frozen=True, slots=True)
class ApprovedRequest:
    subject: x509.Name
    public_key: CertificatePublicKeyTypes
    identity: str
    station_serial: str | None
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    alternate_public_key: bytes | None = None  # DER SubjectPublicKeyInfo (ISO 15118-20 [V2G20-2534])


def load_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """Parse a PEM (or DER) PKCS#10 request; size-limited as OCPP limits it."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_CSR_CHARS * 2:
        raise InvalidInput(f"CSR is {len(raw)} bytes; at most {MAX_CSR_CHARS} characters are accepted")
    stripped = raw.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            if len(stripped) > MAX_CSR_CHARS:
                raise InvalidInput(f"CSR is {len(stripped)} characters; OCPP allows at most {MAX_CSR_CHARS}")
            return x509.load_pem_x509_csr(stripped)
        return x509.load_der_x509_csr(raw)
    except (ValueError, x509.InvalidVersion) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput("not a PKCS#10 certificate request (malformed PEM or DER)") from None


def check_key(profile: Profile, public_key: object, standard: str) -> None:
    """Key rules: OCPP A00.FR.501-503 strength, ISO 15118 curve per edition."""
    key = describe_key(public_key)
    if profile.key_rule is KeyRule.ISO15118 and standard.startswith("iso15118"):
        allowed = allowed_leaf_algorithms(standard)
        if key.name not in allowed:
            raise PolicyViolation(
                f"key.{standard}",
                f"{profile.name.value} certificates under {standard} need a {' or '.join(allowed)} key, not {key.name}",
            )
        return
    if key.family == "rsa":
        if key.bits < _RSA_MIN_BITS:
            raise PolicyViolation("key.rsa-min-bits", f"RSA key has {key.bits} bits; at least {_RSA_MIN_BITS}")
        if key.bits > _RSA_MAX_BITS:
            raise PolicyViolation("key.rsa-max-bits", f"RSA key has {key.bits} bits; at most {_RSA_MAX_BITS}")
        exponent = key.rsa_public_exponent or 0
        if exponent < 65537 or exponent % 2 == 0:
            raise PolicyViolation("key.rsa-exponent", f"RSA public exponent {exponent} is not allowed")
        return
    if key.family == "ec":
        if key.bits < _EC_MIN_BITS or key.name not in _OCPP_CURVES:
            raise PolicyViolation(
                "key.ec-curve", f"EC curve {key.name} is not allowed; use P-256, P-384, P-521 or brainpool"
            )
        return
    raise PolicyViolation("key.algorithm", f"{key.name} keys are not allowed for {profile.name.value}")


def check_request(
    csr: x509.CertificateSigningRequest,
    profile: Profile,
    *,
    standard: str,
    organization: str,
    identity: RequestIdentity,
) -> ApprovedRequest:
    """Run every rule in order; the first broken one raises."""
    # RFC 2986 §3: the signature proves possession of the private key.
    if not csr.is_signature_valid:
        raise PolicyViolation("csr.proof-of-possession", "the CSR signature does not verify")
    if profile.is_ca or profile.name is ProfileName.OCSP_RESPONDER:
        raise PolicyViolation(
            "profile.not-from-csr", f"{profile.name.value} certificates are made by evpki itself, not from CSRs"
        )
    public_key = csr.public_key()
    check_key(profile, public_key, standard)
    values = _check_subject_shape(csr.subject, profile)
    dns, ips = _requested_names(csr)
    approved = _PROFILE_RULES[profile.name](_Request(values, dns, ips, public_key, organization, identity))
    if profile.name is ProfileName.OEM_PROVISIONING and standard == "iso15118-20":
        return replace(approved, alternate_public_key=_alternate_key(csr, public_key))
    return approved


def _alternate_key(csr: x509.CertificateSigningRequest, public_key: object) -> bytes | None:
    """ISO 15118-20 [V2G20-2534]: an Ed448 vehicle needs an X448 key to agree on the contract key's session key."""
    try:
        requested = csr.extensions.get_extension_for_oid(ALT_PUBLIC_KEY_OID).value
    except x509.ExtensionNotFound:
        requested = None
    except ValueError:
        raise InvalidInput("the CSR's extension request cannot be parsed") from None
    if not isinstance(public_key, ed448.Ed448PublicKey):
        if requested is not None:
            raise PolicyViolation(
                "oem-provisioning.alternate-key", "only an Ed448 OEM provisioning key comes with an alternate X448 key"
            )
        return None
    if not isinstance(requested, x509.UnrecognizedExtension):
        raise PolicyViolation(
            "oem-provisioning.alternate-key",
            "an Ed448 OEM provisioning certificate needs the vehicle's X448 key as alternate public key "
            "(CSR extension subjectAltPublicKeyInfo, 2.5.29.72; ISO 15118-20 [V2G20-2534])",
        )
    try:
        alternate = serialization.load_der_public_key(requested.value)
    except (ValueError, TypeError):
        raise PolicyViolation(
            "oem-provisioning.alternate-key", "the alternate public key is not a DER SubjectPublicKeyInfo"
        ) from None
    if not isinstance(alternate, x448.X448PublicKey):
        raise PolicyViolation("oem-provisioning.alternate-key", "the alternate public key must be an X448 key")
    return alternate.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_subject_shape(subject: x509.Name, profile: Profile) -> dict[x509.ObjectIdentifier, str]:
    for rdn in subject.rdns:
        if len(rdn) != 1:
            raise PolicyViolation("subject.multi-valued-rdn", "the subject has a multi-valued RDN")
    values = single_values(subject)
    permitted = set(profile.required_subject) | set(profile.allowed_subject)
    for oid, found in values.items():
        if oid not in permitted:
            raise PolicyViolation(
                "subject.attribute-not-allowed",
                f"subject attribute {attribute_key(oid)} is not allowed in {profile.name.value} certificates",
            )
        if len(found) > 1:
            raise PolicyViolation("subject.repeated-attribute", f"subject repeats {attribute_key(oid)}")
        if not found[0].strip():
            raise PolicyViolation("subject.empty-attribute", f"subject attribute {attribute_key(oid)} is empty")
    for oid in profile.required_subject:
        if oid not in values:
            raise PolicyViolation(
                f"subject.missing-{attribute_key(oid).lower()}",
                f"{profile.name.value} certificates need {attribute_key(oid)} in the subject",
            )
    country = values.get(NameOID.COUNTRY_NAME)
    if country and (len(country[0]) != 2 or not country[0].isalpha()):
        raise PolicyViolation("subject.country", f"C must be a two-letter country code, not {country[0]!r}")
    if profile.fixed_dc is not None and values.get(NameOID.DOMAIN_COMPONENT, [None])[0] != profile.fixed_dc:
        raise PolicyViolation(
            f"{profile.name.value}.dc-{profile.fixed_dc.lower()}",
            f"{profile.name.value} certificates need DC={profile.fixed_dc} in the subject",
        )
    return {oid: found[0] for oid, found in values.items()}


def _requested_names(csr: x509.CertificateSigningRequest) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    except ValueError:
        raise InvalidInput("the CSR's extension request cannot be parsed") from None
    dns = tuple(san.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return dns, ips


def _subject_from(values: dict[x509.ObjectIdentifier, str], order: list[x509.ObjectIdentifier]) -> x509.Name:
    """Rebuild the subject from validated values in a conventional order (C, ST, L, O, OU, CN, DC)."""
    return x509.Name(
        [x509.RelativeDistinguishedName([x509.NameAttribute(oid, values[oid])]) for oid in order if oid in values]
    )


_ORDER = [
    NameOID.COUNTRY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COMMON_NAME,
    NameOID.DOMAIN_COMPONENT,
]


@dataclass(frozen=True, slots=True)
class _Request:
    values: dict[x509.ObjectIdentifier, str]
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    key: CertificatePublicKeyTypes
    organization: str
    identity: RequestIdentity


def _looks_like_address(text: str) -> bool:
    if "://" in text or text.lower().startswith("www."):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _station(r: _Request) -> ApprovedRequest:
    serial = r.identity.serial_for_cn
    if not serial:
        raise InvalidInput("station certificates need the station id (and its serial when it differs)")
    if not _STATION_SERIAL.match(serial) or _looks_like_address(serial):
        # OCPP A00.FR.511: the CN is the serial number and must not look like a URL or IP address.
        raise PolicyViolation("station.serial-format", f"station serial {serial!r} is not a plain serial number")
    cn = r.values[NameOID.COMMON_NAME]
    if cn != serial:
        raise PolicyViolation("station.cn-serial", f"CSR CN {cn!r} is not the station serial {serial!r}")
    if r.values[NameOID.ORGANIZATION_NAME] != r.organization:
        raise PolicyViolation(
            "station.organization",
            f"CSR O {r.values[NameOID.ORGANIZATION_NAME]!r} is not the CSO organisation {r.organization!r}",
        )
    if r.dns:
        # A00.FR.511: a station certificate should not carry a SAN dNSName (RFC 2818 would make it the identity).
        raise PolicyViolation("station.san-dnsname", "station certificates must not carry SAN dNSName entries")
    return ApprovedRequest(_subject_from(r.values, _ORDER), r.key, r.identity.station_id or serial, serial)


def _secc(r: _Request) -> ApprovedRequest:
    secc_id = r.identity.secc_id
    if not secc_id:
        raise InvalidInput("SECC certificates need the SECC id")
    if not _SECC_ID.match(secc_id):
        raise PolicyViolation("secc.id-format", f"SECC id {secc_id!r} has characters other than A-Z, 0-9, '*', '-'")
    if r.values[NameOID.COMMON_NAME] != secc_id:
        raise PolicyViolation(
            "secc.cn-secc-id", f"CSR CN {r.values[NameOID.COMMON_NAME]!r} is not the SECC id {secc_id!r}"
        )
    return ApprovedRequest(_subject_from(r.values, _ORDER), r.key, secc_id, None)


def _csms_server(r: _Request) -> ApprovedRequest:
    fqdn = r.identity.fqdn
    if not fqdn:
        raise InvalidInput("CSMS server certificates need the server's FQDN")
    if "*" in fqdn:
        # Stations reject wildcard server certificates unless AllowCSMSTLSWildcards is set.
        raise PolicyViolation("csms-server.wildcard", "wildcard CSMS server names are not issued")
    if not _FQDN.match(fqdn):
        raise PolicyViolation("csms-server.fqdn", f"{fqdn!r} is not a host name")
    if r.values[NameOID.COMMON_NAME] != fqdn:
        # OCPP A00.FR.510: CN = FQDN of the server endpoint.
        raise PolicyViolation("csms-server.cn-fqdn", f"CSR CN {r.values[NameOID.COMMON_NAME]!r} is not {fqdn!r}")
    extra = [name for name in r.dns if name.lower() != fqdn.lower()]
    if extra or r.ips:
        raise PolicyViolation(
            "csms-server.san", f"the CSR asks for names other than {fqdn!r}: {', '.join([*extra, *r.ips])}"
        )
    return ApprovedRequest(_subject_from(r.values, _ORDER), r.key, fqdn, None, dns_names=(fqdn,))


def _named_by(rule: str, attr: str, pattern: re.Pattern[str]) -> Callable[[_Request], ApprovedRequest]:
    def check(r: _Request) -> ApprovedRequest:
        wanted = getattr(r.identity, attr) or r.values[NameOID.COMMON_NAME]
        if not pattern.match(wanted):
            raise PolicyViolation(f"{rule}-format", f"{wanted!r} is not a valid {attr.upper()}")
        if r.values[NameOID.COMMON_NAME] != wanted:
            raise PolicyViolation(f"{rule}-cn", f"CSR CN {r.values[NameOID.COMMON_NAME]!r} is not {wanted!r}")
        if r.dns or r.ips:
            raise PolicyViolation(f"{rule}-san", "ISO 15118 certificates carry no subjectAltName")
        return ApprovedRequest(_subject_from(r.values, _ORDER), r.key, wanted, None)

    return check


def _common_name_only(r: _Request) -> ApprovedRequest:
    if r.dns or r.ips:
        raise PolicyViolation("subject.san-not-allowed", "this profile carries no subjectAltName")
    return ApprovedRequest(_subject_from(r.values, _ORDER), r.key, r.values[NameOID.COMMON_NAME], None)


_PROFILE_RULES: dict[ProfileName, Callable[[_Request], ApprovedRequest]] = {
    ProfileName.STATION: _station,
    ProfileName.SECC: _secc,
    ProfileName.CSMS_SERVER: _csms_server,
    ProfileName.CONTRACT: _named_by("contract.emaid", "emaid", EMAID_PATTERN),
    ProfileName.OEM_PROVISIONING: _named_by("oem-provisioning.pcid", "pcid", PCID_PATTERN),
    ProfileName.CPS_LEAF: _common_name_only,
    ProfileName.FIRMWARE_SIGNER: _common_name_only,
}
