"""``evpki cert issue|renew|revoke|release|list|show``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import actor, check_output, console, guarded, open_pki, print_json, read_input_file, write_output
from pki.ca import CERTIFICATE_STATUSES, CertificateFilter, RequestIdentity
from pki.core import parse_duration
from pki.revocation import RevocationReason
from pki.runtime import CertificateView

__all__ = ["app"]

app = typer.Typer(help="Issue, renew, revoke and inspect certificates.", no_args_is_help=True)

ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        help="station, secc, csms-server, firmware-signer, cps-leaf, contract or oem-provisioning.",
    ),
]
CsrOpt = Annotated[str, typer.Option("--csr", help="PKCS#10 request file (PEM or DER); '-' reads stdin.")]
StationOpt = Annotated[str | None, typer.Option("--station-id", help="OCPP identity of the charging station.")]
SerialOpt = Annotated[
    str | None,
    typer.Option("--station-serial", help="Station serial number for the CN (default: the station id)."),
]
SeccOpt = Annotated[str | None, typer.Option("--secc-id", help="SECC id (CN of a secc certificate).")]
FqdnOpt = Annotated[str | None, typer.Option("--fqdn", help="Host name of a csms-server certificate.")]
EmaidOpt = Annotated[str | None, typer.Option("--emaid", help="eMAID of a contract certificate.")]
PcidOpt = Annotated[str | None, typer.Option("--pcid", help="PCID of an oem-provisioning certificate.")]
CaOpt = Annotated[str | None, typer.Option("--ca", help="Issuing CA id (default: the CA that issues the profile).")]
ValidityOpt = Annotated[str | None, typer.Option("--validity", help="e.g. 90d (default and maximum per profile).")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write the PEM chain here instead of stdout.")]


def _identity(
    station_id: str | None,
    station_serial: str | None,
    secc_id: str | None,
    fqdn: str | None,
    emaid: str | None,
    pcid: str | None,
) -> RequestIdentity:
    return RequestIdentity(
        station_id=station_id, station_serial=station_serial, secc_id=secc_id, fqdn=fqdn, emaid=emaid, pcid=pcid
    )


def _validity(text: str | None) -> dt.timedelta | None:
    return parse_duration(text) if text else None


@app.command("issue")
@guarded
def issue(
    profile: ProfileOpt,
    csr: CsrOpt,
    station_id: StationOpt = None,
    station_serial: SerialOpt = None,
    secc_id: SeccOpt = None,
    fqdn: FqdnOpt = None,
    emaid: EmaidOpt = None,
    pcid: PcidOpt = None,
    ca: CaOpt = None,
    validity: ValidityOpt = None,
    out: OutOpt = None,
) -> None:
    """Issue a certificate from a CSR under the profile's policy; prints the chain (leaf first, no root)."""
    check_output(out)
    issued = open_pki().certificates.issue(
        profile=profile,
        csr=read_input_file(csr),
        identity=_identity(station_id, station_serial, secc_id, fqdn, emaid, pcid),
        ca_id=ca,
        validity=_validity(validity),
        actor=actor(),
    )
    write_output(issued.chain_pem, out)


@app.command("renew")
@guarded
def renew(
    csr: CsrOpt,
    station_id: StationOpt = None,
    profile: Annotated[str, typer.Option("--profile", help="Profile of the certificate being renewed.")] = "station",
    station_serial: SerialOpt = None,
    secc_id: SeccOpt = None,
    fqdn: FqdnOpt = None,
    emaid: EmaidOpt = None,
    pcid: PcidOpt = None,
    ca: CaOpt = None,
    validity: ValidityOpt = None,
    out: OutOpt = None,
) -> None:
    """Issue a new certificate for an identity that has one; the old one becomes superseded (still valid)."""
    check_output(out)
    issued = open_pki().certificates.renew(
        csr=read_input_file(csr),
        identity=_identity(station_id, station_serial, secc_id, fqdn, emaid, pcid),
        profile=profile,
        ca_id=ca,
        validity=_validity(validity),
        actor=actor(),
    )
    write_output(issued.chain_pem, out)


@app.command("revoke")
@guarded
def revoke(
    serial: Annotated[str, typer.Argument(metavar="SERIAL", help="Hex serial as `openssl x509 -serial` prints it.")],
    reason: Annotated[
        str,
        typer.Option("--reason", help="RFC 5280 reason: " + ", ".join(r.value for r in RevocationReason) + "."),
    ],
    ca: Annotated[str | None, typer.Option("--ca", help="Issuing CA id, when the serial is ambiguous.")] = None,
) -> None:
    """Revoke a certificate. certificateHold can be released later with `evpki cert release`."""
    view = open_pki().revocation.revoke(serial, reason, ca_id=ca, actor=actor())
    console.print(f"{view.issuer_id}/{view.serial}: {view.status} ({view.revocation_reason})")


@app.command("release")
@guarded
def release(
    serial: Annotated[str, typer.Argument(metavar="SERIAL", help="Hex serial of a certificate on hold.")],
    ca: Annotated[str | None, typer.Option("--ca", help="Issuing CA id, when the serial is ambiguous.")] = None,
) -> None:
    """Release a certificate from certificateHold."""
    view = open_pki().revocation.release_hold(serial, ca_id=ca, actor=actor())
    console.print(f"{view.issuer_id}/{view.serial}: {view.status}")


@app.command("list")
@guarded
def list_certificates(
    ca: Annotated[str | None, typer.Option("--ca", help="Only certificates issued by this CA.")] = None,
    station: Annotated[str | None, typer.Option("--station", help="Only this station (id or serial).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="Only this profile.")] = None,
    status: Annotated[str | None, typer.Option("--status", help=", ".join(CERTIFICATE_STATUSES) + ".")] = None,
    expiring_within: Annotated[
        str | None, typer.Option("--expiring-within", help="Only valid ones expiring within, e.g. 30d.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="At most this many.")] = 1000,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List certificates."""
    pki = open_pki()
    expiring_before = pki.clock.now() + parse_duration(expiring_within) if expiring_within else None
    views = pki.certificates.list(
        CertificateFilter(
            ca_id=ca, identity=station, profile=profile, status=status, expiring_before=expiring_before, limit=limit
        )
    )
    if json_output:
        print_json([v.to_json() for v in views])
        return
    table = Table("issuer", "serial", "profile", "identity", "subject", "not after", "status")
    for v in views:
        table.add_row(
            v.issuer_id, v.serial, v.profile, v.identity or "-", v.subject, v.not_after.date().isoformat(), v.status
        )
    console.print(table)


@app.command("show")
@guarded
def show(
    key: Annotated[str, typer.Argument(metavar="SERIAL|SHA256", help="Hex serial or SHA-256 fingerprint.")],
    ca: Annotated[str | None, typer.Option("--ca", help="Issuing CA id, when the serial is ambiguous.")] = None,
    pem_output: Annotated[bool, typer.Option("--pem", help="Print only the certificate PEM.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON (with the PEM).")] = False,
) -> None:
    """Show one certificate and its status."""
    view: CertificateView = open_pki().certificates.get(key, ca_id=ca)
    if pem_output:
        write_output(view.certificate_pem, None)
    elif json_output:
        print_json(view.to_json(with_pem=True))
    else:
        for name, value in view.to_json().items():
            console.print(f"[bold]{name}[/bold]: {value if value is not None else '-'}", highlight=False)
