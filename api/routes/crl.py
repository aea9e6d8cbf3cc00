"""``/crl/{ca}.crl`` and ``/crl/{ca}-delta.crl``: CRL distribution points (public, DER).

The URLs are the ones every issued certificate carries (CRL Distribution Points, Freshest
CRL). A stale CRL -- one that predates a status change or nears its nextUpdate -- is
regenerated on the fetch, so the file served is never older than the database.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.caching import cached_response
from api.deps import PkiDep, public
from api.problems import PROBLEM_RESPONSES
from pki.core import NotFound

router = APIRouter(prefix="/crl", tags=["CRL"], responses=PROBLEM_RESPONSES)

PKIX_CRL = "application/pkix-crl"


@router.get(
    "/{name}",
    summary="The current full ({ca}.crl) or delta ({ca}-delta.crl) CRL of a CA, DER",
    response_class=Response,
    responses={200: {"content": {PKIX_CRL: {"schema": {"type": "string", "format": "binary"}}}}},
    **public(),
)
def get_crl(name: str, request: Request, pki: PkiDep) -> Response:
    if not name.endswith(".crl"):
        raise NotFound(f"no CRL at /crl/{name}; use /crl/<ca>.crl or /crl/<ca>-delta.crl")
    stem = name[: -len(".crl")]
    delta = stem.endswith("-delta") and stem not in {ca.id for ca in pki.cas.list()}
    ca_id = stem[: -len("-delta")] if delta else stem
    crl = pki.crls.current(ca_id, delta=delta)
    return cached_response(
        request,
        crl.der,
        PKIX_CRL,
        now=pki.clock.now(),
        this_update=crl.this_update,
        next_update=crl.next_update,
        etag=crl.etag,
        max_age_cap=pki.settings.duration("ocsp_max_age"),
    )
