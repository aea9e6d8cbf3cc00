"""Full CRLs (RFC 5280 §5): built in one pass from the database's revocation entries.

The whole entry list goes to ``CertificateRevocationListBuilder(revoked_certificates=...)``
at once (the per-entry ``add_revoked_certificate`` loop is quadratic), and entries are built
with the builder's constructor rather than its chained setters, which halves the cost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509

from pki.clock import utc
from pki.keys.base import Signer
from pki.revocation import RevocationReason

__all__ = ["build_crl"]

_REASON_EXTENSIONS = {
    reason.value: x509.Extension(x509.CRLReason.oid, False, x509.CRLReason(reason.flag))
    for reason in RevocationReason
    # RFC 5280 §5.3.1: the reason code SHOULD be absent rather than "unspecified".
    if reason is not RevocationReason.UNSPECIFIED
}


def build_crl(
    *,
    issuer: x509.Certificate,
    signer: Signer,
    rsa_pss: bool,
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    entries: Iterable[tuple[str, dt.datetime, str]],
) -> x509.CertificateRevocationList:
    make = x509.RevokedCertificateBuilder
    revoked = []
    for serial, revoked_at, reason in entries:
        extension = _REASON_EXTENSIONS.get(reason)
        revoked.append(
            make(int(serial, 16), utc(revoked_at), [extension] if extension else []).build()
        )
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=this_update,
        next_update=next_update,
        extensions=[
            x509.Extension(
                x509.AuthorityKeyIdentifier.oid,
                False,
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            ),
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
        ],
        revoked_certificates=revoked,
    )
    return signer.sign_crl(builder, rsa_pss=rsa_pss)
