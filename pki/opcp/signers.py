"""Which of our CPS leaves signs OPCP contract data: the newest usable ISO 15118-2 one, below the V2G
root the caller names by its RCP id (``cpsV2GRootCertificateFingerprint``) or below any of ours."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from sqlalchemy.orm import Session

from pki.ca.profiles import ProfileName
from pki.ca.root_uses import RootUse
from pki.core.errors import InvalidInput, Unavailable
from pki.iso15118.cps import CpsChain, find_cps_chain
from pki.iso15118.messages import RootCertificateId
from pki.opcp.certinfo import fingerprints
from pki.opcp.rcp import root_certificate_id
from pki.runtime.context import ISO15118_2, CaDirectory, Context

__all__ = ["cps_chain_below"]


def cps_chain_below(
    ctx: Context, session: Session, directory: CaDirectory, wanted: str | None, now: dt.datetime
) -> tuple[CpsChain, x509.Certificate]:
    """The newest usable ISO 15118-2 CPS leaf below V2G root ``wanted`` (its RCP id) or any of our V2G roots."""
    roots: dict[str, x509.Certificate] = {}
    for ca in directory.cas.values():
        if ProfileName.CPS_LEAF.value in ca.issues and ca.standard == ISO15118_2:
            anchor = directory.anchor(ca.id)
            roots[root_certificate_id(RootUse.V2G, fingerprints(anchor)[0])] = anchor
    if wanted is not None:
        if wanted not in roots:
            raise InvalidInput(f"cpsV2GRootCertificateFingerprint : no CPS of ours signs below V2G root {wanted}")
        roots = {wanted: roots[wanted]}
    for root in roots.values():
        chain = find_cps_chain(
            ctx,
            session,
            directory,
            (RootCertificateId(root.issuer.rfc4514_string(), root.serial_number),),
            now,
            standard=ISO15118_2,
        )
        if chain is not None:
            return chain, root
    raise Unavailable("no usable ISO 15118-2 CPS certificate to sign contract data with")
