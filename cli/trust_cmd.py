"""``evpki trust add|list|show|remove|import|sync``: the trust store of root certificates we did not make."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import EXIT_CODES_HELP, actor, console, fail, guarded, open_pki, print_json, read_input_file
from cli.rcp_client import RcpClient, read_client_secret
from pki.ca import RootUse, SyncReport, TrustedRootView
from pki.core import Unauthenticated

__all__ = ["app"]

_USES = ", ".join(use.value for use in RootUse)

app = typer.Typer(
    help=(
        "The trust store: foreign roots (an ecosystem V2G root, another MO's root, a vehicle OEM's root, a corporate "
        "CSMS root) trusted for one OCPP root use. They are offered to stations after our own roots "
        "(GET /api/v1/roots, root reconciliation); OEMRootCertificate roots are also anchors of contract provisioning. "
        "'trust sync' keeps it in line with an OPCP Root Certificate Pool; EVPKI_ISO15118_OEM_ROOTS seeds OEM roots."
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


EXIT_UNAUTHENTICATED = 10
SYNC_EXIT_CODES_HELP = (
    "Exit codes: 0 synced, or nothing to change (refused roots are warned about on stderr); 3 an option or the "
    "pool's answer cannot be read (not JSON, too large, an entry whose certificate does not decode); 4 with --strict, "
    "a root was refused; 6 another sync changed the store at the same time; 7 the pool or its token endpoint cannot be "
    "reached, timed out or answered an error (or the database is unavailable); 10 the credentials or the token were "
    "refused (HTTP 400/401/403). On every non-zero exit nothing was changed."
)
_warnings = Console(stderr=True, highlight=False, soft_wrap=True)


def _print_sync(report: SyncReport) -> None:
    for change in report.added:
        console.print(f"added      {change.use.value}  {change.subject}", highlight=False, soft_wrap=True)
    for change in report.retired:
        console.print(
            f"retired    {change.use.value}  {change.subject}: {change.reason}", highlight=False, soft_wrap=True
        )
    for change in report.held_back:
        console.print(
            f"held back  {change.use.value}  {change.subject}: {change.reason}", highlight=False, soft_wrap=True
        )
    for refusal in report.ignored:
        console.print(f"ignored    {refusal.entry}: {refusal.reason}", highlight=False, soft_wrap=True)
    summary = (
        f"{len(report.added)} added, {len(report.retired)} retired, {len(report.unchanged)} unchanged, "
        f"{len(report.refused)} refused, {len(report.held_back)} held back"
    )
    console.print(
        summary + (" (dry run: nothing was changed)" if report.dry_run else ""), highlight=False, soft_wrap=True
    )


@app.command("sync", epilog=SYNC_EXIT_CODES_HELP)
@guarded
def sync(
    rcp: Annotated[
        str, typer.Option("--rcp", metavar="URL", help="Base URL of the OPCP Root Certificate Pool (https).")
    ],
    client_id: Annotated[str, typer.Option("--client-id", metavar="ID", help="OAuth2 client id the pool issued.")],
    client_secret_file: Annotated[
        Path,
        typer.Option("--client-secret-file", metavar="FILE", help="File holding the OAuth2 client secret (mode 0600)."),
    ],
    token_url: Annotated[
        str | None,
        typer.Option("--token-url", metavar="URL", help="OAuth2 token endpoint (default: the pool's /oauth/token)."),
    ] = None,
    audience: Annotated[
        str | None, typer.Option("--audience", help="Token audience, the stage and region URL (default: --rcp).")
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA bundle to verify the pool's TLS certificate (default: system).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, max=600, help="Seconds for the whole exchange with the pool.")
    ] = 30.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; change nothing.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 4, change nothing) if the pool lists any root we refuse.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Pull the roots of an OPCP Root Certificate Pool: add new ones, retire the ones it no longer lists.

    Each listed root is checked as 'trust add' checks it; a refused one is skipped with a warning (--strict fails).

    Only roots an earlier sync of this pool added are retired; those added by hand, imported or seeded stay.

    One transaction, one audit record per change; nothing to change writes nothing. No prompts: fit for cron.
    """
    if ca_file is not None and not ca_file.is_file():
        raise fail(f"--ca-file {ca_file}: no such file", 3)
    client = RcpClient(
        rcp_url=rcp,
        client_id=client_id,
        client_secret=read_client_secret(client_secret_file),
        token_url=token_url,
        audience=audience,
        timeout=timeout,
        verify=str(ca_file) if ca_file is not None else True,
    )
    try:
        listing = client.fetch_root_listing()
    except Unauthenticated as error:
        raise fail(error.message, EXIT_UNAUTHENTICATED) from None
    report = open_pki().trust.sync(listing, pool=rcp.rstrip("/"), dry_run=dry_run, strict=strict, actor=actor())
    for refusal in report.refused:
        _warnings.print(f"warning: refused {refusal.entry}: {refusal.reason}", markup=False)
    if json_output:
        print_json(report.as_dict())
    else:
        _print_sync(report)
