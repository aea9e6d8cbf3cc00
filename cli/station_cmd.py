"""``evpki station add|list|show|remove|disable|enable|passwd``: the OCPP station registry.

A station connects under its OCPP *identity* (the last URL path segment) and its certificate's CN
carries its *serial* (OCPP A00.FR.511); the registry maps one to the other and fixes the security
profile it must use: 3 (mutual TLS, the default) or 2 (TLS + HTTP Basic auth with a password that
is stored only as an scrypt hash).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import actor, console, fail, guarded, open_pki, print_json, read_input_file
from pki.core import InvalidInput
from pki.stations import StationView

__all__ = ["app"]

app = typer.Typer(
    help=(
        "OCPP stations the bridge admits: identity ↔ certificate serial (CN), security profile 3 (mutual TLS) "
        "or 2 (HTTP Basic auth), active or disabled."
    ),
    no_args_is_help=True,
)

IdentityArg = Annotated[str, typer.Argument(metavar="ID", help="The station's OCPP identity (last URL path segment).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="File holding the Basic-auth password (16-40 characters; '-' reads stdin). Prompted for when omitted.",
    ),
]


def _password(path: Path | None) -> str:
    if path is not None:
        text = read_input_file(str(path)).decode("utf-8", "replace").strip()
        if not text:
            raise InvalidInput(f"{path}: empty password file")
        return text
    return str(typer.prompt("Basic-auth password (16-40 characters)", hide_input=True, confirmation_prompt=True))


def _print(view: StationView) -> None:
    console.print(f"identity          {escape(view.identity)}")
    console.print(f"serial (CN)       {escape(view.serial)}")
    console.print(f"security profile  {view.security_profile}")
    console.print(f"password          {'set' if view.has_password else '-'}")
    console.print(f"status            {view.status}")
    console.print(f"ocpp version      {view.ocpp_version or '-'}")
    seen = f"{view.last_seen_at:%Y-%m-%d %H:%M:%S}Z" if view.last_seen_at else "-"
    console.print(f"last seen         {seen}")
    console.print(f"registered        {view.created_at:%Y-%m-%d %H:%M:%S}Z")


@app.command("add")
@guarded
def add(
    identity: IdentityArg,
    serial: Annotated[str, typer.Option("--serial", help="Serial number the certificate CN carries (A00.FR.511).")],
    profile: Annotated[
        int, typer.Option("--profile", help="Security profile: 3 = mutual TLS, 2 = TLS + Basic auth.")
    ] = 3,
    password_file: PasswordFileOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Register a station. Profile 2 needs a password (from --password-file, or prompted for)."""
    if profile not in (2, 3):
        raise fail("--profile must be 2 or 3", 2)
    password = _password(password_file) if profile == 2 or password_file is not None else None
    view = open_pki().stations.add(
        identity=identity, serial=serial, security_profile=profile, password=password, actor=actor()
    )
    if json_output:
        print_json(view.to_json())
        return
    console.print(f"station {escape(view.identity)} registered (serial {escape(view.serial)}, profile {profile})")


@app.command("list")
@guarded
def list_stations(
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="At most this many.")] = 1000,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (ordered by identity).")] = 0,
    json_output: JsonOpt = False,
) -> None:
    """List registered stations, ordered by identity."""
    views = open_pki().stations.list(limit=limit, offset=offset)
    if json_output:
        print_json([view.to_json() for view in views])
        return
    table = Table("identity", "serial", "profile", "status", "ocpp", "last seen")
    for view in views:
        seen = f"{view.last_seen_at:%Y-%m-%d %H:%M}" if view.last_seen_at else "-"
        table.add_row(
            escape(view.identity),
            escape(view.serial),
            str(view.security_profile),
            view.status,
            view.ocpp_version or "-",
            seen,
        )
    console.print(table)


@app.command("show")
@guarded
def show(identity: IdentityArg, json_output: JsonOpt = False) -> None:
    """Show one station."""
    view = open_pki().stations.get(identity)
    if json_output:
        print_json(view.to_json())
        return
    _print(view)


@app.command("remove")
@guarded
def remove(
    identity: IdentityArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a station from the registry; it can no longer connect (its certificates stay as they are)."""
    if not yes:
        typer.confirm(f"remove station {identity}?", abort=True)
    open_pki().stations.remove(identity, actor=actor())
    console.print(f"station {escape(identity)} removed")


@app.command("disable")
@guarded
def disable(identity: IdentityArg) -> None:
    """Refuse the station's future connections (an open connection stays until it reconnects)."""
    view = open_pki().stations.set_status(identity, "disabled", actor=actor())
    console.print(f"station {escape(view.identity)} disabled")


@app.command("enable")
@guarded
def enable(identity: IdentityArg) -> None:
    """Admit a disabled station again."""
    view = open_pki().stations.set_status(identity, "active", actor=actor())
    console.print(f"station {escape(view.identity)} enabled")


@app.command("passwd")
@guarded
def passwd(identity: IdentityArg, password_file: PasswordFileOpt = None) -> None:
    """Set a station's Basic-auth password (profile 2); configure the same on the station (BasicAuthPassword)."""
    view = open_pki().stations.set_password(identity, _password(password_file), actor=actor())
    console.print(f"password of station {escape(view.identity)} changed")
