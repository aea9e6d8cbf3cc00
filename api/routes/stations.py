"""``/api/v1/stations/{id}/…``: operator-initiated calls on a station (OCPP M03-M05, A01, A02, A05, N01, L01).

Each POST checks the request, builds the call in the station's OCPP version and stores it
(``pki.station_calls``); the bridge process holding the station's connection sends it (within
its ``call_poll_interval``), or the station gets it when it next connects. ``?wait=10s`` waits
for the answer: 200 with the answered call, or 202 with the call still pending when the station
did not answer in time (202 at once without ``wait``). ``?ttl=1h``: an unsent call expires then.
A refused request (unknown station, a use the version lacks, a non-root for a root use, ...) is a
problem+json and queues nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Header, Path, Query, Request, Response

from api.deps import CallerDep, PkiDep, allow
from api.problems import PROBLEM_RESPONSES
from api.routes.firmware import _certificate_header
from api.schemas import (
    INT32_MAX,
    DeleteCertificateIn,
    FirmwareUpdateList,
    FirmwareUpdateOut,
    GetLogIn,
    InstallCertificateIn,
    InstalledCertificatesIn,
    PasswordIn,
    RootSyncIn,
    RootSyncOut,
    SecurityProfileIn,
    StationCallList,
    StationCallOut,
    TriggerIn,
)
from pki import PKI
from pki.core import InvalidInput, parse_duration
from pki.operations import Role
from pki.stations import DeliveryView

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/stations", tags=["stations"], responses=PROBLEM_RESPONSES)

_MAX_WAIT = 60.0
_WAIT = re.compile(r"^(\d{1,5})(ms|s)?$")
StationId = Annotated[str, Path(max_length=48, description="the station's OCPP identity")]
WaitQuery = Annotated[
    str | None,
    Query(
        max_length=8,
        pattern=r"^\d{1,5}(ms|s)?$",
        description="wait up to this long for the station's answer (e.g. 10s, 500ms; at most 60s)",
    ),
]
TtlQuery = Annotated[
    str | None,
    Query(max_length=8, pattern=r"^\d{1,6}[smhdw]$", description="an unsent call expires after this (e.g. 1h, 7d)"),
]
_CALL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the station answered (or the call was closed) within `wait`"},
    202: {"model": StationCallOut, "description": "stored; the station has not answered (yet)"},
}
_OPERATOR = (Role.OPERATOR,)


def _seconds(wait: str | None) -> float:
    if wait is None:
        return 0.0
    match = _WAIT.match(wait)
    if match is None:
        raise InvalidInput("wait is a number of seconds or milliseconds, e.g. 10s or 500ms")
    value = int(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    if value > _MAX_WAIT:
        raise InvalidInput(f"wait at most {_MAX_WAIT:g} seconds")
    return value


def _ttl(ttl: str | None) -> dt.timedelta | None:
    if ttl is None:
        return None
    return parse_duration(ttl)


def call_out(pki: PKI, view: DeliveryView) -> StationCallOut:
    notes = pki.station_calls.notifications(view.station_identity, [view.id]).get(view.id, [])
    return StationCallOut.model_validate({**view.to_json(), "notifications": [n.to_json() for n in notes]})


async def _answered(pki: PKI, view: DeliveryView, wait: float, response: Response) -> StationCallOut:
    """The call after up to ``wait`` seconds: 200 once answered (or closed), else 202."""
    deadline = asyncio.get_running_loop().time() + wait
    while view.status == "pending" and asyncio.get_running_loop().time() < deadline:
        # The answer arrives through the database, whichever bridge process the station is connected to.
        await asyncio.sleep(min(0.05, max(0.0, deadline - asyncio.get_running_loop().time())))
        view = await anyio.to_thread.run_sync(pki.station_calls.get, view.station_identity, view.id)
    response.status_code = 202 if view.status == "pending" else 200
    return await anyio.to_thread.run_sync(call_out, pki, view)


def _post(path: str, summary: str, description: str) -> Any:
    return router.post(
        path,
        response_model=StationCallOut,
        status_code=200,
        summary=summary,
        description=description,
        responses=_CALL_RESPONSES,
        **allow(*_OPERATOR),
    )


@_post(
    "/{station_id}/install-certificate",
    "Install a root on the station (InstallCertificate, M05)",
    "Our root (`caId`), a trust-store root (`trusted`), a root PEM (`certificate`), or by default the newest root "
    "of `use`. Only roots (self-signed CA certificates) of a use the station's OCPP version has are accepted.",
)
async def install_certificate(
    station_id: StationId,
    body: InstallCertificateIn,
    pki: PkiDep,
    caller: CallerDep,
    response: Response,
    wait: WaitQuery = None,
    ttl: TtlQuery = None,
) -> StationCallOut:
    seconds, expiry = _seconds(wait), _ttl(ttl)
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.install_certificate(
            station_id,
            use=body.use,
            ca_id=body.ca_id,
            trusted=body.trusted,
            certificate_pem=body.certificate,
            ocpp_version=body.ocpp_version,
            ttl=expiry,
            actor=caller.actor,
        )
    )
    return await _answered(pki, view, seconds, response)


@_post(
    "/{station_id}/delete-certificate",
    "Delete a certificate from the station (DeleteCertificate, M04)",
    "By `hashData` as the station reported it, or by certificate (`caId`, `trusted`, `certificate`): the hash data "
    "the station reported for it, else computed in the hash algorithm it reported (M04.FR.07).",
)
async def delete_certificate(
    station_id: StationId,
    body: DeleteCertificateIn,
    pki: PkiDep,
    caller: CallerDep,
    response: Response,
    wait: WaitQuery = None,
    ttl: TtlQuery = None,
) -> StationCallOut:
    seconds, expiry = _seconds(wait), _ttl(ttl)
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.delete_certificate(
            station_id,
            hash_data_given=body.hash_data,
            ca_id=body.ca_id,
            trusted=body.trusted,
            certificate_pem=body.certificate,
            hash_algorithm=body.hash_algorithm,
            ocpp_version=body.ocpp_version,
            ttl=expiry,
            actor=caller.actor,
        )
    )
    return await _answered(pki, view, seconds, response)


@_post(
    "/{station_id}/installed-certificates",
    "List the certificates installed on the station (GetInstalledCertificateIds, M03)",
    "Per type, or (2.x) all types; the station's answer is stored with the call and is what a later delete by "
    "certificate copies its hash data from.",
)
async def installed_certificates(
    station_id: StationId,
    body: InstalledCertificatesIn,
    pki: PkiDep,
    caller: CallerDep,
    response: Response,
    wait: WaitQuery = None,
    ttl: TtlQuery = None,
) -> StationCallOut:
    seconds, expiry = _seconds(wait), _ttl(ttl)
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.get_installed(
            station_id, types=body.types, ocpp_version=body.ocpp_version, ttl=expiry, actor=caller.actor
        )
    )
    return await _answered(pki, view, seconds, response)


@_post(
    "/{station_id}/trigger",
    "Trigger a certificate renewal (TriggerMessage / 1.6 ExtendedTriggerMessage, A02)",
    "SignChargingStationCertificate (1.6 SignChargePointCertificate), SignV2GCertificate (1.6: PnC DataTransfer), "
    "SignCombinedCertificate (2.x), SignV2G20Certificate (2.1). The CSR that follows is answered as usual.",
)
async def trigger(
    station_id: StationId,
    body: TriggerIn,
    pki: PkiDep,
    caller: CallerDep,
    response: Response,
    wait: WaitQuery = None,
    ttl: TtlQuery = None,
) -> StationCallOut:
    seconds, expiry = _seconds(wait), _ttl(ttl)
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.trigger(
            station_id,
            message=body.message,
            evse_id=body.evse_id,
            ocpp_version=body.ocpp_version,
            ttl=expiry,
            actor=caller.actor,
        )
    )
    return await _answered(pki, view, seconds, response)


@_post(
    "/{station_id}/security-log",
    "Fetch the security log (GetLog SecurityLog, N01)",
    "The station uploads its security log to `remoteLocation`; its LogStatusNotifications are filed under the "
    "call (the call's id is the requestId).",
)
async def security_log(
    station_id: StationId,
    body: GetLogIn,
    pki: PkiDep,
    caller: CallerDep,
    response: Response,
    wait: WaitQuery = None,
    ttl: TtlQuery = None,
) -> StationCallOut:
    seconds, expiry = _seconds(wait), _ttl(ttl)
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.get_log(
            station_id,
            remote_location=body.remote_location,
            oldest=body.oldest_timestamp,
            latest=body.latest_timestamp,
            retries=body.retries,
            retry_interval=body.retry_interval,
            ocpp_version=body.ocpp_version,
            ttl=expiry,
            actor=caller.actor,
        )
    )
    return await _answered(pki, view, seconds, response)


@_post(
    "/{station_id}/password",
    "Set a new Basic-auth password (A01: SetVariables BasicAuthPassword / 1.6 ChangeConfiguration AuthorizationKey)",
    "Profile-2 stations. The registry takes the new password only once the station accepted it; the password is "
    "never shown (random when not given) and is scrubbed from the stored call once answered.",
)
async def password(
    station_id: StationId,
    body: PasswordIn,
    pki: PkiDep,
    caller: CallerDep,
    response: Response,
    wait: WaitQuery = None,
    ttl: TtlQuery = None,
) -> StationCallOut:
    seconds, expiry = _seconds(wait), _ttl(ttl)
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.rotate_password(
            station_id, body.password, ocpp_version=body.ocpp_version, ttl=expiry, actor=caller.actor
        )
    )
    return await _answered(pki, view, seconds, response)


@_post(
    "/{station_id}/security-profile",
    "Upgrade the station to security profile 3 (A05)",
    "Only when the station holds a valid station certificate of ours. 2.x (slot and url required): SetNetworkProfile "
    "with the profile-3 address in the slot, once accepted SetVariables OCPPCommCtrlr.NetworkConfigurationPriority "
    "(the slot, then fallbackSlot), once accepted Reset OnIdle; 1.6: ChangeConfiguration SecurityProfile. The registry "
    "moves to profile 3 when the station reconnects over mutual TLS; profile 2 refuses it from then on.",
)
async def security_profile(
    station_id: StationId,
    body: SecurityProfileIn,
    pki: PkiDep,
    caller: CallerDep,
    response: Response,
    wait: WaitQuery = None,
    ttl: TtlQuery = None,
) -> StationCallOut:
    seconds, expiry = _seconds(wait), _ttl(ttl)
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.upgrade_security_profile(
            station_id,
            profile=body.profile,
            slot=body.slot,
            url=body.url,
            fallback_slot=body.fallback_slot,
            interface=body.ocpp_interface,
            ocpp_version=body.ocpp_version,
            ttl=expiry,
            actor=caller.actor,
        )
    )
    return await _answered(pki, view, seconds, response)


def _blocking_chunks(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    iterator = stream.__aiter__()
    while True:
        try:
            chunk = anyio.from_thread.run(iterator.__anext__)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk


@router.post(
    "/{station_id}/firmware",
    response_model=StationCallOut,
    status_code=200,
    summary="Secure firmware update (UpdateFirmware / 1.6 SignedUpdateFirmware, L01)",
    description=(
        "The firmware file is the raw body. Signed with the newest valid firmware signer, or checked against the "
        "`Firmware-Signature` and `Firmware-Signing-Certificate` headers given (ours, valid, not revoked). The call's "
        "id is the requestId; the station's status notifications are filed under it (`GET …/firmware`)."
    ),
    responses=_CALL_RESPONSES,
    **{
        **allow(*_OPERATOR),
        "openapi_extra": {
            **allow(*_OPERATOR)["openapi_extra"],
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
        },
    },
)
async def update_firmware(
    station_id: StationId,
    request: Request,
    pki: PkiDep,
    caller: CallerDep,
    response: Response,
    location: Annotated[str, Query(max_length=2000, description="where the station downloads the file")],
    retrieve_date_time: Annotated[
        dt.datetime | None, Query(alias="retrieveDateTime", description="default: now")
    ] = None,
    install_date_time: Annotated[dt.datetime | None, Query(alias="installDateTime")] = None,
    retries: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
    retry_interval: Annotated[int | None, Query(alias="retryInterval", ge=0, le=INT32_MAX)] = None,
    ocpp_version: Annotated[str | None, Query(alias="ocppVersion", max_length=8)] = None,
    firmware_signature: Annotated[
        str | None, Header(alias="Firmware-Signature", max_length=800, description="an existing Base64 signature")
    ] = None,
    firmware_signing_certificate: Annotated[
        str | None,
        Header(alias="Firmware-Signing-Certificate", max_length=8192, description="its signer: Base64 of the DER"),
    ] = None,
    wait: WaitQuery = None,
    ttl: TtlQuery = None,
) -> StationCallOut:
    seconds, expiry = _seconds(wait), _ttl(ttl)
    certificate = None
    if firmware_signing_certificate is not None:
        certificate = _certificate_header(firmware_signing_certificate)
    stream = request.stream()
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.update_firmware(
            station_id,
            _blocking_chunks(stream),
            location=location,
            retrieve_at=retrieve_date_time,
            install_at=install_date_time,
            retries=retries,
            retry_interval=retry_interval,
            signature=firmware_signature,
            signing_certificate=certificate,
            ocpp_version=ocpp_version,
            ttl=expiry,
            actor=caller.actor,
        )
    )
    return await _answered(pki, view, seconds, response)


@router.get(
    "/{station_id}/firmware",
    response_model=FirmwareUpdateList,
    summary="Firmware updates of the station: the call, its status notifications and the outcome (L01)",
    **allow(Role.OPERATOR, Role.AUDITOR),
)
async def firmware_status(
    station_id: StationId, pki: PkiDep, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> FirmwareUpdateList:
    updates = await anyio.to_thread.run_sync(lambda: pki.station_calls.firmware_updates(station_id, limit=limit))
    return FirmwareUpdateList(updates=[FirmwareUpdateOut.model_validate(update.to_json()) for update in updates])


@router.get(
    "/{station_id}/calls",
    response_model=StationCallList,
    summary="The calls to the station, newest first (operator calls and the bridge's deliveries)",
    **allow(Role.OPERATOR, Role.AUDITOR),
)
async def calls(
    station_id: StationId, pki: PkiDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> StationCallList:
    def load() -> StationCallList:
        views = pki.station_calls.list(station_id, limit=limit)
        notes = pki.station_calls.notifications(station_id, [view.id for view in views])
        return StationCallList(
            calls=[
                StationCallOut.model_validate(
                    {**view.to_json(), "notifications": [n.to_json() for n in notes.get(view.id, [])]}
                )
                for view in views
            ]
        )

    return await anyio.to_thread.run_sync(load)


@router.get(
    "/{station_id}/calls/{call_id}",
    response_model=StationCallOut,
    summary="One operator call; `wait` waits for its answer (202 while still pending)",
    responses=_CALL_RESPONSES,
    **allow(Role.OPERATOR, Role.AUDITOR),
)
async def call(
    station_id: StationId,
    call_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    pki: PkiDep,
    response: Response,
    wait: WaitQuery = None,
) -> StationCallOut:
    seconds = _seconds(wait)
    view = await anyio.to_thread.run_sync(pki.station_calls.get, station_id, call_id)
    return await _answered(pki, view, seconds, response)


@router.put(
    "/{station_id}/root-sync",
    response_model=RootSyncOut,
    summary="Root reconciliation after boot for this station: on, off or the default, and a delay",
    **allow(*_OPERATOR),
)
async def root_sync(station_id: StationId, body: RootSyncIn, pki: PkiDep, caller: CallerDep) -> RootSyncOut:
    view = await anyio.to_thread.run_sync(
        lambda: pki.station_calls.set_root_sync(
            station_id, mode=body.mode, delay=body.delay_seconds, actor=caller.actor
        )
    )
    return RootSyncOut(station_id=view.identity, mode=view.root_sync, delay_seconds=view.root_sync_delay)
