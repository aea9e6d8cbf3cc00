"""``evpki ocsp presign|responder|rotate``: the OCSP responder's store and certificates."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import actor, console, guarded, open_pki, print_json

__all__ = ["app"]

app = typer.Typer(help="The OCSP responder: pre-signed responses and delegated responder certificates.",
                  no_args_is_help=True)  # fmt: skip

_CA = typer.Option("--ca", help="CA id (default: every CA).")


@app.command("presign")
@guarded
def presign(ca: Annotated[str | None, _CA] = None) -> None:
    """Sign and store responses for every unexpired certificate lacking a fresh one (evpki serve does it too)."""
    counts = open_pki().ocsp.presign(ca)
    for ca_id, count in counts.items():
        console.print(f"{ca_id}: {count} responses signed")


@app.command("responder")
@guarded
def responder(
    ca: Annotated[str, typer.Option("--ca", help="CA id.")],
    pem: Annotated[bool, typer.Option("--pem", help="Print the certificate PEM.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the CA's current responder certificate (issued now if it has none)."""
    view = open_pki().ocsp.responder(ca)
    if pem:
        typer.echo(view.certificate_pem, nl=False)
    elif json_output:
        print_json(view.to_json())
    else:
        console.print(f"{view.subject}  serial {view.serial}  valid until {view.not_after:%Y-%m-%d %H:%M} UTC")


@app.command("rotate")
@guarded
def rotate(ca: Annotated[str, typer.Option("--ca", help="CA id.")]) -> None:
    """Issue a new responder certificate and key for the CA now (e.g. after a key compromise)."""
    view = open_pki().ocsp.rotate_responder(ca, actor=actor())
    console.print(f"new responder for {ca}: serial {view.serial}, valid until {view.not_after:%Y-%m-%d %H:%M} UTC")
