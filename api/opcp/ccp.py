"""Contract Certificate Pool routes (``ccp.v1.json``) and the CPS signer list (``cps.v1.json``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from api.opcp.deps import SECURITY, PkiDep, PrincipalDep
from api.opcp.errors import responses
from api.opcp.schemas import SignedContractDataRequestBody, StoredContractDataBody
from pki.core import InvalidInput

__all__ = ["router"]

router = APIRouter(tags=["CCP"])
_AUTH = (401, 403)
_NAMESPACE = Query(alias="xsdMsgDefNamespace", max_length=64)


@router.post(
    "/v1/ccp/signedContractData",
    summary="getSignedContractData (CPO): the car's CertificateInstallationReq in, signed contract data out",
    operation_id="getSignedContractData",
    responses=responses(400, *_AUTH, 404),
    openapi_extra=SECURITY,
)
def get_signed_contract_data(
    body: SignedContractDataRequestBody,
    pki: PkiDep,
    principal: PrincipalDep,
    always_return_exi: Annotated[bool, Header(alias="alwaysReturnEXI")] = True,
) -> dict[str, Any]:
    data = pki.opcp.ccp.signed_contract_data(
        principal,
        body.certificate_installation_req,
        body.xsd_msg_def_namespace,
        always_return_exi=always_return_exi,
    )
    return {"CCPResponse": {"emaidContent": [entry.as_opcp() for entry in data]}}


@router.put(
    "/v1/ccp/signedContractData",
    summary="addSignedContractData (CPS, MO): store CPS-signed contract data for a vehicle",
    operation_id="addSignedContractData",
    status_code=201,
    responses={201: {"description": "Created"}, **responses(400, *_AUTH)},
    response_class=Response,
    openapi_extra=SECURITY,
)
def add_signed_contract_data(body: StoredContractDataBody, pki: PkiDep, principal: PrincipalDep) -> Response:
    if body.xsd_msg_def_namespace != "urn:iso:15118:2:2013:MsgDef":
        raise InvalidInput("xsdMsgDefNamespace : the pool stores signed contract data of urn:iso:15118:2:2013:MsgDef")
    pki.opcp.ccp.store(
        principal,
        pcid=body.pcid,
        emaid=body.emaid,
        signed_data=body.signed_data,
        root_id=body.cps_root_id,
    )
    return Response(status_code=201)


@router.delete(
    "/v1/ccp/signedContractData/{emaid}",
    summary="deleteSignedContractData (MO): remove (revoke) one of the MO's contracts",
    operation_id="deleteSignedContractData",
    responses={200: {"description": "OK"}, **responses(400, *_AUTH, 404)},
    response_class=Response,
    openapi_extra=SECURITY,
)
def delete_signed_contract_data(
    emaid: str,
    pki: PkiDep,
    principal: PrincipalDep,
    skip_revocation: Annotated[bool, Header(alias="X-Skip-Revocation")] = False,
) -> Response:
    pki.opcp.ccp.delete(principal, emaid, skip_revocation=skip_revocation)
    return Response(status_code=200)


@router.get(
    "/v1/ccp/lookupContract/{emaid}",
    summary="lookupContract (MO): one of the MO's contracts by eMAID",
    operation_id="lookupContract",
    responses=responses(400, *_AUTH, 404),
    openapi_extra=SECURITY,
)
def lookup_contract(
    emaid: str,
    pki: PkiDep,
    principal: PrincipalDep,
    xsd_msg_def_namespace: Annotated[str | None, _NAMESPACE] = None,
) -> dict[str, Any]:
    return {"XMLContracts": pki.opcp.ccp.lookup_contract(principal, emaid, xsd_msg_def_namespace)}


@router.get(
    "/v1/ccp/provideSignedContractData/{emaid}/{pcid}",
    summary="provideSignedContractData (OEM): a vehicle's stored signed contract data, without the car's request",
    operation_id="provideSignedContractData",
    responses=responses(400, *_AUTH, 404),
    openapi_extra=SECURITY,
)
def provide_signed_contract_data(
    emaid: str,
    pcid: str,
    pki: PkiDep,
    principal: PrincipalDep,
    session_id: Annotated[str | None, Query(alias="sessionID", max_length=64)] = None,
    xsd_msg_def_namespace: Annotated[str | None, _NAMESPACE] = None,
    cps_root_id: Annotated[str | None, Query(alias="cpsV2GRootCertificateFingerprint", max_length=64)] = None,
) -> dict[str, Any]:
    return pki.opcp.ccp.provide(
        principal,
        emaid,
        pcid,
        session_id=session_id,
        xsd_msg_def_namespace=xsd_msg_def_namespace,
        cps_root_id=cps_root_id,
    )


@router.post(
    "/v1/ccp/signedContractData/{pcid}/{emaid}/default",
    summary="setDefaultContract (OEM): the contract a vehicle installs first",
    operation_id="setDefaultContract",
    responses={200: {"description": "OK"}, **responses(400, *_AUTH, 404)},
    response_class=Response,
    openapi_extra=SECURITY,
)
def set_default_contract(pcid: str, emaid: str, pki: PkiDep, principal: PrincipalDep) -> Response:
    pki.opcp.ccp.set_default(principal, pcid, emaid)
    return Response(status_code=200)


@router.get(
    "/v1/ccp/signedContractData/{pcid}",
    summary="getContracts (OEM): a vehicle's contracts, the default one marked",
    operation_id="getContracts",
    responses=responses(400, *_AUTH),
    openapi_extra=SECURITY,
)
def get_contracts(
    pcid: str,
    pki: PkiDep,
    principal: PrincipalDep,
    xsd_msg_def_namespace: Annotated[str | None, _NAMESPACE] = None,
) -> dict[str, Any]:
    return {"XMLContracts": pki.opcp.ccp.contracts_of(principal, pcid, xsd_msg_def_namespace)}


@router.get(
    "/cps/signer",
    summary="getAllCpsSigners: the CPS certificates that sign contract data here",
    operation_id="getAllCpsSigners",
    responses=responses(*_AUTH),
    tags=["CPS"],
    openapi_extra=SECURITY,
)
def get_all_cps_signers(pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:
    return {"cpsCertificates": pki.opcp.ccp.cps_signers(principal)}
