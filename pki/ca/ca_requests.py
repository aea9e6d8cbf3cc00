"""A CA whose parent we do not run: the PKCS#10 request that asks the external CA for its certificate.

``evpki init`` creates the key of such a CA (file or PKCS#11) and stores the request in
``ca_request``; the CA issues nothing until :mod:`pki.ca.foreign_install` installs what the
external CA signed. The request carries what the CA's profile asks for (RFC 2986 extensionRequest,
RFC 2985 §5.4.2): basicConstraints cA with the path length of the hierarchy file, keyUsage
keyCertSign and cRLSign, and the subject key identifier the CA will use.

The key may live in a token, so the request is not signed by ``cryptography``'s builder (which
needs the private key object): the builder shapes it with a throw-away key of the same algorithm,
the real public key is put in, and the CA's signer signs the CertificationRequestInfo.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from pki.ca.authority import short_key_identifier
from pki.ca.hierarchy import CaSpec
from pki.core.algorithms import describe_key, generate_private_key, signature_hash, signature_padding
from pki.core.errors import NotFound
from pki.keys.base import Signer
from pki.operations import audit
from pki.runtime.context import ISO15118_2, ISO15118_20
from pki.store.models import CaRequestRow

__all__ = ["CaRequestView", "build_ca_request", "record_ca_request", "request_view", "subject_key_identifier"]

_DER = serialization.Encoding.DER


@dataclass(frozen=True, slots=True)
class CaRequestView:
    """A CA awaiting its certificate from an external parent."""

    id: str
    pki: str
    standard: str
    subject: str
    path_length: int | None
    issues: tuple[str, ...]
    key_backend: str
    created_at: dt.datetime
    csr_pem: str
    successor_of: str | None = None  # a rollover: the CA it replaces once installed


def request_view(row: CaRequestRow) -> CaRequestView:
    csr = x509.load_der_x509_csr(row.csr)
    return CaRequestView(
        id=row.id,
        pki=row.pki,
        standard=row.standard,
        subject=csr.subject.rfc4514_string(),
        path_length=row.path_length,
        issues=tuple(p for p in row.issues.split(",") if p),
        key_backend=row.key_backend,
        created_at=row.created_at,
        csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
        successor_of=row.successor_of,
    )


def subject_key_identifier(public_key: object, standard: str) -> x509.SubjectKeyIdentifier:
    """The SKI our own certificates of that standard carry (short for ISO 15118-2, see authority)."""
    if standard in (ISO15118_2, ISO15118_20):
        return short_key_identifier(public_key)  # type: ignore[arg-type]
    return x509.SubjectKeyIdentifier.from_public_key(public_key)  # type: ignore[arg-type]


def build_ca_request(signer: Signer, spec: CaSpec) -> x509.CertificateSigningRequest:
    """The CA's PKCS#10 request, signed by its own key through ``signer``."""
    public = signer.public_key()
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(spec.subject)
        .add_extension(x509.BasicConstraints(ca=True, path_length=spec.path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(subject_key_identifier(public, spec.pki.standard), critical=False)
    )
    shape_key = generate_private_key(describe_key(public).name)
    shaped = builder.sign(
        shape_key,  # type: ignore[arg-type]
        signature_hash(public),  # type: ignore[arg-type]
        rsa_padding=signature_padding(public, spec.pki.rsa_pss),  # type: ignore[arg-type]
    )
    request = asn1_csr.CertificationRequest.load(shaped.public_bytes(_DER))
    info = request["certification_request_info"]
    info["subject_pk_info"] = asn1_keys.PublicKeyInfo.load(
        public.public_bytes(_DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    info_der = info.dump(force=True)
    signed = asn1_csr.CertificationRequest(
        {
            "certification_request_info": asn1_csr.CertificationRequestInfo.load(info_der),
            "signature_algorithm": request["signature_algorithm"],
            "signature": signer.sign_bytes(info_der, rsa_pss=spec.pki.rsa_pss),
        }
    )
    csr = x509.load_der_x509_csr(signed.dump())
    if not csr.is_signature_valid:  # the signer and the shape disagree: never hand such a request out
        raise AssertionError(f"the request of CA {spec.id} does not verify with its own key")
    return csr


def record_ca_request(
    session: Session,
    spec: CaSpec,
    csr: x509.CertificateSigningRequest,
    *,
    key_id: str,
    key_backend: str,
    now: dt.datetime,
    actor: str,
    successor_of: str | None = None,
) -> CaRequestRow:
    row = CaRequestRow(
        id=spec.id,
        pki=spec.pki.name,
        standard=spec.pki.standard,
        key_id=key_id,
        key_backend=key_backend,
        issues=",".join(p.value for p in spec.issues),
        rsa_pss=spec.pki.rsa_pss,
        path_length=spec.path_length,
        csr=csr.public_bytes(_DER),
        created_at=now,
        successor_of=successor_of,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        at=now,
        actor=actor,
        action="ca-request",
        ca_id=None,
        details={
            "ca": spec.id,
            "subject": csr.subject.rfc4514_string(),
            "path_length": spec.path_length,
            "successor_of": successor_of,
        },
    )
    return row


def awaiting(session: Session, ca_id: str) -> CaRequestRow:
    row = session.get(CaRequestRow, ca_id)
    if row is None:
        raise NotFound(f"CA {ca_id!r} is not awaiting a certificate; `evpki ca list` shows the CAs")
    return row
