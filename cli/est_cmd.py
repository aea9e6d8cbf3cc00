"""``evpki est secret add|list|revoke``: one-time secrets for a first EST enrollment (RFC 7030 §3.2.3)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.common import actor, console, guarded, open_pki, print_json
from pki.core import parse_duration

__all__ = ["app"]

app = typer.Typer(
    help=(
        "EST enrollment (RFC 7030), served by `evpki serve --est-port 8443` on a TLS listener of its own: "
        "/.well-known/est/cacerts, /simpleenroll, /simplereenroll, the same under /.well-known/est/<CA id>/, "
        "and the OPCP paths /.well-known/est/{cpo|mo|oem|cps}/simpleenroll/{ISO15118-2|ISO15118-20} and "
        "/{ca}/cacerts/{iso-version}/{algorithm}/. A first enrollment authenticates with HTTP Basic "
        "(identity : one-time secret from `evpki est secret add`) or a bootstrap client certificate "
        "(EVPKI_EST_BOOTSTRAP_CAS); a renewal (simplereenroll) with the current certificate as the TLS client "
        "certificate. Every request goes through the same issuance policy as `evpki cert issue`."
    ),
    no_args_is_help=True,
)
secret_app = typer.Typer(
    help="One-time enrollment secrets: single-use, expiring, shown once and stored hashed.", no_args_is_help=True
)
app.add_typer(secret_app, name="secret")


@secret_app.command("add")
@guarded
def add(
    identity: Annotated[
        str,
        typer.Option(
            "--identity",
            help="Who enrolls: a registered station's OCPP identity (profile station; the CSR CN must be its "
            "registered serial), an SECC id (profile secc; CN = the SECC id, DC=CPO) or a PCID (oem-provisioning).",
        ),
    ],
    profile: Annotated[str, typer.Option("--profile", help="station, secc or oem-provisioning.")] = "station",
    ttl: Annotated[
        str | None, typer.Option("--ttl", help="Lifetime, e.g. 24h or 7d (default EVPKI_EST_SECRET_TTL, 7d).")
    ] = None,
    ca: Annotated[str | None, typer.Option("--ca", help="Only this issuing CA (default: the profile's).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON (the secret included).")] = False,
) -> None:
    """Register a one-time enrollment secret and print it once; the client sends IDENTITY:SECRET as HTTP Basic."""
    lifetime = parse_duration(ttl) if ttl is not None else None
    view, secret = open_pki().est.add_secret(identity=identity, profile=profile, ttl=lifetime, ca_id=ca, actor=actor())
    if json_output:
        print_json({**view.to_json(), "secret": secret})
        return
    console.print(
        f"enrollment secret {view.id} for {view.identity!r} ({view.profile}), valid until "
        f"{view.expires_at:%Y-%m-%d %H:%M} UTC. It is shown only this once:",
        style="bold",
        markup=False,
    )
    typer.echo(secret)
    console.print(f"Use it once as HTTP Basic credentials: curl -u '{view.identity}:<secret>' …", markup=False)


@secret_app.command("list")
@guarded
def list_secrets(
    identity: Annotated[str | None, typer.Option("--identity", help="Only this identity's.")] = None,
    all_secrets: Annotated[bool, typer.Option("--all", help="Used, revoked and expired ones too.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List enrollment secrets (never the secrets themselves): active ones, or every one with --all."""
    views = open_pki().est.secrets(identity=identity, include_inactive=all_secrets)
    if json_output:
        print_json([view.to_json() for view in views])
        return
    table = Table("id", "identity", "profile", "ca", "status", "expires", "certificate")
    for view in views:
        used = f"{view.certificate_issuer}/{view.certificate_serial}" if view.certificate_serial else ""
        table.add_row(
            str(view.id),
            view.identity,
            view.profile,
            view.ca_id or "",
            view.status,
            f"{view.expires_at:%Y-%m-%d %H:%M}",
            used,
        )
    console.print(table)


@secret_app.command("revoke")
@guarded
def revoke(secret_id: Annotated[int, typer.Argument(help="The secret's id (from `est secret list`).")]) -> None:
    """Revoke an unused enrollment secret: it authenticates nobody from now on."""
    view = open_pki().est.revoke_secret(secret_id, actor=actor())
    console.print(f"enrollment secret {view.id} for {view.identity!r} revoked", markup=False)
