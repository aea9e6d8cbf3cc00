"""``/api/v1/cas``: the certificate authorities, their certificates and chains."""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Query, Response

from api.deps import PkiDep, allow
from api.problems import PROBLEM_RESPONSES
from api.schemas import CaOut
from pki.operations import Role

router = APIRouter(prefix="/api/v1/cas", tags=["certificate authorities"], responses=PROBLEM_RESPONSES)

_READ = allow(Role.OPERATOR, Role.CSMS, Role.AUDITOR)
_PEM = {"application/pem-certificate-chain": {"example": "-----BEGIN CERTIFICATE-----\n...\n"}}


@router.get("", summary="List the CAs", **_READ)
def list_cas(pki: PkiDep) -> list[CaOut]:
    return [CaOut.of(view) for view in pki.cas.list()]


@router.get("/{ca_id}", summary="Show one CA", **_READ)
def get_ca(ca_id: str, pki: PkiDep) -> CaOut:
    return CaOut.of(pki.cas.get(ca_id))


@router.get(
    "/{ca_id}/certificate",
    summary="The CA certificate (PEM or DER)",
    response_class=Response,
    responses={200: {"content": {**_PEM, "application/pkix-cert": {}}}},
    **_READ,
)
def ca_certificate(
    ca_id: str, pki: PkiDep, format: Literal["pem", "der"] = Query("pem", description="pem or der")
) -> Response:
    certificate = pki.cas.chain(ca_id)[0]
    if format == "der":
        return Response(certificate.public_bytes(serialization.Encoding.DER), media_type="application/pkix-cert")
    return Response(
        certificate.public_bytes(serialization.Encoding.PEM), media_type="application/pem-certificate-chain"
    )


@router.get(
    "/{ca_id}/chain",
    summary="The CA certificate and its ancestors, root last (PEM)",
    response_class=Response,
    responses={200: {"content": _PEM}},
    **_READ,
)
def ca_chain(ca_id: str, pki: PkiDep) -> Response:
    body = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in pki.cas.chain(ca_id))
    return Response(body, media_type="application/pem-certificate-chain")
