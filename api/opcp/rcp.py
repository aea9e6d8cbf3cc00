"""Root Certificate Pool routes (``rcp.v1.json``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from api.opcp.deps import SECURITY, PkiDep, PrincipalDep
from api.opcp.errors import responses
from api.opcp.schemas import RootCaIn
from pki.opcp import Operation, authorize

__all__ = ["router"]

router = APIRouter(tags=["RCP"])
_AUTH = (401, 403)


@router.get(
    "/v1/root/rootCerts",
    summary="getAllRootCerts: the V2G, MO and OEM roots of the pool",
    operation_id="getAllRootCerts",
    responses=responses(400, *_AUTH),
    openapi_extra=SECURITY,
)
def get_all_root_certs(
    pki: PkiDep,
    principal: PrincipalDep,
    root_type: str | None = Query(default=None, alias="rootType", max_length=8, description="mo, v2g or oem"),
) -> dict[str, Any]:
    authorize(principal, Operation.GET_ALL_ROOT_CERTS)
    roots = pki.opcp.rcp.list(root_type)
    return {"RootCertificateCollection": {"rootCertificates": [root.as_opcp() for root in roots]}}


@router.get(
    "/v1/root/rootCerts/{rootCertificateId}",
    summary="getRootCert: one root by its id",
    operation_id="getRootCert",
    responses=responses(400, *_AUTH, 404),
    openapi_extra=SECURITY,
)
def get_root_cert(rootCertificateId: str, pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:  # noqa: N803
    authorize(principal, Operation.GET_ROOT_CERT)
    return {"RootResponse": pki.opcp.rcp.get(rootCertificateId).as_opcp()}


@router.put(
    "/v1/root/rootCerts",
    summary="saveRootCa (pool operator): trust a root for its type",
    operation_id="saveRootCa",
    responses=responses(400, *_AUTH),
    openapi_extra=SECURITY,
)
def save_root_ca(body: RootCaIn, pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:
    authorize(principal, Operation.SAVE_ROOT_CA)
    root = pki.opcp.rcp.save(body.ca_certificate, body.root_type, actor=principal.actor)
    return {"RootResponse": root.as_opcp()}


@router.delete(
    "/v1/root/rootCerts/{rootCertificateId}",
    summary="deleteRootCa (pool operator): retire a root from the pool",
    operation_id="deleteRootCa",
    responses={200: {"description": "OK"}, **responses(400, *_AUTH, 404)},
    response_class=Response,
    openapi_extra=SECURITY,
)
def delete_root_ca(rootCertificateId: str, pki: PkiDep, principal: PrincipalDep) -> Response:  # noqa: N803
    authorize(principal, Operation.DELETE_ROOT_CA)
    pki.opcp.rcp.delete(rootCertificateId, actor=principal.actor)
    return Response(status_code=200)


@router.get(
    "/v1/root/ctl",
    summary="GetCertificateTrustList: every root of the pool, time-stamped (unsigned: OPCP defines no signer yet)",
    operation_id="GetCertificateTrustList",
    responses=responses(*_AUTH),
    openapi_extra=SECURITY,
)
def get_certificate_trust_list(pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:
    authorize(principal, Operation.GET_CERTIFICATE_TRUST_LIST)
    return pki.opcp.rcp.trust_list()
