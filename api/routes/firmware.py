"""``/api/v1/firmware``: sign and verify firmware files (OCPP L01 / 1.6 SignedUpdateFirmware).

The file is the raw request body (``application/octet-stream``), streamed: it is hashed as it
arrives and never held in memory, so files of hundreds of MiB are fine (the limit is
``firmware_max_bytes``). The domain code reads it from a worker thread; each chunk is fetched
from the event loop on demand.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import anyio
import anyio.from_thread
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Header, Query, Request

from api.deps import CallerDep, PkiDep, allow
from api.problems import PROBLEM_RESPONSES
from api.schemas import INT32_MAX, INT32_MIN, FirmwareSignatureOut, FirmwareVerificationOut
from pki.core import InvalidInput
from pki.operations import Role

router = APIRouter(prefix="/api/v1/firmware", tags=["firmware"], responses=PROBLEM_RESPONSES)

_BINARY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _blocking_chunks(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """The request body as a blocking iterator, for use in a worker thread."""
    iterator = stream.__aiter__()
    while True:
        try:
            chunk = anyio.from_thread.run(iterator.__anext__)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk


def _with_roles(kwargs: dict[str, object]) -> dict[str, object]:
    merged = dict(kwargs)
    merged["openapi_extra"] = {**kwargs["openapi_extra"], **_BINARY_BODY}  # type: ignore[dict-item]
    return merged


@router.post(
    "/sign",
    summary="Sign a firmware file (raw body) with the firmware-signer certificate",
    description=(
        "SHA-256 over the whole file; RSA-PSS for an RSA signer key, ECDSA for an EC one. With `location`, the "
        "response also carries ready-to-send OCPP 2.0.1/2.1 UpdateFirmware and 1.6 SignedUpdateFirmware payloads."
    ),
    **_with_roles(allow(Role.OPERATOR)),
)
async def sign(
    request: Request,
    pki: PkiDep,
    caller: CallerDep,
    location: Annotated[str | None, Query(description="where stations download the file (firmware.location)")] = None,
    request_id: Annotated[
        int, Query(alias="requestId", ge=INT32_MIN, le=INT32_MAX, description="OCPP requestId of the payloads (int32)")
    ] = 1,
    retrieve_date_time: Annotated[
        dt.datetime | None, Query(alias="retrieveDateTime", description="default: now")
    ] = None,
) -> FirmwareSignatureOut:
    stream = request.stream()
    signed = await anyio.to_thread.run_sync(
        lambda: pki.firmware.sign(
            _blocking_chunks(stream),
            location=location,
            retrieve_at=retrieve_date_time or pki.clock.now(),
            actor=caller.actor,
            # Both payloads below are checked before the file is signed: a refusal leaves no signature.
            payloads=("2.0.1", "1.6") if location is not None else (),
            request_id=request_id,
        )
    )
    out = FirmwareSignatureOut(
        sha256=signed.sha256,
        size=signed.size,
        algorithm=signed.algorithm,
        signature=signed.signature,
        signing_certificate=signed.certificate_pem,
    )
    if location is not None:
        out.update_firmware = signed.update_firmware_201(request_id)
        out.signed_update_firmware = signed.signed_update_firmware_16(request_id)
    return out


def _certificate_header(value: str) -> str:
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("Firmware-Signing-Certificate must be the Base64 of the DER certificate") from None
    try:
        certificate = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        raise InvalidInput("Firmware-Signing-Certificate is not a DER X.509 certificate") from None
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@router.post(
    "/verify",
    summary="Verify a firmware file (raw body) against its signature and signing certificate",
    description=(
        "Checks the signature over the whole file, that the certificate was issued by mf-root and is valid and "
        "not revoked. A failure is a 422 problem whose detail says why."
    ),
    **_with_roles(allow(Role.OPERATOR, Role.CSMS, Role.AUDITOR)),
)
async def verify(
    request: Request,
    pki: PkiDep,
    firmware_signature: Annotated[
        str, Header(alias="Firmware-Signature", max_length=800, description="Base64 signature (firmware.signature)")
    ],
    firmware_signing_certificate: Annotated[
        str, Header(alias="Firmware-Signing-Certificate", max_length=8192, description="Base64 of the DER certificate")
    ],
) -> FirmwareVerificationOut:
    certificate = _certificate_header(firmware_signing_certificate)
    stream = request.stream()
    result = await anyio.to_thread.run_sync(
        lambda: pki.firmware.verify(_blocking_chunks(stream), signature=firmware_signature, certificate=certificate)
    )
    return FirmwareVerificationOut(
        ok=True,
        sha256=result.sha256,
        size=result.size,
        signer_subject=result.signer_subject,
        signer_serial=result.signer_serial,
        signer_not_after=result.not_after,
    )
