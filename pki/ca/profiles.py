"""Certificate profiles: what each kind of certificate evpki issues looks like.

A profile fixes basic constraints, key usages, extended key usages, which keys it accepts,
its validity and the subject rules a request must meet. Sources:
OCPP 2.0.1 Part 2 §1.4.1 Table 20 (A00.FR.501-514) for ``station``, ``csms-server`` and
``firmware-signer``; ISO 15118-2 Annex F / the V2G PKI profiles (see
shared/reference/iso15118.md §1.2) for ``secc``, ``cps-leaf``, ``contract``,
``oem-provisioning`` and the CA levels; RFC 6960 §4.2.2.2 for ``ocsp-responder``.

ISO 15118-20 uses the same profiles under a CA whose PKI has ``standard = "iso15118-20"``
(reference iso15118.md §1.3, §2.6; Annex B of -20 itself was not available, so what follows is
what the public excerpts and the schemas say, and is marked where it is not verified):

- keys: secp521r1 (signed ecdsa-with-SHA512) or Ed448 ([V2G20-2674], [V2G20-2319]); the issuer's
  standard chooses (:class:`KeyRule`), the CA's own key signs;
- size: a DER certificate inside a -20 message is at most 1600 bytes (``certificateType`` of
  V2G_CI_CommonTypes.xsd): :data:`ISO15118_20_MAX_CERTIFICATE_BYTES`;
- subject key identifier: 8 bytes (RFC 5280 §4.2.1.2 method 2), as for -2 — the AES-GCM AAD of
  the contract key carries the contract certificate's SKI as 16 upper-case hex characters
  ([V2G20-2492]), which fixes its length at 8 bytes;
- key usages: as for -2; an Ed448 key only signs (RFC 9295), so an Ed448 OEM provisioning
  certificate agrees keys with a second, X448 key: its *alternate subject public key*
  ([V2G20-2534]). evpki carries it in the X.509 (10/2019) ``subjectAltPublicKeyInfo`` extension
  (:data:`ALT_PUBLIC_KEY_OID`, non-critical, the SubjectPublicKeyInfo of the X448 key) copied from
  the CSR's extension request. Which extension Annex B.7.2 names is [unverified];
- validity and subject rules: the -2 ones ([unverified] for -20; the public excerpts do not change them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.core.errors import NotFound

__all__ = [
    "ALT_PUBLIC_KEY_OID",
    "ISO15118_20_MAX_CERTIFICATE_BYTES",
    "PROFILES",
    "KeyRule",
    "Profile",
    "ProfileName",
    "get_profile",
]


# V2G_CI_CommonTypes.xsd certificateType: a DER certificate in an ISO 15118-20 message is <= 1600 bytes.
ISO15118_20_MAX_CERTIFICATE_BYTES = 1600
# ITU-T X.509 (10/2019) §9.8.2 subjectAltPublicKeyInfo (id-ce 72): the OEM provisioning certificate's
# X448 key beside its Ed448 one, ISO 15118-20 [V2G20-2534] (the OID ISO uses there is [unverified]).
ALT_PUBLIC_KEY_OID = x509.ObjectIdentifier("2.5.29.72")


class ProfileName(StrEnum):
    STATION = "station"
    SECC = "secc"
    CSMS_SERVER = "csms-server"
    FIRMWARE_SIGNER = "firmware-signer"
    CPS_LEAF = "cps-leaf"
    CONTRACT = "contract"
    OEM_PROVISIONING = "oem-provisioning"
    OCSP_RESPONDER = "ocsp-responder"
    SUB_CA = "sub-ca"
    ROOT = "root"


class KeyRule(StrEnum):
    """Which subject keys a profile accepts; ``ISO15118`` follows the issuing chain's edition."""

    # OCPP A00.FR.501-503: >= 112-bit strength, RSA >= 2048, ECC >= 224 bits.
    OCPP = "ocpp"
    # ISO 15118-2: P-256 only; ISO 15118-20: P-521 or Ed448. Chosen by the issuer's standard.
    ISO15118 = "iso15118"


@dataclass(frozen=True, slots=True)
class KeyUsageBits:
    digital_signature: bool = False
    content_commitment: bool = False
    key_encipherment: bool = False
    key_agreement: bool = False
    key_cert_sign: bool = False
    crl_sign: bool = False

    def extension(self) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=self.digital_signature,
            content_commitment=self.content_commitment,
            key_encipherment=self.key_encipherment,
            data_encipherment=False,
            key_agreement=self.key_agreement,
            key_cert_sign=self.key_cert_sign,
            crl_sign=self.crl_sign,
            encipher_only=False,
            decipher_only=False,
        )


_CA_USAGE = KeyUsageBits(key_cert_sign=True, crl_sign=True)


@dataclass(frozen=True, slots=True)
class Profile:
    """One certificate profile.

    ``ec_usage`` / ``rsa_usage`` differ because an RSA TLS key enciphers the pre-master
    secret while an EC key agrees on one (RFC 5480 §3, RFC 8446 leaves both allowed).
    ``required_subject`` lists attributes a CSR must carry; ``allowed_subject`` those it may
    carry besides; ``fixed_dc`` is the domainComponent an ISO 15118 leaf must name.
    """

    name: ProfileName
    is_ca: bool
    ec_usage: KeyUsageBits
    rsa_usage: KeyUsageBits
    key_rule: KeyRule
    default_validity: dt.timedelta
    max_validity: dt.timedelta
    extended_usages: tuple[x509.ObjectIdentifier, ...] = ()
    required_subject: tuple[x509.ObjectIdentifier, ...] = (NameOID.COMMON_NAME,)
    allowed_subject: tuple[x509.ObjectIdentifier, ...] = ()
    fixed_dc: str | None = None
    ocsp_nocheck: bool = False
    accepts_san: bool = False

    def key_usage(self, rsa_key: bool) -> x509.KeyUsage:
        return (self.rsa_usage if rsa_key else self.ec_usage).extension()


_DAY = dt.timedelta(days=1)
_YEAR = dt.timedelta(days=365)
_GENERAL_ATTRS = (
    NameOID.COUNTRY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
)
_ISO_ATTRS = (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.COUNTRY_NAME, NameOID.DOMAIN_COMPONENT)
_TLS_EC = KeyUsageBits(digital_signature=True, key_agreement=True)
_TLS_RSA = KeyUsageBits(digital_signature=True, key_encipherment=True)
_SIGN_ONLY = KeyUsageBits(digital_signature=True)
_SIGN_AND_AGREE = KeyUsageBits(digital_signature=True, key_agreement=True)

PROFILES: dict[ProfileName, Profile] = {
    p.name: p
    for p in (
        # OCPP A00.FR.511: CN = station serial, O = CSO (A00.FR.509); A00.FR.514: no EKU.
        Profile(
            name=ProfileName.STATION,
            is_ca=False,
            ec_usage=_TLS_EC,
            rsa_usage=_TLS_RSA,
            key_rule=KeyRule.OCPP,
            default_validity=_YEAR,
            max_validity=2 * _YEAR,
            required_subject=(NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME),
            allowed_subject=_GENERAL_ATTRS,
        ),
        # ISO 15118-2 SECC leaf: CN = SECC ID, O and C of the CPO, DC=CPO; no EKU; 2-3 months.
        Profile(
            name=ProfileName.SECC,
            is_ca=False,
            ec_usage=_SIGN_AND_AGREE,
            rsa_usage=_SIGN_AND_AGREE,
            key_rule=KeyRule.ISO15118,
            default_validity=60 * _DAY,
            max_validity=92 * _DAY,
            required_subject=_ISO_ATTRS,
            fixed_dc="CPO",
        ),
        # OCPP A00.FR.510: CN = FQDN; a SAN dNSName is what TLS clients match (RFC 6125).
        Profile(
            name=ProfileName.CSMS_SERVER,
            is_ca=False,
            ec_usage=_TLS_EC,
            rsa_usage=_TLS_RSA,
            key_rule=KeyRule.OCPP,
            default_validity=90 * _DAY,
            max_validity=397 * _DAY,
            extended_usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
            required_subject=(NameOID.COMMON_NAME,),
            allowed_subject=(NameOID.ORGANIZATION_NAME, *_GENERAL_ATTRS),
            accepts_san=True,
        ),
        # OCPP L01: signs whole firmware files; directly under the manufacturer root.
        Profile(
            name=ProfileName.FIRMWARE_SIGNER,
            is_ca=False,
            ec_usage=_SIGN_ONLY,
            rsa_usage=_SIGN_ONLY,
            key_rule=KeyRule.OCPP,
            default_validity=3 * _YEAR,
            max_validity=5 * _YEAR,
            required_subject=(NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME),
            allowed_subject=_GENERAL_ATTRS,
        ),
        # ISO 15118-2: signs CertificateInstallationRes / CertificateUpdateRes data.
        Profile(
            name=ProfileName.CPS_LEAF,
            is_ca=False,
            ec_usage=_SIGN_ONLY,
            rsa_usage=_SIGN_ONLY,
            key_rule=KeyRule.ISO15118,
            default_validity=_YEAR,
            max_validity=2 * _YEAR,
            required_subject=(NameOID.COMMON_NAME, NameOID.DOMAIN_COMPONENT),
            allowed_subject=(NameOID.ORGANIZATION_NAME, NameOID.COUNTRY_NAME),
            fixed_dc="CPS",
        ),
        # ISO 15118-2 contract certificate: CN = eMAID, DC=MO; keyAgreement for Update's ECDH.
        Profile(
            name=ProfileName.CONTRACT,
            is_ca=False,
            ec_usage=_SIGN_AND_AGREE,
            rsa_usage=_SIGN_AND_AGREE,
            key_rule=KeyRule.ISO15118,
            default_validity=_YEAR,
            max_validity=2 * _YEAR,
            required_subject=(NameOID.COMMON_NAME, NameOID.DOMAIN_COMPONENT),
            allowed_subject=(NameOID.ORGANIZATION_NAME, NameOID.COUNTRY_NAME),
            fixed_dc="MO",
        ),
        # ISO 15118-2 OEM provisioning certificate: CN = PCID, DC=OEM; the ECDH peer on install.
        Profile(
            name=ProfileName.OEM_PROVISIONING,
            is_ca=False,
            ec_usage=_SIGN_AND_AGREE,
            rsa_usage=_SIGN_AND_AGREE,
            key_rule=KeyRule.ISO15118,
            default_validity=4 * _YEAR,
            max_validity=10 * _YEAR,
            required_subject=(NameOID.COMMON_NAME, NameOID.DOMAIN_COMPONENT),
            allowed_subject=(NameOID.ORGANIZATION_NAME, NameOID.COUNTRY_NAME),
            fixed_dc="OEM",
        ),
        # RFC 6960 §4.2.2.2 delegated responder; §4.2.2.2.1 id-pkix-ocsp-nocheck.
        Profile(
            name=ProfileName.OCSP_RESPONDER,
            is_ca=False,
            ec_usage=_SIGN_ONLY,
            rsa_usage=_SIGN_ONLY,
            key_rule=KeyRule.OCPP,
            default_validity=30 * _DAY,
            max_validity=90 * _DAY,
            extended_usages=(ExtendedKeyUsageOID.OCSP_SIGNING,),
            allowed_subject=(NameOID.ORGANIZATION_NAME, *_GENERAL_ATTRS, NameOID.DOMAIN_COMPONENT),
            ocsp_nocheck=True,
        ),
        Profile(
            name=ProfileName.SUB_CA,
            is_ca=True,
            ec_usage=_CA_USAGE,
            rsa_usage=_CA_USAGE,
            key_rule=KeyRule.OCPP,
            default_validity=4 * _YEAR,
            max_validity=20 * _YEAR,
            allowed_subject=(NameOID.ORGANIZATION_NAME, *_GENERAL_ATTRS, NameOID.DOMAIN_COMPONENT),
        ),
        Profile(
            name=ProfileName.ROOT,
            is_ca=True,
            ec_usage=_CA_USAGE,
            rsa_usage=_CA_USAGE,
            key_rule=KeyRule.OCPP,
            default_validity=20 * _YEAR,
            max_validity=40 * _YEAR,
            allowed_subject=(NameOID.ORGANIZATION_NAME, *_GENERAL_ATTRS, NameOID.DOMAIN_COMPONENT),
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[ProfileName(name)]
    except ValueError:
        known = ", ".join(p.value for p in ProfileName)
        raise NotFound(f"unknown profile {name!r}; profiles are: {known}") from None
