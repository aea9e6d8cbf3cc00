"""``/api/v1/contracts``: the ISO 15118 contract registry (which vehicle holds which eMAID)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Path, Query, Response

from api.deps import CallerDep, PkiDep, allow
from api.problems import PROBLEM_RESPONSES
from api.schemas import MAX_ROW_NUMBER, ContractIn, ContractList, ContractOut, ContractRevocationOut, ContractRevokeIn
from pki.core import parse_duration
from pki.iso15118 import CONTRACT_STATUSES
from pki.operations import Role

router = APIRouter(prefix="/api/v1/contracts", tags=["contracts"], responses=PROBLEM_RESPONSES)
_MAX_PAGE = 1000

# The path parameter is ``key``, as for certificates: the eMAID, with or without hyphens.
EmaidPath = Annotated[str, Path(description="eMAID, with or without hyphens (DE-ABC-C123ABC56)", max_length=32)]


@router.post(
    "",
    status_code=201,
    summary="Register a contract: vehicle (PCID) holds eMAID",
    description=(
        "A vehicle holds one contract at a time: a contract whose period overlaps another unrevoked contract "
        "of the same PCID is refused (409), unless it is added with `concurrent: true` (ISO 15118-20 hands a car "
        "several contract chains); `priority` orders a vehicle's contracts, lower first. `Location` names the "
        "new contract."
    ),
    **allow(Role.OPERATOR),
)
def add_contract(body: ContractIn, pki: PkiDep, caller: CallerDep, response: Response) -> ContractOut:
    view = pki.contracts.add(
        emaid=body.emaid,
        pcid=body.pcid,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        validity=parse_duration(body.validity) if body.validity else None,
        note=body.note,
        priority=body.priority,
        concurrent=body.concurrent,
        actor=caller.actor,
    )
    response.headers["Location"] = f"{router.prefix}/{view.emaid}"
    return ContractOut.of(view)


@router.get("", summary="List contracts (filters, pagination)", **allow(Role.OPERATOR, Role.CSMS, Role.AUDITOR))
def list_contracts(
    pki: PkiDep,
    pcid: Annotated[str | None, Query(max_length=32, description="only this vehicle's contracts")] = None,
    status: Annotated[str | None, Query(description=" | ".join(CONTRACT_STATUSES))] = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_NUMBER)] = 0,
) -> ContractList:
    # One more than asked tells whether another page exists.
    views = pki.contracts.list(pcid=pcid, status=status, limit=limit + 1, offset=offset)
    more = len(views) > limit
    return ContractList(
        items=[ContractOut.of(view) for view in views[:limit]],
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
    )


@router.get(
    "/{key}",
    summary="One contract by eMAID, with its current contract certificate",
    **allow(Role.OPERATOR, Role.CSMS, Role.AUDITOR),
)
def get_contract(key: EmaidPath, pki: PkiDep) -> ContractOut:
    return ContractOut.of(pki.contracts.get(key))


@router.post(
    "/{key}/revoke",
    summary="Revoke a contract and its usable contract certificates (cessationOfOperation)",
    **allow(Role.OPERATOR),
)
def revoke_contract(
    key: EmaidPath,
    pki: PkiDep,
    caller: CallerDep,
    tasks: BackgroundTasks,
    body: Annotated[ContractRevokeIn | None, Body()] = None,
) -> ContractRevocationOut:
    result = pki.contracts.revoke(key, note=body.note if body else None, actor=caller.actor, publish_crls=False)
    for ca_id in sorted({ref.issuer_id for ref in result.revoked_certificates}):
        tasks.add_task(pki.crls.publish, ca_id)
    return ContractRevocationOut.of(result)
