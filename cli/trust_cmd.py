"""``evpki trust add|list|show|remove|import``: the trust store of root certificates we did not make."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.common import EXIT_CODES_HELP, actor, console, guarded, open_pki, print_json, read_input_file
from pki.ca import RootUse, TrustedRootView

__all__ = ["app"]

_USES = ", ".join(use.value for use in RootUse)

app = typer.Typer(
    help=(
        "The trust store: foreign roots (an ecosystem V2G root, another MO's root, a vehicle OEM's root, a corporate "
        "CSMS root) trusted for one OCPP root use. They are offered to stations after our own roots "
        "(GET /api/v1/roots, root reconciliation); OEMRootCertificate roots are also anchors of contract provisioning."
    ),
    no_args_is_help=True,
    epilog=EXIT_CODES_HELP,
)

UseOpt = Annotated[str, typer.Option("--use", help=f"OCPP root use: {_USES}.")]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The root's SHA-256 fingerprint (hex) or its label.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _state(view: TrustedRootView) -> str:
    return f"removed {view.removed_at:%Y-%m-%d %H:%M}" if view.removed_at else "trusted"


def _print(view: TrustedRootView) -> None:
    console.print(f"{view.use.value}  {view.subject}", highlight=False)
    console.print(f"  sha256   {view.sha256}", highlight=False)
    console.print(f"  label    {view.label or '-'}   source {view.source}   {_state(view)}", highlight=False)
    console.print(f"  valid    {view.not_before:%Y-%m-%d} .. {view.not_after:%Y-%m-%d}", highlight=False)
    console.print(f"  added    {view.added_at:%Y-%m-%d %H:%M} by {view.added_by}", highlight=False)


@app.command("add", epilog=EXIT_CODES_HELP)
@guarded
def add(
    file: Annotated[str, typer.Argument(metavar="FILE", help="The root certificate, PEM or DER ('-' for stdin).")],
    use: UseOpt,
    label: Annotated[
        str | None, typer.Option("--label", help="A short name to refer to it by (letters, digits, ._:-; ≤ 64).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Trust a root: refused unless it is a self-signed CA, valid now, with a key policy accepts, and new for USE."""
    view = open_pki().trust.add(read_input_file(file), use=use, label=label, actor=actor())
    if json_output:
        print_json(view.as_dict())
        return
    console.print(f"trusted {view.subject} as {view.use.value} ({view.sha256})", highlight=False)


@app.command("list", epilog=EXIT_CODES_HELP)
@guarded
def list_roots(
    use: Annotated[str | None, typer.Option("--use", help=f"Only roots of this use: {_USES}.")] = None,
    include_removed: Annotated[bool, typer.Option("--all", help="Also the removed (retired) roots.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """List the trusted foreign roots, newest first."""
    views = open_pki().trust.list(use=use, include_retired=include_removed)
    if json_output:
        print_json([view.as_dict() for view in views])
        return
    table = Table("use", "label", "subject", "sha256", "valid until", "source", "state")
    for view in views:
        table.add_row(
            view.use.value,
            view.label or "",
            view.subject,
            view.sha256[:16],
            f"{view.not_after:%Y-%m-%d}",
            view.source,
            _state(view),
        )
    console.print(table)


@app.command("show", epilog=EXIT_CODES_HELP)
@guarded
def show(
    key: KeyArg,
    use: Annotated[str | None, typer.Option("--use", help="The use, when the root is trusted for several.")] = None,
    pem_output: Annotated[bool, typer.Option("--pem", help="Print the certificate as PEM.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Show one trusted (or removed) root."""
    view = open_pki().trust.get(key, use=use)
    if json_output:
        print_json(view.as_dict())
    elif pem_output:
        typer.echo(view.certificate_pem, nl=False)
    else:
        _print(view)


@app.command("remove", epilog=EXIT_CODES_HELP)
@guarded
def remove(
    key: KeyArg,
    use: Annotated[str | None, typer.Option("--use", help="The use, when the root is trusted for several.")] = None,
) -> None:
    """Retire a root: no longer offered or trusted; stations delete it once another root of its use is installed."""
    view = open_pki().trust.remove(key, use=use, actor=actor())
    console.print(f"removed {view.subject} from {view.use.value} ({view.sha256})", highlight=False)


@app.command("import", epilog=EXIT_CODES_HELP)
@guarded
def import_file(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="A PEM bundle, or an OPCP RCP Certificate Trust List (JSON).")
    ],
    use: Annotated[
        str | None,
        typer.Option(
            "--use", help=f"The use of every root of a PEM bundle (required there); for a CTL, only: {_USES}."
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Trust every acceptable root of FILE; importing it again changes nothing. Refused roots are listed with why."""
    report = open_pki().trust.import_file(file, use=use, actor=actor())
    if json_output:
        print_json(report.as_dict())
        return
    for view in report.added:
        console.print(f"added      {view.use.value}  {view.subject}", highlight=False)
    for view in report.unchanged:
        console.print(f"unchanged  {view.use.value}  {view.subject}", highlight=False)
    for refusal in report.refused:
        console.print(f"refused    {refusal.entry}: {refusal.reason}", highlight=False)
    console.print(
        f"{len(report.added)} added, {len(report.unchanged)} unchanged, {len(report.refused)} refused", highlight=False
    )
