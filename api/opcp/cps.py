"""Certificate Provisioning Service routes (``cps.v1.json``) for MOs with their own PKI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.opcp.deps import SECURITY, PkiDep, PrincipalDep
from api.opcp.errors import responses
from api.opcp.schemas import CreateSignedContractDataBody, SignContractDataBody
from pki.opcp import ContractDataIn

__all__ = ["router"]

router = APIRouter(tags=["CPS"])
_ERRORS = responses(400, 401, 403, 503)


@router.put(
    "/v1/cps/signedContractData",
    summary="createSignedContractData (MO with own PKI): the CPS signs the MO's contract data",
    operation_id="createSignedContractData",
    responses=_ERRORS,
    openapi_extra=SECURITY,
)
def create_signed_contract_data(
    body: CreateSignedContractDataBody, pki: PkiDep, principal: PrincipalDep
) -> dict[str, Any]:
    return pki.opcp.cps.sign(principal, _chain_data(body)).as_opcp()


def _chain_data(body: CreateSignedContractDataBody) -> ContractDataIn:
    chain = body.contract_data.contract_signature_cert_chain
    return ContractDataIn(
        emaid=body.emaid,
        contract_certificate=chain.certificate,
        sub_certificates=tuple(chain.sub_certificates),
        encrypted_private_key=body.contract_data.encrypted_private_key,
        dh_public_key=body.contract_data.dh_public_key,
        pcid=body.pcid,
        xsd_msg_def_namespace=body.xsd_msg_def_namespace,
        cps_root_id=body.cps_root_id,
    )


@router.put(
    "/v1/cps/forward/signedContractData",
    summary="createAndForwardSignedContractData (MO with own PKI): sign the MO's contract data and store it in the CCP",
    operation_id="createAndForwardSignedContractData",
    status_code=201,
    responses=_ERRORS,
    openapi_extra=SECURITY,
)
def create_and_forward_signed_contract_data(
    body: CreateSignedContractDataBody, pki: PkiDep, principal: PrincipalDep
) -> JSONResponse:
    pki.opcp.cps.forward(principal, _chain_data(body))
    return JSONResponse({}, status_code=201)


@router.put(
    "/v1/cps/contractData/signed",
    summary="contractData/signed (MO with own PKI): the CPS signs the MO's contract data (eMAID from its certificate)",
    operation_id="signContractData",
    status_code=201,
    responses=_ERRORS,
    openapi_extra=SECURITY,
)
def sign_contract_data(body: SignContractDataBody, pki: PkiDep, principal: PrincipalDep) -> JSONResponse:
    supplied = body.contract_data
    data = ContractDataIn(
        emaid=None,
        contract_certificate=supplied.contract_certificate,
        sub_certificates=tuple(c for c in (supplied.sub_ca2, supplied.sub_ca1) if c),
        encrypted_private_key=supplied.encrypted_private_key,
        dh_public_key=supplied.dh_public_key,
        pcid=body.pcid,
        xsd_msg_def_namespace=body.xsd_msg_def_namespace,
        cps_root_id=body.cps_root_id,
    )
    return JSONResponse(pki.opcp.cps.sign(principal, data).as_opcp(), status_code=201)
