"""Certificate construction: turn an approved request and a profile into a signed certificate.

Pure functions over ``cryptography`` objects; no store access. The caller (the service)
decides serial, validity window and issuer; this module applies the profile's extensions
and the RFC 5280 structure around them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pki.ca.profiles import ALT_PUBLIC_KEY_OID, ISO15118_20_MAX_CERTIFICATE_BYTES, Profile
from pki.core.errors import InvalidInput, PolicyViolation
from pki.runtime.context import ISO15118_20, IssuerContext

__all__ = [
    "BACKDATE",
    "ISO15118_2_MAX_CERTIFICATE_BYTES",
    "build_certificate",
    "fingerprint",
    "freshest_crl",
    "new_serial",
    "serial_hex",
    "short_key_identifier",
    "validity_window",
]

# notBefore is back-dated so that stations with slightly slow clocks accept a fresh certificate.
BACKDATE = dt.timedelta(minutes=5)
_SERIAL_BITS = 127  # RFC 5280 §4.1.2.2: positive, <= 20 octets; CA/B BR ask for >= 64 random bits.
# V2G_CI_MsgDataTypes.xsd certificateType: a DER certificate in an ISO 15118-2 message is <= 800 bytes.
ISO15118_2_MAX_CERTIFICATE_BYTES = 800


def new_serial() -> int:
    # The top bit is fixed so every serial encodes in exactly 16 octets (126 random bits).
    return secrets.randbits(_SERIAL_BITS - 1) | (1 << (_SERIAL_BITS - 1))


def serial_hex(serial: int) -> str:
    """Upper-case hex without leading zeros, as OCPP CertificateHashData.serialNumber writes it."""
    return format(serial, "X")


def fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def validity_window(
    now: dt.datetime, validity: dt.timedelta, issuer: x509.Certificate | None
) -> tuple[dt.datetime, dt.datetime]:
    """notBefore back-dated a few minutes, notAfter capped at the issuer's notAfter."""
    not_before = now - BACKDATE
    try:
        not_after = now + validity
    except OverflowError:
        raise InvalidInput(f"a validity of {validity.days} days ends after the year 9999") from None
    if issuer is not None:
        not_before = max(not_before, issuer.not_valid_before_utc)
        not_after = min(not_after, issuer.not_valid_after_utc)
    if not_after <= now:
        raise PolicyViolation("issuer.expired", "the issuing CA certificate has expired")
    return not_before, not_after


def freshest_crl(public_url: str, ca_id: str) -> x509.FreshestCRL:
    return x509.FreshestCRL(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(f"{public_url}/crl/{ca_id}-delta.crl")],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def short_key_identifier(public_key: CertificatePublicKeyTypes) -> x509.SubjectKeyIdentifier:
    """RFC 5280 §4.2.1.2 method (2): 0100 then the low 60 bits of the SHA-1 of the key -- 8 bytes, not 20."""
    full = x509.SubjectKeyIdentifier.from_public_key(public_key).digest
    return x509.SubjectKeyIdentifier(bytes([0x40 | (full[12] & 0x0F)]) + full[13:])


def _key_usage(profile: Profile, public_key: CertificatePublicKeyTypes) -> x509.KeyUsage:
    usage = profile.key_usage(isinstance(public_key, rsa.RSAPublicKey))
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        # RFC 9295 §3 (updating RFC 8410 §5): an Ed25519/Ed448 key only signs; keyAgreement and
        # keyEncipherment MUST NOT be asserted (ISO 15118-20 does ECDH with a separate X448 key).
        usage = x509.KeyUsage(
            digital_signature=usage.digital_signature,
            content_commitment=usage.content_commitment,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=usage.key_cert_sign,
            crl_sign=usage.crl_sign,
            encipher_only=False,
            decipher_only=False,
        )
    return usage


def build_certificate(
    *,
    issuer: IssuerContext,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    profile: Profile,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    public_url: str,
    path_length: int | None = None,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    alternate_public_key: bytes | None = None,
) -> x509.Certificate:
    """``alternate_public_key``: a DER SubjectPublicKeyInfo for ISO 15118-20's OEM provisioning certificate."""
    issuer_name = issuer.certificate.subject if issuer.certificate is not None else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=profile.is_ca, path_length=path_length if profile.is_ca else None),
            critical=True,
        )
        .add_extension(_key_usage(profile, public_key), critical=True)
    )
    if issuer.compact:
        builder = builder.add_extension(short_key_identifier(public_key), critical=False)
    else:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    if profile.extended_usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(profile.extended_usages)), critical=False)
    if dns_names or ip_addresses:
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if profile.ocsp_nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)  # RFC 6960 §4.2.2.2.1
    if alternate_public_key is not None:
        # ISO 15118-20 [V2G20-2534]: the X448 key an Ed448 vehicle agrees keys with (see profiles).
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ALT_PUBLIC_KEY_OID, alternate_public_key), critical=False
        )
    if issuer.certificate is not None:
        issuer_ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
        # Every non-root certificate says where its status is answered: OCPP M06 takes the
        # GetCertificateStatus responderURL from AIA.
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{public_url}/ocsp")
                    )
                ]
            ),
            critical=False,
        )
    if issuer.certificate is not None and not issuer.compact:
        # Where the issuer's CRLs live. ISO 15118 certificates leave both CRL pointers out:
        # six of them share one OCPP exiResponse of 5,600 characters, the EV world checks status
        # by OCSP (stapled by the SECC), and none of the public V2G samples carries a CRL DP.
        # The CRLs of those CAs are still published at /crl/<ca>.crl.
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(f"{public_url}/crl/{issuer.ca_id}.crl")],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
        # RFC 5280 §4.2.1.15: where the delta CRL that completes the issuer's full CRL lives.
        builder = builder.add_extension(freshest_crl(public_url, issuer.ca_id), critical=False)
    certificate = issuer.signer.sign_certificate(builder, rsa_pss=issuer.rsa_pss)
    if issuer.compact:
        _check_compact_size(certificate, issuer.standard)
    return certificate


def _check_compact_size(certificate: x509.Certificate, standard: str) -> None:
    size = len(certificate.public_bytes(serialization.Encoding.DER))
    limit, edition = (
        (ISO15118_20_MAX_CERTIFICATE_BYTES, "ISO 15118-20")
        if standard == ISO15118_20
        else (ISO15118_2_MAX_CERTIFICATE_BYTES, "ISO 15118-2")
    )
    if size > limit:
        raise PolicyViolation(
            "iso15118.certificate-size",
            f"the certificate would be {size} bytes; {edition} messages carry at most {limit} (shorten the subject)",
        )
