"""``/api/v1/cas``: the certificate authorities, their certificates and chains; CAs under external parents
(their requests, installing what the external CA signed) for ``operator``."""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Query, Response

from api.deps import CallerDep, PkiDep, allow
from api.problems import PROBLEM_RESPONSES
from api.schemas import CaInstallIn, CaInstallOut, CaOut, CaRequestOut
from pki.operations import Role

router = APIRouter(prefix="/api/v1/cas", tags=["certificate authorities"], responses=PROBLEM_RESPONSES)

# The CAs under an external parent that await their certificate are not CAs yet: a list of their own.
requests_router = APIRouter(prefix="/api/v1/ca-requests", tags=["certificate authorities"], responses=PROBLEM_RESPONSES)
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


@router.get(
    "/{ca_id}/request",
    summary="The PKCS#10 request of a CA awaiting its certificate from an external parent (PEM)",
    description="404 for a CA that has its certificate or does not exist.",
    response_class=Response,
    responses={200: {"content": {"application/pkcs10": {"example": "-----BEGIN CERTIFICATE REQUEST-----\n..."}}}},
    **allow(Role.OPERATOR),
)
def ca_request(ca_id: str, pki: PkiDep) -> Response:
    return Response(pki.cas.request(ca_id).csr_pem, media_type="application/pkcs10")


@router.post(
    "/{ca_id}/certificate",
    status_code=201,
    summary="Install the certificate an external CA signed for one of our CAs",
    description=(
        "Everything is checked before anything is written; a refusal is 422 naming the rule (`install.key`, "
        "`install.subject`, `install.basic-constraints`, `install.path-length`, `install.key-usage`, `install.eku`, "
        "`install.ski`, `install.validity`, `install.chain`, `install.anchor`, `iso15118.certificate-size`, "
        "`iso15118.algorithm`, `iso15118.chain-depth`); a CA that already has its certificate is 409, one that "
        "awaits none 404. The root at the end of the path must be in the trust store or in `chain` (it is then "
        "trusted for the PKI's root use). The CAs and leaves of the hierarchy that waited for this CA are created."
    ),
    **allow(Role.OPERATOR),
)
def install_certificate(ca_id: str, body: CaInstallIn, pki: PkiDep, caller: CallerDep) -> CaInstallOut:
    return CaInstallOut.of(pki.cas.install(ca_id, body.certificate, chain=body.chain, actor=caller.actor))


@requests_router.get(
    "",
    summary="The CAs awaiting their certificate from an external parent, with their requests",
    **allow(Role.OPERATOR, Role.AUDITOR),
)
def list_awaiting(pki: PkiDep) -> list[CaRequestOut]:
    return [CaRequestOut.of(view) for view in pki.cas.awaiting()]
