"""``evpki opcp client add|list|remove`` and ``evpki opcp key rotate``: who may call the OPCP pool services."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.common import actor, console, guarded, open_pki, print_json

__all__ = ["app"]

app = typer.Typer(
    help=(
        "OPCP pool services (served by `evpki serve` under /opcp): OAuth2 clients and the token signing key. "
        "Roles: oem (its --wmi PCIDs), cpo, mo-own-pki / mo-v2g-pki (its --provider eMAIDs), cps, admin "
        "(writes the root pool)."
    ),
    no_args_is_help=True,
)
client_app = typer.Typer(help="OAuth2 clients of the OPCP services (client credentials).", no_args_is_help=True)
key_app = typer.Typer(help="The key that signs OPCP access tokens (ES256, in the key store).", no_args_is_help=True)
app.add_typer(client_app, name="client")
app.add_typer(key_app, name="key")


@client_app.command("add")
@guarded
def add(
    role: Annotated[str, typer.Option("--role", help="oem, cpo, mo-own-pki, mo-v2g-pki, cps or admin.")],
    name: Annotated[str, typer.Option("--name", help="A unique name (letters, digits, ._@-).")],
    wmi: Annotated[
        list[str] | None, typer.Option("--wmi", help="OEM only: a World Manufacturer Identifier it manages (repeat).")
    ] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option("--provider", help="MO only: an eMAID provider prefix it manages, e.g. DEABC (repeat)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a client and print its client id and secret; the secret is shown once, only its hash is stored."""
    pki = open_pki()
    view, secret = pki.opcp.add_client(name=name, role=role, wmis=wmi or (), providers=provider or (), actor=actor())
    if json_output:
        print_json({**view.as_dict(), "clientSecret": secret, "audience": pki.opcp.audience})
        return
    console.print(f"OPCP client {view.name!r} (role {view.role.value}) added. The secret is shown only this once:")
    typer.echo(f"client_id={view.client_id}")
    typer.echo(f"client_secret={secret}")
    typer.echo(f"audience={pki.opcp.audience}")


@client_app.command("list")
@guarded
def list_clients(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List clients (ids, roles, scopes; never the secrets)."""
    views = open_pki().opcp.list_clients()
    if json_output:
        print_json([view.as_dict() for view in views])
        return
    table = Table("name", "client id", "role", "scope", "created")
    for view in views:
        scope = ",".join(view.wmis or view.providers) or "-"
        table.add_row(view.name, view.client_id, view.role.value, scope, f"{view.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@client_app.command("remove")
@guarded
def remove(key: Annotated[str, typer.Argument(help="The client's name or client id.")]) -> None:
    """Remove a client and its webhook subscriptions; its tokens stop working at once."""
    view = open_pki().opcp.remove_client(key, actor=actor())
    console.print(f"OPCP client {view.name!r} removed")


@key_app.command("rotate")
@guarded
def rotate(yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False) -> None:
    """Sign new tokens with a new key; tokens signed by the old one stay valid until they expire."""
    if not yes:
        typer.confirm("rotate the OPCP token signing key?", abort=True)
    kid = open_pki().opcp.rotate_signing_key(actor=actor())
    console.print(f"new OPCP token signing key {kid}; the previous one verifies for one more token lifetime")
