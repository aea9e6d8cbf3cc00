"""``evpki exi decode``: show an ISO 15118-2 EXI message as JSON, and the EXI input convention.

Every command that takes EXI accepts it as base64 text, or as ``@FILE`` naming a file that holds
either base64 text or the raw EXI bytes (an ISO 15118-2 document starts with 0x80).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
from typing import Annotated, Any

import typer

from cli.common import guarded, print_json, read_input_file
from pki.errors import InvalidInput
from pki.iso15118.chains import readable_certificate
from pki.iso15118.exi import decode_fragment, decode_message, decode_signed_info

__all__ = ["EXI_HELP", "app", "message_json", "read_exi", "read_exi_base64"]

app = typer.Typer(help="ISO 15118-2 EXI: decode the messages of contract provisioning.", no_args_is_help=True)

EXI_HELP = "Base64 EXI, or @FILE holding base64 text or raw EXI bytes (- for stdin: @-)."


def read_exi(argument: str) -> bytes:
    """The EXI bytes of a ``BASE64`` or ``@FILE`` argument."""
    if argument.startswith("@"):
        data = read_input_file(argument[1:])
        if data[:1] == b"\x80":
            return data
        text = data.decode("ascii", errors="replace")
    else:
        text = argument
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the EXI argument is neither base64 nor @FILE with base64 or raw EXI") from None


def read_exi_base64(argument: str) -> str:
    return base64.b64encode(read_exi(argument)).decode("ascii")


def _certificate_summary(der: bytes) -> dict[str, Any] | None:
    certificate = readable_certificate(der)
    if certificate is None:
        return None
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": format(certificate.serial_number, "X"),
        "notAfter": certificate.not_valid_after_utc.isoformat(),
        "bytes": len(der),
    }


def _json(value: Any, field: str = "") -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        if field == "session_id":
            return value.hex().upper()
        if field in ("certificate", "oem_provisioning_cert", "sub_certificates"):
            summary = _certificate_summary(value)
            if summary is not None:
                return {**summary, "der": base64.b64encode(value).decode()}
        return base64.b64encode(value).decode()
    if isinstance(value, tuple | list):
        return [_json(item, field) for item in value]
    if isinstance(value, int) and field == "serial_number":
        return {"decimal": str(value), "hex": format(value, "X")}
    return value


def message_json(message: Any) -> dict[str, Any]:
    """A message, fragment or SignedInfo as JSON: snake_case fields, bytes as base64, certificates summarised."""
    return {type(message).__name__: _json(message)}


@app.command("decode")
@guarded
def decode(
    exi: Annotated[str, typer.Argument(metavar="BASE64|@FILE", help=EXI_HELP)],
    fragment: Annotated[
        bool, typer.Option("--fragment", help="Decode a signed-element fragment instead of a V2G_Message.")
    ] = False,
    signed_info: Annotated[bool, typer.Option("--signed-info", help="Decode an xmldsig SignedInfo fragment.")] = False,
) -> None:
    """Print an ISO 15118-2 message (CertificateInstallation/Update Req/Res) as JSON.

    Example: evpki exi decode @request.exi
    """
    data = read_exi(exi)
    if fragment and signed_info:
        raise InvalidInput("--fragment and --signed-info exclude each other")
    if signed_info:
        print_json(message_json(decode_signed_info(data)))
    elif fragment:
        print_json(message_json(decode_fragment(data)))
    else:
        print_json(message_json(decode_message(data)))
