"""Provisioning Certificate Pool routes (``pcp.v1.json``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.opcp.deps import SECURITY, PkiDep, PrincipalDep
from api.opcp.errors import responses
from api.opcp.schemas import ProvisioningCertificateBody
from pki.opcp import ProvisioningCertificateIn

__all__ = ["router"]

router = APIRouter(tags=["PCP"])
_AUTH = (401, 403)


@router.put(
    "/v1/oem/provCerts",
    summary="addOEMProvCert (OEM): publish or replace a vehicle's provisioning certificate chain",
    operation_id="addOEMProvCert",
    responses=responses(400, *_AUTH),
    openapi_extra=SECURITY,
)
def add_oem_prov_cert(body: ProvisioningCertificateBody, pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:
    data = ProvisioningCertificateIn(
        sub_ca1_certificate=body.sub_ca1_certificate,
        vehicle_certificate=body.vehicle_certificate,
        sub_ca2_certificate=body.sub_ca2_certificate,
        xsd_msg_def_namespace=body.xsd_msg_def_namespace,
        v2g_root_authority_key_identifiers=tuple(body.v2g_root_authority_key_identifiers),
        previous_pcid=body.previous_pcid,
    )
    return pki.opcp.pcp.publish(principal, data).as_opcp()


@router.get(
    "/v1/oem/provCerts/lookupVehicle/{pcid}",
    summary="lookupVehicle: 200 when a provisioning certificate is held for the PCID",
    operation_id="lookupVehicle",
    responses={200: {"description": "OK"}, **responses(400, *_AUTH, 404)},
    response_class=Response,
    openapi_extra=SECURITY,
)
def lookup_vehicle(pcid: str, pki: PkiDep, principal: PrincipalDep) -> Response:
    pki.opcp.pcp.lookup(principal, pcid)
    return Response(status_code=200)


@router.get(
    "/v1/oem/provCerts/{pcid}",
    summary="getOEMProvCert: a vehicle's provisioning certificate chain",
    operation_id="getOEMProvCert",
    responses=responses(400, *_AUTH, 404),
    openapi_extra=SECURITY,
)
def get_oem_prov_cert(pcid: str, pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:
    return {"OEMMessage": pki.opcp.pcp.get(principal, pcid).as_opcp()}


@router.delete(
    "/v1/oem/provCerts/{pcid}",
    summary="deleteOEMProvCert (OEM): depublish a vehicle's provisioning certificate",
    operation_id="deleteOEMProvCert",
    responses={200: {"description": "OK"}, **responses(400, *_AUTH, 404)},
    response_class=Response,
    openapi_extra=SECURITY,
)
def delete_oem_prov_cert(pcid: str, pki: PkiDep, principal: PrincipalDep) -> Response:
    pki.opcp.pcp.delete(principal, pcid)
    return Response(status_code=200)
