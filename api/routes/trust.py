"""``/api/v1/trust``: the trust store of foreign roots (``operator`` writes; ``csms`` and ``auditor`` read)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import CallerDep, PkiDep, allow
from api.problems import PROBLEM_RESPONSES
from api.schemas import TrustedRootIn, TrustedRootList, TrustedRootOut, TrustImportIn, TrustImportOut
from pki.ca import RootUse
from pki.core import InvalidInput
from pki.operations import Role

router = APIRouter(prefix="/api/v1/trust", tags=["trust"], responses=PROBLEM_RESPONSES)

KeyPath = Annotated[str, Path(description="the root's SHA-256 fingerprint (hex) or its label", max_length=100)]
UseQuery = Annotated[RootUse | None, Query(description="the use, when the root is trusted for several")]
_READERS = (Role.OPERATOR, Role.CSMS, Role.AUDITOR)


@router.post(
    "",
    status_code=201,
    summary="Trust a foreign root for one OCPP root use",
    description=(
        "Refused (422, `rule`) unless the certificate is a CA (`trust.ca`), self-signed (`trust.self-signed`), "
        "valid now (`trust.expired`, `trust.not-yet-valid`) and has a key policy accepts (`key.*`); a root already "
        "trusted for the use, or a label in use, is 409. `Location` names the new entry."
    ),
    **allow(Role.OPERATOR),
)
def add_root(body: TrustedRootIn, pki: PkiDep, caller: CallerDep, response: Response) -> TrustedRootOut:
    view = pki.trust.add(body.certificate, use=body.use, label=body.label, actor=caller.actor)
    response.headers["Location"] = f"{router.prefix}/{view.sha256}?use={view.use.value}"
    return TrustedRootOut.of(view)


@router.get("", summary="The trusted foreign roots, newest first", **allow(*_READERS))
def list_roots(
    pki: PkiDep,
    use: Annotated[RootUse | None, Query(description="only roots of this use")] = None,
    include_removed: Annotated[bool, Query(alias="includeRemoved", description="also removed roots")] = False,
) -> TrustedRootList:
    views = pki.trust.list(use=use, include_retired=include_removed)
    return TrustedRootList(items=[TrustedRootOut.of(view) for view in views])


@router.post(
    "/import",
    summary="Trust every acceptable root of a PEM bundle or an OPCP Certificate Trust List",
    description=(
        "Idempotent: roots already trusted for their use are `unchanged`; refused roots are listed with the "
        "reason and do not stop the others. A body that cannot be read is 400 and changes nothing."
    ),
    **allow(Role.OPERATOR),
)
def import_roots(body: TrustImportIn, pki: PkiDep, caller: CallerDep) -> TrustImportOut:
    if (body.pem is None) == (body.ctl is None):
        raise InvalidInput("send exactly one of pem (a PEM bundle) and ctl (a Certificate Trust List)")
    data = body.pem.encode() if body.pem is not None else json.dumps(body.ctl).encode()
    return TrustImportOut.of(pki.trust.import_data(data, use=body.use, actor=caller.actor))


@router.get("/{key}", summary="One trusted (or removed) root", **allow(*_READERS))
def get_root(key: KeyPath, pki: PkiDep, use: UseQuery = None) -> TrustedRootOut:
    return TrustedRootOut.of(pki.trust.get(key, use=use))


@router.delete(
    "/{key}",
    summary="Remove (retire) a trusted root: no longer offered to stations nor trusted; its entry is kept",
    **allow(Role.OPERATOR),
)
def remove_root(key: KeyPath, pki: PkiDep, caller: CallerDep, use: UseQuery = None) -> TrustedRootOut:
    return TrustedRootOut.of(pki.trust.remove(key, use=use, actor=caller.actor))
