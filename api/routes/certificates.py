"""``/api/v1/certificates``: issue (one, or many at once), renew, look up, list, revoke and release certificates."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import PlainTextResponse, Response

from api.deps import Caller, CallerDep, PkiDep, allow
from api.problems import PROBLEM_RESPONSES, Forbidden, domain_problem
from api.schemas import (
    MAX_ROW_NUMBER,
    CertificateList,
    CertificateOut,
    IssueBatchIn,
    IssueBatchItemOut,
    IssueBatchOut,
    IssuedOut,
    IssueIn,
    Problem,
    RevokeIn,
)
from pki.ca import BATCH_LIMIT, CERTIFICATE_STATUSES, CertificateFilter, CertificateRequest
from pki.core import EvpkiError, parse_duration
from pki.operations import Role
from pki.runtime import IssuedCertificate

router = APIRouter(prefix="/api/v1/certificates", tags=["certificates"], responses=PROBLEM_RESPONSES)
log = logging.getLogger("evpki.api")

# A CSMS integration issues what stations ask for over OCPP (SignCertificate), nothing else.
_CSMS_PROFILES = frozenset({"station", "secc"})
_MAX_PAGE = 1000


def _check_profile(caller_role: Role, profile: str) -> None:
    if caller_role is Role.CSMS and profile not in _CSMS_PROFILES:
        raise Forbidden(f"the csms role may issue only {', '.join(sorted(_CSMS_PROFILES))} certificates")


def _arguments(body: IssueIn, caller: Caller) -> dict[str, Any]:
    """``body`` as ``pki.certificates.issue``/``renew`` take it, once the caller may ask for its profile."""
    _check_profile(caller.role, body.profile)
    return {
        "profile": body.profile,
        "csr": body.csr,
        "identity": body.identity.to_domain(),
        "ca_id": body.ca,
        "validity": parse_duration(body.validity) if body.validity else None,
        "actor": caller.actor,
    }


def _issued(result: IssuedCertificate) -> IssuedOut:
    return IssuedOut(certificate=CertificateOut.of(result.certificate), chain_pem=result.chain_pem)


@router.post(
    "",
    status_code=201,
    response_model=IssuedOut,
    summary="Issue a certificate from a CSR",
    description="The CSR is checked against the profile's policy; a refusal names its rule (422).",
    **allow(Role.OPERATOR, Role.CSMS),
)
async def issue(body: IssueIn, pki: PkiDep, caller: CallerDep) -> Response:
    # The hot path of mass enrollment. Checked and signed on the event loop, stored by the group
    # commit while the loop takes the next requests (pki.certificates.issue_async): no thread hop
    # per request. The answer is serialised once here, where FastAPI would validate the model it
    # was just given and then serialise it.
    issued = _issued(await pki.certificates.issue_async(**_arguments(body, caller)))
    return Response(issued.model_dump_json(by_alias=True), status_code=201, media_type="application/json")


BATCH_PATH = "/api/v1/certificates:batch"
# A batch's body: BATCH_LIMIT requests of up to MAX_CSR_CHARS of PEM each, with their JSON around them.
BATCH_BODY_LIMIT = 8 * 1024 * 1024


@router.post(
    ":batch",
    summary="Issue many certificates in one transaction (mass re-enrollment)",
    description=(
        f"Up to {BATCH_LIMIT} requests, each as `POST /api/v1/certificates` takes it, issued together: one "
        "transaction, one audit record per certificate. Each request gets its own outcome, in order -- its "
        "certificate (status 201) or the problem it would have got alone (a refusal does not fail the others). "
        "The answer is 200 whenever the batch was processed, even if every request was refused. The whole "
        "batch is refused (nothing issued) only when the body is malformed or the caller's role may not issue "
        "one of the profiles (403)."
    ),
    **allow(Role.OPERATOR, Role.CSMS),
)
def issue_batch(body: IssueBatchIn, pki: PkiDep, caller: CallerDep) -> IssueBatchOut:
    for item in body.requests:
        _check_profile(caller.role, item.profile)
    results: list[IssueBatchItemOut | None] = [None] * len(body.requests)
    requests: list[CertificateRequest] = []
    positions: list[int] = []
    for index, item in enumerate(body.requests):
        try:
            validity = parse_duration(item.validity) if item.validity else None
        except EvpkiError as refusal:
            results[index] = _refused(refusal)
            continue
        requests.append(CertificateRequest(item.profile, item.csr, item.identity.to_domain(), item.ca, validity))
        positions.append(index)
    outcomes = pki.certificates.issue_batch(requests, actor=caller.actor) if requests else []
    for index, outcome in zip(positions, outcomes, strict=True):
        if isinstance(outcome, EvpkiError):
            results[index] = _refused(outcome)
        else:
            certificate = CertificateOut.of(outcome.certificate)
            results[index] = IssueBatchItemOut(status=201, certificate=certificate, chain_pem=outcome.chain_pem)
    done = [result for result in results if result is not None]
    issued = sum(1 for result in done if result.status == 201)
    return IssueBatchOut(results=done, issued=issued, refused=len(done) - issued)


def _refused(refusal: EvpkiError) -> IssueBatchItemOut:
    problem = Problem(**domain_problem(refusal, BATCH_PATH))
    return IssueBatchItemOut(status=problem.status, problem=problem)


@router.post(
    "/renew",
    status_code=201,
    summary="Renew: issue for the same identity with a new key; the old certificate becomes superseded",
    **allow(Role.OPERATOR, Role.CSMS),
)
def renew(body: IssueIn, pki: PkiDep, caller: CallerDep) -> IssuedOut:
    return _issued(pki.certificates.renew(**_arguments(body, caller)))


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
