"""``evpki init`` and ``evpki ca list|show|export|rollover|request|install``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from cryptography.hazmat.primitives import hashes
from rich.table import Table

from cli.common import actor, check_output, console, guarded, open_pki, print_json, read_input_file, write_output
from pki import PKI, Settings
from pki.ca import ISO15118_20_HIERARCHY, CertificateFilter
from pki.core import parse_duration
from pki.runtime import pem

__all__ = ["app", "init"]

app = typer.Typer(
    help="Show, export and roll over certificate authorities; request and install the certificate of a CA "
    "whose parent is external.",
    no_args_is_help=True,
)


@guarded
def init(
    org: Annotated[
        str | None, typer.Option("--org", help="CSO organisation name; station certificates must carry it as O.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Hierarchy TOML (default: the one shipped with evpki).", dir_okay=False),
    ] = None,
    iso15118_20: Annotated[
        bool,
        typer.Option(
            "--iso15118-20",
            help="Build the shipped hierarchy with ISO 15118-20 PKIs (P-521) beside the default ones; "
            "on an existing data directory this adds only the -20 CAs.",
        ),
    ] = False,
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
    if iso15118_20:
        if config is not None:
            raise typer.BadParameter("give --config or --iso15118-20, not both")
        config = ISO15118_20_HIERARCHY
    report = pki.cas.init(config=config, organization=org, actor=actor())
    console.print(f"CSO organisation: [bold]{report.organization}[/bold] (keys: {pki.settings.keystore})")
    if report.created:
        console.print(f"created: {', '.join(report.created)}")
    if report.kept:
        console.print(f"kept (already present): {', '.join(report.kept)}")
    for ca_id in report.awaiting:
        console.print(
            f"[yellow]{ca_id} awaits its certificate from its external parent[/yellow]: "
            f"`evpki ca request {ca_id} --out {ca_id}.csr`, have that CA sign it, then "
            f"`evpki ca install {ca_id} --certificate FILE [--chain FILE]`"
        )
    if report.waiting:
        console.print(f"waiting for those (created when they are installed): {', '.join(report.waiting)}")


@app.command("list")
@guarded
def list_cas(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the CAs with their validity and what they issue, and the CAs awaiting their certificate."""
    pki = open_pki()
    cas, awaiting = pki.cas.list(), pki.cas.awaiting()
    if json_output:
        print_json(
            [ca.to_json() for ca in cas]
            + [
                {"id": r.id, "pki": r.pki, "standard": r.standard, "subject": r.subject, "awaiting_certificate": True}
                for r in awaiting
            ]
        )
        return
    table = Table("id", "parent", "standard", "not after", "issues")
    for ca in cas:
        parent = ca.parent_id or ("external" if ca.external_parent else "-")
        table.add_row(ca.id, parent, ca.standard, ca.not_after.date().isoformat(), ", ".join(ca.issues))
    for request in awaiting:
        table.add_row(request.id, "external", request.standard, "awaiting certificate", ", ".join(request.issues))
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
    chain: Annotated[
        bool,
        typer.Option(
            "--chain",
            help="Append the issuers up to and including our root; under an external parent, its "
            "intermediates but not the external root.",
        ),
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export a CA certificate (PEM), optionally with its chain."""
    certificates = open_pki().cas.chain(ca_id)
    selected = certificates if chain else certificates[:1]
    write_output("".join(pem(c) for c in selected), out)


@app.command("rollover")
@guarded
def rollover(
    ca_id: Annotated[
        str, typer.Argument(metavar="ROOT", help="Root CA id, e.g. cso-root (or a CA under an external parent).")
    ],
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

    Works for every root (cso-root, mf-root, v2g-root, mo-root, oem-root), and for a CA under an
    external parent (its successor is a new request, installed with `evpki ca install`). The profiles the old CAs
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
    if any(request.id == new_root for request in pki.cas.awaiting()):
        # Under an external parent: the successor is a request that CA signs, and takes over once installed.
        if json_output:
            print_json({"awaiting": new_root, "successor_of": ca_id})
        else:
            console.print(
                f"{new_root} (new key) awaits its certificate from {ca_id}'s external parent: "
                f"`evpki ca request {new_root}`, then `evpki ca install {new_root} --certificate FILE`; "
                f"{ca_id}'s profiles and sub-CAs move to it then"
            )
        return
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


@app.command("request")
@guarded
def request(
    ca_id: Annotated[str, typer.Argument(metavar="ID", help="A CA awaiting its certificate, e.g. cpo-sub1.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the PEM request here instead of stdout.")] = None,
) -> None:
    """Write the PKCS#10 request of a CA whose parent is external, for that CA's operator to sign.

    The request carries the subject and what the CA's profile asks for (basicConstraints with
    pathLen, keyUsage keyCertSign/cRLSign, the subject key identifier) and is signed by the CA's
    own key (file or PKCS#11); `openssl req -verify` checks it. Writing it again gives the same
    subject and key.
    """
    check_output(out)
    write_output(open_pki().cas.request(ca_id).csr_pem, out)


@app.command("install")
@guarded
def install(
    ca_id: Annotated[str, typer.Argument(metavar="ID", help="The CA the certificate is for, e.g. cpo-sub1.")],
    certificate: Annotated[
        str, typer.Option("--certificate", help="The CA certificate the external CA signed (PEM or DER; - for stdin).")
    ],
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            help="The external CA's chain (PEM): its intermediates and, unless the trust store holds it, its root.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Install what an external CA signed for one of our CAs, then create the CAs waiting below it.

    Everything is checked first and a refusal names the rule: the key is the request's; subject as
    requested (or one with CN, and DC for ISO 15118); critical basicConstraints cA with the requested
    pathLen; keyUsage keyCertSign and cRLSign; no EKU on ISO 15118 CAs; valid now and inside its
    issuers' validity; a path through --chain to a self-signed root that is in the trust store or in
    --chain (it is then trusted for the PKI's root use); the ISO 15118-2 limits (800 bytes, P-256,
    at most two sub-CAs below the root). Installing is one audited transaction.
    """
    pki = open_pki()
    report = pki.cas.install(
        ca_id,
        read_input_file(certificate),
        chain=read_input_file(chain) if chain is not None else None,
        actor=actor(),
    )
    if json_output:
        print_json(
            {
                "ca": report.ca.to_json(),
                "intermediates": list(report.intermediates),
                "anchor": {
                    "subject": report.anchor_subject,
                    "sha256": report.anchor_sha256,
                    "added": report.anchor_added,
                },
                "created": list(report.created),
                "waiting": list(report.waiting),
            }
        )
        return
    console.print(f"installed {report.ca.id}: {report.ca.subject} (valid until {report.ca.not_after.date()})")
    for subject in report.intermediates:
        console.print(f"  under external intermediate {subject}")
    added = " (added to the trust store)" if report.anchor_added else ""
    console.print(f"  under external root {report.anchor_subject}{added}")
    if report.created:
        console.print(f"created: {', '.join(report.created)}")
    if report.waiting:
        console.print(f"still waiting: {', '.join(report.waiting)}")
