"""``/api/v1/ocpp/{version}/...``: the OCPP certificate handlers for any CSMS, over REST.

A CSMS that receives a certificate message from a station posts the payload here and gets the
CALLRESULT payload to answer with plus the follow-up calls to send afterwards
(:mod:`ocpp_bridge.core`); it reports the station's answer to each follow-up to ``.../results``
so deliveries are tracked (and gets root-reconciliation follow-ups back). One route per version and
action, so the OpenAPI document lists exactly what each version supports; an action the core does
not handle has no route (404). A payload the OCPP schema refuses is a 422 problem naming the OCPP
error code the CSMS should send as CALLERROR (``ocppErrorCode``).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import allow
from api.problems import PROBLEM_RESPONSES, problem_response
from api.schemas import (
    OcppCallIn,
    OcppErrorIn,
    OcppFollowUp,
    OcppFollowUpsOut,
    OcppHandledOut,
    OcppResultIn,
    OcppStationIn,
)
from ocpp_bridge.core import (
    HANDLED_ACTIONS,
    OCPP_VERSIONS,
    PNC_VENDOR_ID,
    CertificateService,
    FollowUp,
    OcppCallError,
)
from pki.operations import Role

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/ocpp", tags=["OCPP"], responses=PROBLEM_RESPONSES)

_CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBDDCBswIBADBRMQswCQYD...\n-----END CERTIFICATE REQUEST-----\n"
_HASH = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "4c0a1b...e2",
    "issuerKeyHash": "9f3d22...07",
    "serialNumber": "5A1E0C33D2B0F1A7",
}
_EXAMPLES: dict[str, dict[str, Any]] = {
    "SignCertificate": {"csr": _CSR, "certificateType": "ChargingStationCertificate"},
    "Get15118EVCertificate": {
        "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
        "action": "Install",
        "exiRequest": "gJgCAAAAAAAAAAAAAAACAQ...",
    },
    "GetCertificateStatus": {"ocspRequestData": {**_HASH, "responderURL": "http://ocsp.example.com/"}},
    "GetCertificateChainStatus": {
        "certificateStatusRequests": [
            {"certificateHashData": _HASH, "source": "OCSP", "urls": ["http://ocsp.example.com/"]}
        ]
    },
    "SecurityEventNotification": {"type": "InvalidChargingStationCertificate", "timestamp": "2026-01-15T12:00:00Z"},
    "Authorize": {
        "idToken": {"idToken": "DEABCC123ABC56", "type": "eMAID"},
        "iso15118CertificateHashData": [{**_HASH, "responderURL": "http://ocsp.example.com/"}],
    },
    "DataTransfer": {
        "vendorId": PNC_VENDOR_ID,
        "messageId": "SignCertificate",
        "data": '{"csr":"-----BEGIN CERTIFICATE REQUEST-----\\n...","certificateType":"V2GCertificate"}',
    },
}
# OCPP 2.1 examples where 2.1 adds to the message (ISO 15118-20, ocpp_bridge.v2g20).
_EXAMPLES_21: dict[str, dict[str, Any]] = {
    "SignCertificate": {"csr": _CSR, "certificateType": "V2G20Certificate", "requestId": 1},
    "Get15118EVCertificate": {
        "iso15118SchemaVersion": "urn:iso:std:iso:15118:-20:CommonMessages",
        "action": "Install",
        "exiRequest": "gAQCBAgQIEBAIAAAAAAAAAQ...",
        "maximumContractCertificateChains": 3,
        "prioritizedEMAIDs": ["DEABCC000000001"],
    },
}
_SUMMARIES = {
    "SignCertificate": "SignCertificate: issue for the station's CSR (A02/A03); CertificateSigned follows",
    "Get15118EVCertificate": "Get15118EVCertificate: ISO 15118 contract installation (M01/M02)",
    "GetCertificateStatus": "GetCertificateStatus: OCSP response for one certificate (M06)",
    "GetCertificateChainStatus": "GetCertificateChainStatus: OCSP/CRL status of up to 4 certificates (M07)",
    "SecurityEventNotification": "SecurityEventNotification: record a station security event (A04)",
    "Authorize": "Authorize: Plug & Charge contract certificate status (C07; idToken type eMAID only)",
    "DataTransfer": "DataTransfer: ISO 15118 Plug & Charge for OCPP 1.6 (vendorId org.openchargealliance.iso15118pnc)",
}
_ROLES = (Role.CSMS,)  # machine-to-machine: the CSMS's own token (admin is implied)


def _service(request: Request) -> CertificateService:
    # One per app: it holds the HTTP clients and caches for status forwarding.
    service: CertificateService | None = getattr(request.app.state, "ocpp_service", None)
    if service is None or service.pki is not request.app.state.pki:
        service = CertificateService(request.app.state.pki)
        request.app.state.ocpp_service = service
    return service


def _call_error(request: Request, error: OcppCallError) -> JSONResponse:
    status = 500 if error.code == "InternalError" else 422
    return problem_response(
        status,
        "ocpp-call-error",
        "OCPP CALLERROR",
        error.description,
        request.url.path,
        ocppErrorCode=error.code,
    )


def _follow_ups(items: tuple[FollowUp, ...]) -> list[OcppFollowUp]:
    return [OcppFollowUp(action=f.action, payload=f.payload, delivery_id=f.delivery_id) for f in items]


def _body_example(example: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/json": {"example": example}}}}


def _with(kwargs: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "openapi_extra": {**kwargs["openapi_extra"], **extra}}


def _add_call_route(version: str, action: str) -> None:
    async def handle(body: OcppCallIn, request: Request) -> Any:
        service = _service(request)
        try:
            handled = await anyio.to_thread.run_sync(service.handle, version, body.station_id, action, body.payload)
        except OcppCallError as error:
            return _call_error(request, error)
        return OcppHandledOut(response=handled.response, follow_ups=_follow_ups(handled.follow_ups))

    example = _EXAMPLES_21.get(action, _EXAMPLES[action]) if version == "2.1" else _EXAMPLES[action]
    router.add_api_route(
        f"/{version}/{action}",
        handle,
        methods=["POST"],
        response_model=OcppHandledOut,
        summary=f"OCPP {version} {_SUMMARIES[action]}",
        description=(
            f"The station sent `{action}`: post its payload; answer the station with `response`, then send "
            "`followUps` in order and report each answer to `.../results`."
        ),
        operation_id=f"ocpp_{version.replace('.', '_')}_{action}",
        **_with(allow(*_ROLES), _body_example({"stationId": "CS-0001", "payload": example})),
    )


def _add_version_routes(version: str) -> None:
    slug = version.replace(".", "_")
    signed = {"action": "CertificateSigned", "payload": {"certificateChain": "-----BEGIN CERTIFICATE-----\n..."}}

    async def results(body: OcppResultIn, request: Request) -> Any:
        service = _service(request)
        follow_up = FollowUp(body.follow_up.action, body.follow_up.payload, body.follow_up.delivery_id)
        try:
            more = await anyio.to_thread.run_sync(
                service.record_result, version, body.station_id, follow_up, body.response
            )
        except OcppCallError as error:
            return _call_error(request, error)
        return OcppFollowUpsOut(follow_ups=_follow_ups(more))

    router.add_api_route(
        f"/{version}/results",
        results,
        methods=["POST"],
        response_model=OcppFollowUpsOut,
        summary=f"OCPP {version}: report the station's answer to a follow-up (closes its delivery)",
        description=(
            "An accepted CertificateSigned supersedes the station's previous certificate, a rejected one revokes the "
            "undelivered certificate; an answer to GetInstalledCertificateIds returns the InstallCertificate / "
            "DeleteCertificate calls that bring the station's roots in line."
        ),
        operation_id=f"ocpp_{slug}_results",
        **_with(
            allow(*_ROLES),
            _body_example(
                {"stationId": "CS-0001", "followUp": {**signed, "deliveryId": 17}, "response": {"status": "Accepted"}}
            ),
        ),
    )

    async def errors(body: OcppErrorIn, request: Request) -> OcppFollowUpsOut:
        follow_up = FollowUp(body.follow_up.action, body.follow_up.payload, body.follow_up.delivery_id)
        await anyio.to_thread.run_sync(
            _service(request).record_error, version, body.station_id, follow_up, body.code, body.description
        )
        return OcppFollowUpsOut(follow_ups=[])

    router.add_api_route(
        f"/{version}/errors",
        errors,
        methods=["POST"],
        response_model=OcppFollowUpsOut,
        summary=f"OCPP {version}: report a CALLERROR or timeout for a follow-up (its delivery stays pending)",
        operation_id=f"ocpp_{slug}_errors",
        **_with(
            allow(*_ROLES),
            _body_example(
                {"stationId": "CS-0001", "followUp": {**signed, "deliveryId": 17}, "code": "Timeout", "description": ""}
            ),
        ),
    )

    async def boot(body: OcppStationIn, request: Request) -> OcppFollowUpsOut:
        service = _service(request)
        await anyio.to_thread.run_sync(service.on_connected, version, body.station_id, None)
        return OcppFollowUpsOut(
            follow_ups=_follow_ups(await anyio.to_thread.run_sync(service.on_boot, version, body.station_id))
        )

    router.add_api_route(
        f"/{version}/boot",
        boot,
        methods=["POST"],
        response_model=OcppFollowUpsOut,
        summary=f"OCPP {version}: after BootNotification, the calls to send (pending deliveries, root inventory)",
        operation_id=f"ocpp_{slug}_boot",
        **_with(allow(*_ROLES), _body_example({"stationId": "CS-0001"})),
    )

    async def renewal(body: OcppStationIn, request: Request) -> OcppFollowUpsOut:
        due = await anyio.to_thread.run_sync(_service(request).renewal_due, version, body.station_id)
        return OcppFollowUpsOut(follow_ups=_follow_ups(due))

    router.add_api_route(
        f"/{version}/renewal",
        renewal,
        methods=["POST"],
        response_model=OcppFollowUpsOut,
        summary=f"OCPP {version}: the renewal trigger to send when the station's certificate expires soon",
        operation_id=f"ocpp_{slug}_renewal",
        **_with(allow(*_ROLES), _body_example({"stationId": "CS-0001"})),
    )


for _version in OCPP_VERSIONS:
    # The fixed routes first, so "results" is never taken for an action name.
    _add_version_routes(_version)
    for _action in HANDLED_ACTIONS[_version]:
        _add_call_route(_version, _action)
