"""``/api/v1/certificates``: issue, renew, look up, list, revoke and release certificates."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import PlainTextResponse

from api.deps import Caller, CallerDep, PkiDep, allow
from api.problems import PROBLEM_RESPONSES, Forbidden
from api.schemas import MAX_ROW_NUMBER, CertificateList, CertificateOut, IssuedOut, IssueIn, RevokeIn
from pki import PKI
from pki.ca import CERTIFICATE_STATUSES, CertificateFilter
from pki.core import parse_duration
from pki.operations import Role

router = APIRouter(prefix="/api/v1/certificates", tags=["certificates"], responses=PROBLEM_RESPONSES)
log = logging.getLogger("evpki.api")

# A CSMS integration issues what stations ask for over OCPP (SignCertificate), nothing else.
_CSMS_PROFILES = frozenset({"station", "secc"})
_MAX_PAGE = 1000


def _check_profile(caller_role: Role, profile: str) -> None:
    if caller_role is Role.CSMS and profile not in _CSMS_PROFILES:
        raise Forbidden(f"the csms role may issue only {', '.join(sorted(_CSMS_PROFILES))} certificates")


def _issue(pki: PKI, body: IssueIn, caller: Caller, *, renew: bool) -> IssuedOut:
    _check_profile(caller.role, body.profile)
    operation = pki.certificates.renew if renew else pki.certificates.issue
    result = operation(
        profile=body.profile,
        csr=body.csr,
        identity=body.identity.to_domain(),
        ca_id=body.ca,
        validity=parse_duration(body.validity) if body.validity else None,
        actor=caller.actor,
    )
    return IssuedOut(certificate=CertificateOut.of(result.certificate), chain_pem=result.chain_pem)


@router.post(
    "",
    status_code=201,
    summary="Issue a certificate from a CSR",
    description="The CSR is checked against the profile's policy; a refusal names its rule (422).",
    **allow(Role.OPERATOR, Role.CSMS),
)
def issue(body: IssueIn, pki: PkiDep, caller: CallerDep) -> IssuedOut:
    return _issue(pki, body, caller, renew=False)


@router.post(
    "/renew",
    status_code=201,
    summary="Renew: issue for the same identity with a new key; the old certificate becomes superseded",
    **allow(Role.OPERATOR, Role.CSMS),
)
def renew(body: IssueIn, pki: PkiDep, caller: CallerDep) -> IssuedOut:
    return _issue(pki, body, caller, renew=True)


@router.get("", summary="List certificates (filters, pagination)", **allow(Role.OPERATOR, Role.CSMS, Role.AUDITOR))
def list_certificates(
    pki: PkiDep,
    ca: Annotated[str | None, Query(description="issuing CA id")] = None,
    identity: Annotated[str | None, Query(description="station id, SECC id, eMAID, ...")] = None,
    profile: Annotated[str | None, Query(description="profile name")] = None,
    status: Annotated[str | None, Query(description=" | ".join(CERTIFICATE_STATUSES))] = None,
    expiring_within: Annotated[str | None, Query(alias="expiringWithin", description="e.g. 30d")] = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_NUMBER)] = 0,
) -> CertificateList:
    expiring_before = None
    if expiring_within:
        expiring_before = pki.clock.now() + parse_duration(expiring_within)
    flt = CertificateFilter(
        ca_id=ca,
        identity=identity,
        profile=profile,
        status=status,
        expiring_before=expiring_before,
        limit=limit + 1,  # one more tells whether another page exists
        offset=offset,
    )
    views = pki.certificates.list(flt)
    more = len(views) > limit
    return CertificateList(
        items=[CertificateOut.of(view) for view in views[:limit]],
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
    )


@router.get(
    "/{key}",
    summary="One certificate by serial (hex) or SHA-256 fingerprint",
    response_model=CertificateOut,
    responses={200: {"content": {"application/x-pem-file": {}}}},
    **allow(Role.OPERATOR, Role.CSMS, Role.AUDITOR),
)
def get_certificate(
    key: str,
    pki: PkiDep,
    ca: Annotated[str | None, Query(description="issuing CA, when a serial is ambiguous")] = None,
    format: Annotated[str, Query(pattern="^(json|pem)$", description="json (default) or pem")] = "json",
) -> CertificateOut | PlainTextResponse:
    view = pki.certificates.get(key, ca)
    if format == "pem":
        return PlainTextResponse(view.certificate_pem, media_type="application/x-pem-file")
    return CertificateOut.of(view)


@router.post("/{key}/revoke", summary="Revoke (or hold) a certificate", **allow(Role.OPERATOR))
def revoke(
    key: str,
    body: RevokeIn,
    pki: PkiDep,
    caller: CallerDep,
    tasks: BackgroundTasks,
    ca: Annotated[str | None, Query(description="issuing CA, when a serial is ambiguous")] = None,
) -> CertificateOut:
    view = pki.revocation.revoke(key, body.reason, ca_id=ca, actor=caller.actor, publish_crls=False)
    tasks.add_task(pki.crls.publish, view.issuer_id)  # after the response: OCSP already says so
    return CertificateOut.of(view)


@router.post("/{key}/release", summary="Release a certificate from certificateHold", **allow(Role.OPERATOR))
def release(
    key: str,
    pki: PkiDep,
    caller: CallerDep,
    tasks: BackgroundTasks,
    ca: Annotated[str | None, Query(description="issuing CA, when a serial is ambiguous")] = None,
) -> CertificateOut:
    view = pki.revocation.release_hold(key, ca_id=ca, actor=caller.actor, publish_crls=False)
    tasks.add_task(pki.crls.publish, view.issuer_id)  # after the response: OCSP already says so
    return CertificateOut.of(view)
