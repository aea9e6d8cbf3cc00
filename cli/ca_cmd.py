"""``evpki init`` and ``evpki ca list|show|export|rollover``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from cryptography.hazmat.primitives import hashes
from rich.table import Table

from cli.common import actor, check_output, console, guarded, open_pki, print_json, write_output
from pki import PKI, Settings
from pki.ca import CertificateFilter
from pki.core import parse_duration
from pki.runtime import pem

__all__ = ["app", "init"]

app = typer.Typer(help="Show and export certificate authorities.", no_args_is_help=True)


@guarded
def init(
    org: Annotated[
        str | None, typer.Option("--org", help="CSO organisation name; station certificates must carry it as O.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Hierarchy TOML (default: the one shipped with evpki).", dir_okay=False),
    ] = None,
    keystore: Annotated[
        str | None,
        typer.Option(
            "--keystore",
            help="Where the keys live: file (encrypted files) or pkcs11 (generated on the EVPKI_PKCS11_* token). "
            "Default: EVPKI_KEYSTORE. Set EVPKI_KEYSTORE the same way for every later command.",
        ),
    ] = None,
) -> None:
    """Build the PKI hierarchy. Existing CAs and keys are kept, never replaced."""
    if keystore is None:
        pki = open_pki()
    elif keystore in ("file", "pkcs11"):
        backend: Literal["file", "pkcs11"] = "pkcs11" if keystore == "pkcs11" else "file"
        pki = PKI.open(Settings().model_copy(update={"keystore": backend}))
    else:
        raise typer.BadParameter(f"--keystore must be file or pkcs11, not {keystore!r}")
    report = pki.cas.init(config=config, organization=org, actor=actor())
    console.print(f"CSO organisation: [bold]{report.organization}[/bold] (keys: {pki.settings.keystore})")
    if report.created:
        console.print(f"created: {', '.join(report.created)}")
    if report.kept:
        console.print(f"kept (already present): {', '.join(report.kept)}")


@app.command("list")
@guarded
def list_cas(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the CAs with their validity and what they issue."""
    cas = open_pki().cas.list()
    if json_output:
        print_json([ca.to_json() for ca in cas])
        return
    table = Table("id", "parent", "standard", "not after", "issues")
    for ca in cas:
        table.add_row(ca.id, ca.parent_id or "-", ca.standard, ca.not_after.date().isoformat(), ", ".join(ca.issues))
    console.print(table)


@app.command("show")
@guarded
def show(
    ca_id: Annotated[str, typer.Argument(metavar="ID", help="CA id, e.g. cso-sub.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON (with the PEM).")] = False,
) -> None:
    """Show one CA."""
    ca = open_pki().cas.get(ca_id)
    if json_output:
        print_json(ca.to_json(with_pem=True))
        return
    for key, value in ca.to_json().items():
        console.print(f"[bold]{key}[/bold]: {', '.join(value) if isinstance(value, list) else value}")


@app.command("export")
@guarded
def export(
    ca_id: Annotated[str, typer.Argument(metavar="ID", help="CA id, e.g. cso-sub.")],
    chain: Annotated[bool, typer.Option("--chain", help="Append the issuers up to and including the root.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export a CA certificate (PEM), optionally with its chain."""
    certificates = open_pki().cas.chain(ca_id)
    selected = certificates if chain else certificates[:1]
    write_output("".join(pem(c) for c in selected), out)


@app.command("rollover")
@guarded
def rollover(
    ca_id: Annotated[str, typer.Argument(metavar="ROOT", help="Root CA id, e.g. cso-root.")],
    validity: Annotated[
        str | None, typer.Option("--validity", help="Lifetime of the new root, e.g. 20y (default: the old one's).")
    ] = None,
    link_out: Annotated[
        Path | None, typer.Option("--link-out", help="Write the link certificate (new root signed by the old) here.")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the new generation (CAs, what they issue, new leaves) as JSON.")
    ] = False,
) -> None:
    """Start a new generation of a root: new root, a link certificate the old root signs, its sub-CAs copied.

    Works for every root (cso-root, mf-root, v2g-root, mo-root, oem-root). The profiles the old CAs
    issued, the root's own included (mf-root: firmware-signer), move to their copies, and the
    certificates evpki holds keys of (firmware signer, CPS leaf, CSMS server) get successors there.
    The old generation stays valid until you revoke it or it expires; `evpki bridge` installs the
    new root on stations and deletes the old one once it is no longer trusted.
    """
    pki = open_pki()
    # A new root generation is not undone: every parameter is checked before it is made.
    lifetime = parse_duration(validity) if validity else None
    check_output(link_out)
    new_root = pki.cas.rollover(ca_id, validity=lifetime, actor=actor())
    link = pki.cas.root_link(new_root)
    generation = pki.cas.subtree(new_root)
    leaves = [
        view
        for ca in generation
        for view in pki.certificates.list(CertificateFilter(ca_id=ca.id))
        if view.label is not None and view.profile in ca.issues
    ]
    if json_output:
        print_json(
            {
                "root": new_root,
                "link_sha256": link.fingerprint(hashes.SHA256()).hex() if link is not None else None,
                "cas": [{"id": ca.id, "parent_id": ca.parent_id, "issues": list(ca.issues)} for ca in generation],
                "managed_leaves": [
                    {"label": view.label, "issuer_id": view.issuer_id, "serial": view.serial} for view in leaves
                ],
            }
        )
    else:
        console.print(f"new root {new_root}; its generation: {', '.join(ca.id for ca in generation)}")
        for ca in generation:
            if ca.issues:
                console.print(f"  {ca.id} issues {', '.join(ca.issues)}")
        for view in leaves:
            console.print(f"  new {view.label} certificate {view.serial} from {view.issuer_id}")
    if link is not None and link_out is not None:
        write_output(pem(link), link_out)
