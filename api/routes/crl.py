"""``/crl/{ca}.crl`` and ``/crl/{ca}-delta.crl``: CRL distribution points (public, DER).

The URLs are the ones every issued certificate carries (CRL Distribution Points, Freshest
CRL). A stale CRL -- one that predates a status change or nears its nextUpdate -- is
regenerated on the fetch, so the file served is never older than the database.
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from fastapi import APIRouter, Request, Response

from api.deps import PkiDep, public
from api.problems import PROBLEM_RESPONSES
from pki.errors import NotFound

router = APIRouter(prefix="/crl", tags=["CRL"], responses=PROBLEM_RESPONSES)

PKIX_CRL = "application/pkix-crl"


def _http_date(when: dt.datetime) -> str:
    return format_datetime(when.astimezone(dt.UTC), usegmt=True)


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
    delta = stem.endswith("-delta") and stem not in {ca.id for ca in pki.list_cas()}
    ca_id = stem[: -len("-delta")] if delta else stem
    crl = pki.current_crl(ca_id, delta=delta)
    now = pki.clock.now()
    max_age = int(min((crl.next_update - now).total_seconds(), pki.settings.duration("ocsp_max_age").total_seconds()))
    max_age = max(max_age, 0)
    headers = {
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        "Expires": _http_date(now + dt.timedelta(seconds=max_age)),
        "Last-Modified": _http_date(crl.this_update),
        "ETag": crl.etag,
    }
    if request.headers.get("if-none-match") == crl.etag:
        return Response(status_code=304, headers=headers)
    return Response(crl.der, media_type=PKIX_CRL, headers=headers)
