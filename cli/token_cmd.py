"""``evpki token create|list|revoke``: API tokens for the REST API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.common import actor, console, guarded, open_pki, print_json

__all__ = ["app"]

app = typer.Typer(
    help=(
        "API tokens. Roles: admin (everything), operator (issue, revoke, firmware), csms (station and SECC "
        "issuance, OCPP handlers, reads), auditor (read-only, audit log)."
    ),
    no_args_is_help=True,
)


@app.command("create")
@guarded
def create(
    role: Annotated[str, typer.Option("--role", help="admin, operator, csms or auditor.")],
    name: Annotated[str, typer.Option("--name", help="A unique name, e.g. the client's (letters, digits, ._@-).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a token and print it once; only its hash is stored, so it cannot be shown again."""
    view, secret = open_pki().tokens.create(name=name, role=role, actor=actor())
    if json_output:
        print_json({**view.as_dict(), "token": secret})
        return
    console.print(f"token {view.name!r} (role {view.role.value}) created. It is shown only this once:", style="bold")
    typer.echo(secret)
    console.print("Use it as: Authorization: Bearer <token>")


@app.command("list")
@guarded
def list_tokens(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List tokens (names, roles, state; never the secrets)."""
    views = open_pki().tokens.list()
    if json_output:
        print_json([view.as_dict() for view in views])
        return
    table = Table("name", "role", "created", "by", "state")
    for view in views:
        state = f"revoked {view.revoked_at:%Y-%m-%d %H:%M}" if view.revoked_at else "active"
        table.add_row(view.name, view.role.value, f"{view.created_at:%Y-%m-%d %H:%M}", view.created_by, state)
    console.print(table)


@app.command("revoke")
@guarded
def revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    view = open_pki().tokens.revoke(name, actor=actor())
    console.print(f"token {view.name!r} revoked")
