"""``evpki cert issue|issue-batch|renew|revoke|release|list|show``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from cryptography.x509.oid import NameOID
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli.common import (
    actor,
    check_output,
    check_output_dir,
    console,
    exit_code_for,
    fail,
    guarded,
    open_pki,
    print_json,
    read_input_file,
    write_output,
)
from pki.ca import BATCH_LIMIT, CERTIFICATE_STATUSES, CertificateFilter, CertificateRequest, RequestIdentity, load_csr
from pki.core import EvpkiError, InvalidInput, parse_duration
from pki.revocation import RevocationReason
from pki.runtime import CertificateView

__all__ = ["app"]

app = typer.Typer(help="Issue, renew, revoke and inspect certificates.", no_args_is_help=True)
_progress_console = Console(stderr=True)

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


# -- issue-batch: mass re-enrollment from a directory of CSRs ---------------------------------

_CSR_SUFFIXES = (".csr.pem", ".csr.der", ".csr")
_STATE_FILE = ".evpki-issue-batch.json"
_IDENTITY_FIELD = {
    "station": "station_id",
    "secc": "secc_id",
    "csms-server": "fqdn",
    "contract": "emaid",
    "oem-provisioning": "pcid",
}


@dataclass
class _BatchRun:
    """What an issue-batch run did, for the summary."""

    total: int
    skipped: int
    issued: int = 0
    refused: list[tuple[str, EvpkiError]] = field(default_factory=list)


@app.command("issue-batch")
@guarded
def issue_batch(
    csr_dir: Annotated[
        Path,
        typer.Option(
            "--csr-dir",
            help="Directory of CSR files named NAME.csr, NAME.csr.pem or NAME.csr.der (PEM or DER). NAME is the "
            "identity: the station id (station), SECC id (secc), FQDN (csms-server), eMAID (contract) or PCID "
            "(oem-provisioning).",
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir",
            help="NAME.pem (the chain, leaf first, no root) is written here per certificate. CSRs whose NAME.pem "
            "exists are skipped, so running the command again resumes an interrupted run.",
        ),
    ],
    profile: Annotated[str, typer.Option("--profile", help="Profile of every certificate.")] = "station",
    station_serial_from: Annotated[
        str,
        typer.Option(
            "--station-serial-from",
            help="Station serial (the CN, OCPP A00.FR.511) of station certificates: 'id' (the station id, as "
            "`cert issue` defaults) or 'cn' (the CN each CSR carries).",
        ),
    ] = "id",
    ca: CaOpt = None,
    validity: ValidityOpt = None,
    chunk: Annotated[
        int, typer.Option("--chunk", min=1, max=BATCH_LIMIT, help="CSRs per transaction (one audit-head update each).")
    ] = 500,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Issue a certificate for every CSR of a directory (mass re-enrollment), in batches of one transaction each.

    Shows a progress bar on a terminal and prints the certificates per second at the end. A CSR that is
    refused does not stop the others: each refusal is printed, and the command exits with the refusal's
    code (3 invalid input, 4 policy, 5 not found, ...) once the rest is issued. Interrupted, it resumes
    where it stopped: CSRs with a NAME.pem are skipped, and one stored but not yet written out is written
    from the database rather than issued twice.
    """
    if station_serial_from not in ("id", "cn"):
        raise InvalidInput("--station-serial-from is 'id' or 'cn'")
    names = _csr_files(csr_dir)
    check_output_dir(out_dir)
    lifetime = _validity(validity)
    pending = [(name, path) for name, path in names if not (out_dir / f"{name}.pem").exists()]
    run = _BatchRun(total=len(names), skipped=len(names) - len(pending))
    pki = open_pki()
    created_dir = not out_dir.exists()
    state, resume_since = _batch_state(out_dir, profile, ca, pki.clock.now())
    started = time.perf_counter()
    with (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=_progress_console,
            disable=not _progress_console.is_terminal,
        ) as progress,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="issue-batch-writer") as writer,
    ):
        task = progress.add_task("issuing", total=len(pending), rate="")
        writing: Future[None] | None = None
        for offset in range(0, len(pending), chunk):
            part = pending[offset : offset + chunk]
            requests: list[CertificateRequest] = []
            named: list[str] = []
            for name, path in part:
                try:
                    requests.append(_batch_request(name, path, profile, station_serial_from, ca, lifetime))
                except EvpkiError as refusal:
                    run.refused.append((name, refusal))
                    continue
                named.append(name)
            outcomes = pki.certificates.issue_batch(requests, actor=actor(), resume_since=resume_since)
            files: list[tuple[Path, str]] = []
            for name, outcome in zip(named, outcomes, strict=True):
                if isinstance(outcome, EvpkiError):
                    run.refused.append((name, outcome))
                else:
                    files.append((out_dir / f"{name}.pem", outcome.chain_pem))
            # The files of one chunk are written while the next is signed (file creation costs about
            # what a signature does); at most one chunk is in flight, and its errors surface here.
            if writing is not None:
                writing.result()
            writing = writer.submit(_write_all, files)
            run.issued += len(files)
            seconds = time.perf_counter() - started
            progress.update(task, advance=len(part), rate=f"{run.issued / seconds:,.0f} certs/s" if seconds else "")
        if writing is not None:
            writing.result()
    seconds = time.perf_counter() - started
    if run.issued == 0 and run.skipped == 0:
        _forget_batch_state(out_dir, state, created_dir)  # nothing came of it: leave no trace
    _print_batch_summary(run, seconds, json_output)
    if run.refused:
        name, first = run.refused[0]
        message = f"{len(run.refused)} of {len(pending)} CSRs refused (first: {name}: {first.message})"
        raise fail(message, exit_code_for(first))


def _csr_files(directory: Path) -> list[tuple[str, Path]]:
    if not directory.is_dir():
        raise InvalidInput(f"{directory}: no such directory")
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        suffix = next((s for s in _CSR_SUFFIXES if path.name.endswith(s)), None)
        if suffix is None or not path.is_file():
            continue
        name = path.name[: -len(suffix)]
        if not name:
            continue
        if name in found:
            raise InvalidInput(f"{directory}: two CSRs for {name!r} ({found[name].name}, {path.name})")
        found[name] = path
    if not found:
        raise InvalidInput(f"{directory}: no CSR files (NAME.csr, NAME.csr.pem or NAME.csr.der)")
    return list(found.items())


def _batch_request(
    name: str, path: Path, profile: str, serial_from: str, ca: str | None, validity: dt.timedelta | None
) -> CertificateRequest:
    csr = read_input_file(str(path))
    field_name = _IDENTITY_FIELD.get(profile)
    values: dict[str, str] = {field_name: name} if field_name else {}
    if profile == "station" and serial_from == "cn":
        names = load_csr(csr).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names:
            values["station_serial"] = str(names[0].value)
    return CertificateRequest(profile, csr, RequestIdentity(**values), ca, validity)


def _batch_state(out_dir: Path, profile: str, ca: str | None, now: dt.datetime) -> tuple[Path, dt.datetime | None]:
    """The run's state file; on a resumed run, when the first run started (its certificates are looked up)."""
    state = out_dir / _STATE_FILE
    try:
        recorded = json.loads(state.read_text())
        return state, dt.datetime.fromisoformat(recorded["started_at"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{state}: unreadable state of an earlier run ({exc}); remove it to start afresh") from None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(state, json.dumps({"started_at": now.isoformat(), "profile": profile, "ca": ca}) + "\n")
    except OSError as exc:
        raise InvalidInput(f"{out_dir}: {exc.strerror}") from None
    return state, None


def _forget_batch_state(out_dir: Path, state: Path, created_dir: bool) -> None:
    state.unlink(missing_ok=True)
    if created_dir:
        with contextlib.suppress(OSError):
            out_dir.rmdir()  # only if empty


def _write_all(files: list[tuple[Path, str]]) -> None:
    for path, text in files:
        _write_atomically(path, text)


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crashed process leaves no file or the whole new one, never a part.

    No fsync per file (100,000 of them would set the pace): a process crash keeps what the kernel has;
    after a power loss, delete the output files of the last minutes and run again -- the run resumes
    from the database without issuing twice.
    """
    staging = path.with_name(f".{path.name}.tmp")
    try:
        staging.write_text(text)
        os.replace(staging, path)
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror}") from None


def _print_batch_summary(run: _BatchRun, seconds: float, json_output: bool) -> None:
    rate = run.issued / seconds if seconds > 0 else 0.0
    if json_output:
        print_json(
            {
                "total": run.total,
                "issued": run.issued,
                "skipped": run.skipped,
                "refused": [
                    {"name": name, "error": error.code, "message": error.message} for name, error in run.refused
                ],
                "seconds": round(seconds, 3),
                "certificatesPerSecond": round(rate, 1),
            }
        )
        return
    for name, error in run.refused:
        console.print(f"refused {name}: {error.message}", highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"issued {run.issued}, skipped {run.skipped} (already written), refused {len(run.refused)} of {run.total} "
        f"in {seconds:.1f} s: {rate:,.0f} certificates/s",
        highlight=False,
        soft_wrap=True,
    )
