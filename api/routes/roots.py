"""``/api/v1/roots``: the roots a station installs, by OCPP ``InstallCertificateUse`` (public)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Query, Response

from api.deps import PkiDep, public
from api.problems import PROBLEM_RESPONSES
from pki.ca import RootUse

router = APIRouter(prefix="/api/v1/roots", tags=["roots"], responses=PROBLEM_RESPONSES)


@router.get(
    "",
    summary="Root certificates for one OCPP certificate use (PEM, newest first)",
    response_class=Response,
    responses={200: {"content": {"application/pem-certificate-chain": {}}}},
    **public(),
)
def roots(
    pki: PkiDep,
    use: RootUse = Query(description="OCPP InstallCertificateUse, e.g. V2GRootCertificate"),  # noqa: B008
) -> Response:
    body = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in pki.cas.roots(use))
    return Response(body, media_type="application/pem-certificate-chain")
