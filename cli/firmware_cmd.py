"""``evpki firmware sign|verify``: OCPP secure firmware update (2.0.1/2.1 L01, 1.6 SignedUpdateFirmware)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO, cast

import typer

from cli.common import actor, check_output, console, guarded, open_pki, print_json, read_input_file, write_output
from pki.core import InvalidInput
from pki.firmware import LOCATION_MAX_CHARS, OCPP_VERSIONS, FirmwareSignature, OcppVersion, check_location

__all__ = ["CHUNK_BYTES", "app"]

CHUNK_BYTES = 1 << 20

app = typer.Typer(help="Sign and verify firmware files for OCPP secure firmware update (L01).", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(metavar="FILE", help="The firmware file; read in 1 MiB chunks, never whole.")]


@contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror}") from None
    with handle:
        yield handle


def _chunks(handle: BinaryIO, path: Path) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror}") from None


def _parse_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--retrieve-at {text!r} is not an ISO 8601 date-time (e.g. 2026-02-01T02:00:00Z)") from None
    if value.tzinfo is None:
        raise InvalidInput(f"--retrieve-at {text!r} needs a time zone (e.g. 2026-02-01T02:00:00Z)")
    return value


def _payloads(
    signed: FirmwareSignature, versions: tuple[OcppVersion, ...], request_id: int, retrieve_at: dt.datetime
) -> dict[str, dict[str, Any]]:
    """UpdateFirmware (2.0.1/2.1 share one shape) and SignedUpdateFirmware (1.6), by wire name."""
    payloads: dict[str, dict[str, Any]] = {}
    for version in sorted(versions, key=lambda v: v == "1.6"):
        name = "signedUpdateFirmware" if version == "1.6" else "updateFirmware"
        payloads[name] = signed.payload(version, request_id, retrieve_at)
    return payloads


@app.command("sign")
@guarded
def sign(
    file: FileArg,
    location: Annotated[
        str | None,
        typer.Option(
            "--location",
            help="URI the station downloads the firmware from (firmware.location); the payloads need it.",
        ),
    ] = None,
    request_id: Annotated[
        int,
        typer.Option(
            "--request-id",
            min=0,
            max=2**31 - 1,
            help="requestId of the request; the station reports every status of the update under it.",
        ),
    ] = 1,
    retrieve_at: Annotated[
        str | None,
        typer.Option(
            "--retrieve-at",
            help="When the station should download (firmware.retrieveDateTime), ISO 8601 with zone (default: now).",
        ),
    ] = None,
    ocpp_version: Annotated[
        str | None,
        typer.Option(
            "--ocpp-version",
            help="1.6 (SignedUpdateFirmware), 2.0.1 or 2.1 (UpdateFirmware): only that payload (default: all).",
        ),
    ] = None,
    signer_ca: Annotated[
        str | None,
        typer.Option(
            "--signer-ca",
            help="Sign with the firmware signer of this manufacturer root, e.g. mf-root for stations that do "
            "not hold mf-root-2 yet (default: the newest valid signer).",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (camelCase, as on the wire).")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write the output here instead of stdout.")] = None,
) -> None:
    """Sign a firmware file with the newest valid firmware-signer key; print the signature, certificate and
    OCPP payloads.

    After `evpki ca rollover mf-root` that is the new generation's signer: stations verify it against
    the new ManufacturerRootCertificate, which `evpki bridge` installs on them (OCPP M05).
    """
    if ocpp_version is not None and ocpp_version not in OCPP_VERSIONS:
        raise InvalidInput(f"--ocpp-version must be one of {', '.join(OCPP_VERSIONS)}")
    versions = OCPP_VERSIONS if ocpp_version is None else (cast(OcppVersion, ocpp_version),)
    if ocpp_version is not None and location is None:
        raise InvalidInput("--ocpp-version prints a payload, which needs --location (the firmware's download URI)")
    # Every payload asked for must carry the location; refuse before signing (and auditing) anything.
    if location is not None:
        for version in versions:
            try:
                check_location(location, version)
            except InvalidInput as error:
                fits_21 = ocpp_version is None and len(location) <= LOCATION_MAX_CHARS["2.1"]
                raise InvalidInput(error.message + ("; pass --ocpp-version 2.1" if fits_21 else "")) from None
    when = _parse_time(retrieve_at) if retrieve_at is not None else None
    check_output(out)
    pki = open_pki()
    when = when or pki.clock.now()
    with _opened(file) as handle:
        signed = pki.firmware.sign(
            _chunks(handle, file), location=location, retrieve_at=when, actor=actor(), signer_ca=signer_ca
        )
    payloads = _payloads(signed, versions, request_id, when) if location is not None else {}
    if json_output:
        document: dict[str, Any] = {
            "sha256": signed.sha256,
            "size": signed.size,
            "algorithm": signed.algorithm,
            "signature": signed.signature,
            "signingCertificate": signed.certificate_pem,
            **payloads,
        }
        text = json.dumps(document, indent=2) + "\n"
    else:
        lines = [
            f"sha256: {signed.sha256}",
            f"size: {signed.size}",
            f"algorithm: {signed.algorithm}",
            f"signer serial: {signed.signer_serial}",
            f"signer issued by: {signed.signer_ca}",
            "signature (Base64):",
            signed.signature,
            "signingCertificate:",
            signed.certificate_pem.rstrip("\n"),
        ]
        for name, payload in payloads.items():
            lines += [f"{name} payload:", json.dumps(payload, indent=2)]
        text = "\n".join(lines) + "\n"
    write_output(text, out)


def _signature_text(value: str) -> str:
    """A Base64 signature, or ``@FILE``: a file holding the Base64 text or the raw signature bytes."""
    if not value.startswith("@"):
        return value
    data = read_input_file(value[1:])
    try:
        text = data.decode("ascii")
        base64.b64decode("".join(text.split()), validate=True)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        return base64.b64encode(data).decode("ascii")  # e.g. sig.bin from `openssl dgst -sign`
    return text


@app.command("verify")
@guarded
def verify(
    file: FileArg,
    signature: Annotated[
        str,
        typer.Option(
            "--signature",
            help="The Base64 signature, or @FILE with the Base64 text or the raw signature bytes.",
        ),
    ],
    certificate: Annotated[
        str,
        typer.Option("--certificate", help="PEM file of the signing certificate ('-' reads stdin)."),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check a firmware file against its signature and signing certificate (issued by mf-root, not revoked)."""
    signature_text = _signature_text(signature)
    certificate_pem = read_input_file(certificate)
    pki = open_pki()
    with _opened(file) as handle:
        result = pki.firmware.verify(_chunks(handle, file), signature=signature_text, certificate=certificate_pem)
    if json_output:
        print_json(result.to_json())
        return
    console.print(
        f"OK: {file.name} (sha256 {result.sha256}) signed by {result.signer_subject} "
        f"serial {result.signer_serial}, valid until {result.not_after.date().isoformat()}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
