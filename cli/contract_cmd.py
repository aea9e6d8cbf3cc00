"""``evpki contract add|list|show|revoke``: the ISO 15118 contract registry (PCID ↔ eMAID);
``evpki contract install``: answer a station's Get15118EVCertificate request."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from cli.common import actor, console, fail, guarded, open_pki, print_json
from cli.exi_cmd import EXI_HELP as _EXI_HELP
from cli.exi_cmd import read_exi_base64
from pki.core import InvalidInput, parse_duration
from pki.iso15118 import CONTRACT_STATUSES, MAX_LIMIT, MSG_DEF_NAMESPACE, ContractView

__all__ = ["app"]

# The command prints each outcome itself; the service's log lines would repeat it on stderr.
logging.getLogger("evpki.iso15118").addHandler(logging.NullHandler())

app = typer.Typer(
    help="ISO 15118 contracts: which vehicle (PCID) holds which contract (eMAID), and their certificates.",
    no_args_is_help=True,
)

EmaidArg = Annotated[
    str, typer.Argument(metavar="EMAID", help="eMAID, with or without hyphens (DE-ABC-C123ABC56 = DEABCC123ABC56).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def parse_instant(text: str, *, end_of_day: bool = False) -> dt.datetime:
    """ISO 8601 date or date-time, UTC unless it names an offset; a bare date as an end means 23:59:59 that day."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            at = dt.time(23, 59, 59) if end_of_day else dt.time(0, 0)
            return dt.datetime.combine(day, at, tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"not a date or date-time: {text!r} (use e.g. 2027-12-31 or 2027-12-31T18:00:00Z)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _day(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d}" if value is not None else "-"


def _certificate(view: ContractView) -> str:
    current = view.current_certificate
    return f"{current.issuer_id}/{current.serial}" if current else "-"


@app.command("add")
@guarded
def add(
    emaid: Annotated[str, typer.Option("--emaid", help="Contract id; hyphens are removed, letters upper-cased.")],
    pcid: Annotated[str, typer.Option("--pcid", help="The vehicle: CN of its OEM provisioning certificate.")],
    valid_from: Annotated[
        str | None, typer.Option("--valid-from", help="Start (date or ISO date-time, UTC by default); default now.")
    ] = None,
    valid_until: Annotated[
        str | None,
        typer.Option(
            "--valid-until", help="End: a date (its 23:59:59 UTC) or an ISO date-time (UTC unless it has an offset)."
        ),
    ] = None,
    validity: Annotated[
        str | None, typer.Option("--validity", help="End as a duration from the start, e.g. 1y or 90d.")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Free text, e.g. a customer reference (at most 200 characters).")
    ] = None,
    priority: Annotated[
        int,
        typer.Option("--priority", help="Order among the vehicle's contracts, lower first (0-1000000)."),
    ] = 0,
    concurrent: Annotated[
        bool,
        typer.Option(
            "--concurrent", help="May overlap the vehicle's other contracts (ISO 15118-20 hands a car several)."
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Register a contract. A vehicle holds one contract at a time unless --concurrent; without an end,
    certificates get the default validity."""
    if valid_until is not None and validity is not None:
        raise InvalidInput("give --valid-until or --validity, not both")
    view = open_pki().contracts.add(
        emaid=emaid,
        pcid=pcid,
        valid_from=parse_instant(valid_from) if valid_from else None,
        valid_until=parse_instant(valid_until, end_of_day=True) if valid_until else None,
        validity=parse_duration(validity) if validity else None,
        note=note,
        priority=priority,
        concurrent=concurrent,
        actor=actor(),
    )
    if json_output:
        print_json(view.to_json())
        return
    console.print(f"contract {view.emaid} for PCID {view.pcid} added ({view.status})", highlight=False)


@app.command("list")
@guarded
def list_contracts(
    pcid: Annotated[str | None, typer.Option("--pcid", help="Only this vehicle's contracts.")] = None,
    status: Annotated[str | None, typer.Option("--status", help=", ".join(CONTRACT_STATUSES) + ".")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many.")] = 1000,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (in the order added).")] = 0,
    json_output: JsonOpt = False,
) -> None:
    """List contracts in the order they were added."""
    views = open_pki().contracts.list(pcid=pcid, status=status, limit=limit, offset=offset)
    if json_output:
        print_json([view.to_json() for view in views])
        return
    # Identifiers are copied from here: never wrapped, whatever the terminal width.
    table = Table(
        Column("eMAID", no_wrap=True),
        Column("PCID", no_wrap=True),
        Column("status", no_wrap=True),
        "valid from",
        "valid until",
        "certificate",
        "note",
    )
    for view in views:
        table.add_row(
            view.emaid,
            view.pcid,
            view.status,
            _day(view.valid_from),
            _day(view.valid_until),
            _certificate(view),
            escape(view.note) if view.note else "-",
        )
    console.print(table)


@app.command("show")
@guarded
def show(emaid: EmaidArg, json_output: JsonOpt = False) -> None:
    """Show one contract, its state and its current contract certificate."""
    view = open_pki().contracts.get(emaid)
    if json_output:
        print_json(view.to_json())
        return
    for name, value in view.to_json().items():
        shown = escape(str(value)) if value is not None else "-"
        console.print(f"[bold]{name}[/bold]: {shown}", highlight=False)


@app.command("revoke")
@guarded
def revoke(
    emaid: EmaidArg,
    note: Annotated[str | None, typer.Option("--note", help="Why (at most 200 characters).")] = None,
) -> None:
    """End a contract now; its usable contract certificates are revoked (cessationOfOperation)."""
    result = open_pki().contracts.revoke(emaid, note=note, actor=actor())
    console.print(f"contract {result.contract.emaid} revoked", highlight=False)
    for ref in result.revoked_certificates:
        console.print(f"{ref.issuer_id}/{ref.serial}: revoked (cessationOfOperation)", highlight=False)


@app.command("install")
@guarded
def install(
    exi_request: Annotated[
        str, typer.Option("--exi-request", metavar="BASE64|@FILE", help="The station's exiRequest: " + _EXI_HELP)
    ],
    action: Annotated[str, typer.Option("--action", help="Install or Update, as in Get15118EVCertificate.")],
    schema_version: Annotated[
        str,
        typer.Option(
            "--schema-version",
            help="iso15118SchemaVersion as the station sent it; urn:iso:std:iso:15118:-20:CommonMessages "
            "answers an ISO 15118-20 CertificateInstallationReq (one contract per call, remainingContracts).",
        ),
    ] = MSG_DEF_NAMESPACE,
    ocpp_version: Annotated[
        str, typer.Option("--ocpp-version", help="1.6, 2.0.1 or 2.1: sets the exiRequest/exiResponse length limits.")
    ] = "2.0.1",
    max_response_chars: Annotated[
        int | None,
        typer.Option("--max-response-chars", help="A larger exiResponse limit the station advertises (FieldLength)."),
    ] = None,
) -> None:
    """Answer a Get15118EVCertificate request: print {"status", "exiResponse"} as OCPP wants it.

    Exit 0 when a contract certificate was issued; 4 when the answer carries an ISO FAILED_*
    ResponseCode (no contract, bad signature, ...); 3 when no EXI answer is possible (status Failed).
    The JSON is printed in every case.
    """
    result = open_pki().contracts.provision(
        iso15118_schema_version=schema_version,
        action=action,
        exi_request=read_exi_base64(exi_request),
        ocpp_version=ocpp_version,
        max_response_chars=max_response_chars,
        actor=actor(),
    )
    print_json(result.to_ocpp())
    if result.status == "Failed":
        raise fail(result.reason or "no EXI answer is possible", 3)
    if result.response_code is None or not result.response_code.ok:
        raise fail(f"{result.response_code.value if result.response_code else '?'}: {result.reason}", 4)
