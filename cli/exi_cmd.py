"""``evpki exi decode``: show an ISO 15118-2 (or -20) EXI message as XML or JSON, and the EXI input convention.

Every command that takes EXI accepts it as base64 text, or as ``@FILE`` naming a file that holds
either base64 text or the raw EXI bytes (an ISO 15118-2 document starts with 0x80).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import typer

from cli.common import guarded, print_json, read_input_file
from pki.core import InvalidInput
from pki.iso15118 import (
    Fragment,
    SchemaElement,
    SignedInfo,
    V2GMessage,
    decode_fragment,
    decode_message,
    decode_signed_info,
    element_tree,
    exi20,
    readable_certificate,
    to_xml,
)

__all__ = ["EXI_HELP", "app", "message_json", "message_xml", "read_exi", "read_exi_base64", "tree_json", "tree_xml"]

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


def _is_certificate(element: SchemaElement) -> bool:
    return element.simple_type == "certificateType" and isinstance(element.value, bytes)


def _json_value(element: SchemaElement) -> Any:
    if _is_certificate(element):
        summary = _certificate_summary(element.value)
        if summary is not None:
            return {**summary, "der": element.text}
    if isinstance(element.value, int) and not isinstance(element.value, bool):
        if element.simple_type == "xs:integer":  # X509SerialNumber: beyond what JSON numbers hold exactly
            return {"decimal": str(element.value), "hex": format(element.value, "X")}
        return element.value
    return element.text


def _json(element: SchemaElement) -> Any:
    if not element.attributes and not element.children:
        return _json_value(element) if element.simple_type is not None else {}
    out: dict[str, Any] = dict(element.attributes)
    if element.simple_type is not None:  # simple content with attributes: <eMAID Id="id4">DE…</eMAID>
        out["value"] = _json_value(element)
    for child in element.children:
        if child.repeatable:  # maxOccurs > 1: always a list, however many the message holds
            out.setdefault(child.name, []).append(_json(child))
        else:
            out[child.name] = _json(child)
    return out


def tree_json(tree: SchemaElement) -> dict[str, Any]:
    """An element tree (ISO 15118-2 or -20) as JSON keyed by the schema's names; bytes as base64
    (SessionID as hex), certificates summarised, repeatable elements as lists."""
    return {tree.name: _json(tree)}


def message_json(decoded: V2GMessage | Fragment | SignedInfo) -> dict[str, Any]:
    """A decoded ISO 15118-2 message, fragment or SignedInfo as JSON (:func:`tree_json`)."""
    return tree_json(element_tree(decoded))


def _certificate_comment(element: SchemaElement) -> str | None:
    if not _is_certificate(element):
        return None
    summary = _certificate_summary(element.value)
    if summary is None:
        return "not a readable X.509 certificate"
    return (
        f"subject {summary['subject']}; issuer {summary['issuer']}; serial {summary['serial']}; "
        f"not after {summary['notAfter']}"
    )


def tree_xml(tree: SchemaElement) -> str:
    """The XML rendering of an element tree, each certificate followed by a comment summarising it."""
    return to_xml(tree, comment=_certificate_comment)


def message_xml(decoded: V2GMessage | Fragment | SignedInfo) -> str:
    """The XML rendering of a decoded ISO 15118-2 message (:func:`tree_xml`)."""
    return tree_xml(element_tree(decoded))


@app.command("decode")
@guarded
def decode(
    exi: Annotated[str, typer.Argument(metavar="BASE64|@FILE", help=EXI_HELP)],
    fragment: Annotated[
        bool, typer.Option("--fragment", help="Decode a signed-element fragment instead of a V2G_Message.")
    ] = False,
    signed_info: Annotated[bool, typer.Option("--signed-info", help="Decode an xmldsig SignedInfo fragment.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON keyed by the schema's element names instead of XML.")
    ] = False,
    iso20: Annotated[
        bool,
        typer.Option(
            "--iso20",
            help="ISO 15118-20 CommonMessages: CertificateInstallationReq/Res, or with --fragment "
            "OEMProvisioningCertificateChain / SignedInstallationData.",
        ),
    ] = False,
) -> None:
    """Print an ISO 15118-2 message (CertificateInstallation/Update Req/Res) as XML, or as JSON.

    The names are the schema's (V2G_Message, Header, SessionID, Body, CertificateInstallationReq,
    OEMProvisioningCert, ...), so the output compares with ISO 15118-2 and with other codecs' XML;
    namespaces are left out.

    With --iso20 the input is an ISO 15118-20 CertificateInstallationReq/Res (no V2G_Message
    wrapper: the message is the root, its Header inside).

    Example: evpki exi decode @request.exi
    """
    data = read_exi(exi)
    if fragment and signed_info:
        raise InvalidInput("--fragment and --signed-info exclude each other")
    if iso20:
        decoded20 = (
            exi20.decode_signed_info(data)
            if signed_info
            else exi20.decode_fragment(data)
            if fragment
            else exi20.decode_message(data)
        )
        tree = exi20.element_tree(decoded20)
        if as_json:
            print_json(tree_json(tree))
        else:
            typer.echo(tree_xml(tree))
        return
    decoded: V2GMessage | Fragment | SignedInfo
    if signed_info:
        decoded = decode_signed_info(data)
    elif fragment:
        decoded = decode_fragment(data)
    else:
        decoded = decode_message(data)
    if as_json:
        print_json(message_json(decoded))
    else:
        typer.echo(message_xml(decoded))
