"""``evpki station …``: the OCPP station registry, and the calls an operator makes on a station.

A station connects under its OCPP *identity* (the last URL path segment) and its certificate's CN
carries its *serial* (OCPP A00.FR.511); the registry maps one to the other and fixes the security
profile it must use: 3 (mutual TLS, the default) or 2 (TLS + HTTP Basic auth with a password that
is stored only as an scrypt hash).

Operator calls (``install-cert``, ``delete-cert``, ``installed``, ``trigger``, ``get-log``,
``rotate-password``, ``upgrade-profile``, ``update-firmware``) are stored in the database and sent
by the bridge process the station is connected to (or when it next connects); ``--wait`` waits
for the station's answer, ``calls`` and ``firmware-status`` show what came back.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import actor, console, fail, guarded, open_pki, print_json, read_input_file
from pki import PKI
from pki.core import InvalidInput, parse_duration
from pki.stations import DeliveryView, StationView

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


# -- operator calls (stored until the station answers) ------------------------------------------------

WaitOpt = Annotated[
    str | None,
    typer.Option("--wait", help="Wait up to this long for the station's answer (e.g. 10s, 500ms; at most 60s)."),
]
TtlOpt = Annotated[str | None, typer.Option("--ttl", help="An unsent call expires after this (e.g. 1h, 7d).")]
VersionOpt = Annotated[
    str | None,
    typer.Option("--ocpp-version", help="1.6, 2.0.1 or 2.1 (default: the version the station last connected with)."),
]
_WAIT = re.compile(r"^(\d{1,5})(ms|s)?$")


def _wait(text: str | None) -> float:
    if text is None:
        return 0.0
    match = _WAIT.match(text)
    if match is None:
        raise InvalidInput("--wait is a number of seconds or milliseconds, e.g. 10s or 500ms")
    seconds = int(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    if seconds > 60:
        raise InvalidInput("--wait is at most 60 seconds")
    return seconds


def _ttl(text: str | None) -> dt.timedelta | None:
    return parse_duration(text) if text is not None else None


def _time(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option} {text!r} is not an ISO 8601 date-time (e.g. 2026-02-01T02:00:00Z)") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{option} {text!r} needs a time zone (e.g. 2026-02-01T02:00:00Z)")
    return value


def _summary(view: DeliveryView) -> str:
    answer = ""
    if view.result:
        status = view.result.get("status") or view.result.get("errorCode") or ""
        info = view.result.get("statusInfo") or {}
        reason = info.get("reasonCode") or view.result.get("errorDescription") or ""
        answer = f" ({status}{': ' + str(reason) if reason else ''})" if status else ""
    elif view.status == "pending":
        answer = " (sent; no answer yet)" if view.attempts else " (waiting for the station)"
    return f"call {view.id} {view.action} to {view.station_identity}: {view.status}{answer}"


def _report(pki: PKI, view: DeliveryView, wait: float, json_output: bool) -> None:
    """Wait for the answer if asked to, then print the call."""
    if wait > 0:
        view = pki.station_calls.wait(view.station_identity, view.id, wait)
    if json_output:
        notes = pki.station_calls.notifications(view.station_identity, [view.id]).get(view.id, [])
        print_json({**view.to_json(), "notifications": [note.to_json() for note in notes]})
        return
    console.print(escape(_summary(view)))


def _text(path: Path | None) -> str | None:
    return read_input_file(str(path)).decode("utf-8", "replace") if path is not None else None


@app.command("install-cert")
@guarded
def install_cert(
    identity: IdentityArg,
    use: Annotated[
        str,
        typer.Option(
            "--use",
            help="CSMSRootCertificate, ManufacturerRootCertificate, V2GRootCertificate, MORootCertificate, "
            "OEMRootCertificate (2.1); 1.6: CentralSystemRootCertificate too.",
        ),
    ],
    ca_id: Annotated[
        str | None, typer.Option("--ca", help="One of our roots (default: the newest of the use).")
    ] = None,
    trusted: Annotated[str | None, typer.Option("--trusted", help="A trust-store root: label or SHA-256.")] = None,
    certificate: Annotated[Path | None, typer.Option("--certificate", help="A root certificate PEM file.")] = None,
    ocpp_version: VersionOpt = None,
    ttl: TtlOpt = None,
    wait: WaitOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Install a root on the station (InstallCertificate, M05); only roots of a use its OCPP version has."""
    seconds, expiry, pem = _wait(wait), _ttl(ttl), _text(certificate)
    pki = open_pki()
    view = pki.station_calls.install_certificate(
        identity,
        use=use,
        ca_id=ca_id,
        trusted=trusted,
        certificate_pem=pem,
        ocpp_version=ocpp_version,
        ttl=expiry,
        actor=actor(),
    )
    _report(pki, view, seconds, json_output)


@app.command("delete-cert")
@guarded
def delete_cert(
    identity: IdentityArg,
    ca_id: Annotated[str | None, typer.Option("--ca", help="One of our CAs.")] = None,
    trusted: Annotated[str | None, typer.Option("--trusted", help="A trust-store root: label or SHA-256.")] = None,
    certificate: Annotated[Path | None, typer.Option("--certificate", help="A certificate PEM file.")] = None,
    hash_data: Annotated[
        str | None,
        typer.Option("--hash-data", help="CertificateHashData JSON exactly as the station reported it."),
    ] = None,
    hash_algorithm: Annotated[
        str | None,
        typer.Option("--hash-algorithm", help="SHA256, SHA384 or SHA512 (default: the one the station reported)."),
    ] = None,
    ocpp_version: VersionOpt = None,
    ttl: TtlOpt = None,
    wait: WaitOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Delete a certificate from the station (DeleteCertificate, M04) by its hash data, in the station's algorithm."""
    seconds, expiry, pem = _wait(wait), _ttl(ttl), _text(certificate)
    given: Any = None
    if hash_data is not None:
        try:
            given = json.loads(hash_data)
        except ValueError:
            raise InvalidInput("--hash-data is not JSON") from None
    pki = open_pki()
    view = pki.station_calls.delete_certificate(
        identity,
        hash_data_given=given,
        ca_id=ca_id,
        trusted=trusted,
        certificate_pem=pem,
        hash_algorithm=hash_algorithm,
        ocpp_version=ocpp_version,
        ttl=expiry,
        actor=actor(),
    )
    _report(pki, view, seconds, json_output)


@app.command("installed")
@guarded
def installed(
    identity: IdentityArg,
    types: Annotated[
        list[str] | None,
        typer.Option("--type", help="A certificate type (repeatable); none: all (2.x; 1.6 asks for one type)."),
    ] = None,
    ocpp_version: VersionOpt = None,
    ttl: TtlOpt = None,
    wait: WaitOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Ask the station what it has installed (GetInstalledCertificateIds, M03); the answer is kept with the call."""
    seconds, expiry = _wait(wait), _ttl(ttl)
    pki = open_pki()
    view = pki.station_calls.get_installed(
        identity, types=list(types or []), ocpp_version=ocpp_version, ttl=expiry, actor=actor()
    )
    _report(pki, view, seconds, json_output)


@app.command("trigger")
@guarded
def trigger(
    identity: IdentityArg,
    message: Annotated[
        str,
        typer.Option(
            "--message",
            help="SignChargingStationCertificate (station), SignV2GCertificate (v2g), SignCombinedCertificate "
            "(combined, 2.x), SignV2G20Certificate (v2g20, 2.1).",
        ),
    ] = "SignChargingStationCertificate",
    evse_id: Annotated[int | None, typer.Option("--evse", min=0, help="The EVSE whose SECC to renew.")] = None,
    ocpp_version: VersionOpt = None,
    ttl: TtlOpt = None,
    wait: WaitOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Trigger a certificate renewal (TriggerMessage; 1.6 ExtendedTriggerMessage, V2G through PnC DataTransfer)."""
    seconds, expiry = _wait(wait), _ttl(ttl)
    pki = open_pki()
    view = pki.station_calls.trigger(
        identity, message=message, evse_id=evse_id, ocpp_version=ocpp_version, ttl=expiry, actor=actor()
    )
    _report(pki, view, seconds, json_output)


@app.command("get-log")
@guarded
def get_log(
    identity: IdentityArg,
    url: Annotated[str, typer.Option("--url", help="Where the station uploads its security log (remoteLocation).")],
    oldest: Annotated[str | None, typer.Option("--oldest", help="ISO 8601 with zone: oldest entry.")] = None,
    latest: Annotated[str | None, typer.Option("--latest", help="ISO 8601 with zone: latest entry.")] = None,
    retries: Annotated[int | None, typer.Option("--retries", min=0)] = None,
    retry_interval: Annotated[int | None, typer.Option("--retry-interval", min=0, help="Seconds.")] = None,
    ocpp_version: VersionOpt = None,
    ttl: TtlOpt = None,
    wait: WaitOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Fetch the station's security log (GetLog SecurityLog); its LogStatusNotifications are kept with the call."""
    seconds, expiry = _wait(wait), _ttl(ttl)
    first, last = _time(oldest, "--oldest"), _time(latest, "--latest")
    pki = open_pki()
    view = pki.station_calls.get_log(
        identity,
        remote_location=url,
        oldest=first,
        latest=last,
        retries=retries,
        retry_interval=retry_interval,
        ocpp_version=ocpp_version,
        ttl=expiry,
        actor=actor(),
    )
    _report(pki, view, seconds, json_output)


@app.command("rotate-password")
@guarded
def rotate_password(
    identity: IdentityArg,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="The new password (16-40 characters); default: a random one."),
    ] = None,
    ocpp_version: VersionOpt = None,
    ttl: TtlOpt = None,
    wait: WaitOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Send a profile-2 station a new Basic-auth password (A01); the registry takes it once the station accepted."""
    seconds, expiry = _wait(wait), _ttl(ttl)
    secret = _password(password_file) if password_file is not None else None
    pki = open_pki()
    view = pki.station_calls.rotate_password(identity, secret, ocpp_version=ocpp_version, ttl=expiry, actor=actor())
    _report(pki, view, seconds, json_output)


@app.command("upgrade-profile")
@guarded
def upgrade_profile(
    identity: IdentityArg,
    profile: Annotated[int, typer.Option("--profile", help="The new security profile (3).")] = 3,
    slot: Annotated[
        int | None, typer.Option("--slot", help="2.x: the configuration slot for the profile-3 network profile.")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="2.x: the profile-3 address (wss://…).")] = None,
    fallback_slot: Annotated[
        int, typer.Option("--fallback-slot", help="2.x: the slot tried when profile 3 fails (its current one).")
    ] = 0,
    interface: Annotated[str, typer.Option("--interface", help="2.x: ocppInterface of the new profile.")] = "Wired0",
    ocpp_version: VersionOpt = None,
    ttl: TtlOpt = None,
    wait: WaitOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Move a profile-2 station to profile 3 (A05), when it holds a valid station certificate of ours.

    1.6: ChangeConfiguration SecurityProfile. 2.x: SetNetworkProfile (--slot, --url), then
    NetworkConfigurationPriority (the slot, then --fallback-slot), then Reset OnIdle, each once the
    one before it was accepted.
    """
    seconds, expiry = _wait(wait), _ttl(ttl)
    pki = open_pki()
    view = pki.station_calls.upgrade_security_profile(
        identity,
        profile=profile,
        slot=slot,
        url=url,
        fallback_slot=fallback_slot,
        interface=interface,
        ocpp_version=ocpp_version,
        ttl=expiry,
        actor=actor(),
    )
    _report(pki, view, seconds, json_output)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            yield chunk


@app.command("update-firmware")
@guarded
def update_firmware(
    identity: IdentityArg,
    firmware: Annotated[Path, typer.Option("--firmware", help="The firmware file.")],
    location: Annotated[str, typer.Option("--location", help="Where the station downloads it (firmware.location).")],
    retrieve_at: Annotated[
        str | None, typer.Option("--retrieve-at", help="When to download, ISO 8601 with zone (default: now).")
    ] = None,
    install_at: Annotated[
        str | None, typer.Option("--install-at", help="When to install, ISO 8601 with zone (installDateTime).")
    ] = None,
    retries: Annotated[int | None, typer.Option("--retries", min=0, help="Download retries.")] = None,
    retry_interval: Annotated[int | None, typer.Option("--retry-interval", min=0, help="Seconds.")] = None,
    signature: Annotated[
        str | None, typer.Option("--signature", help="An existing Base64 signature (default: sign the file now).")
    ] = None,
    signing_certificate: Annotated[
        Path | None, typer.Option("--signing-certificate", help="The PEM signer of --signature.")
    ] = None,
    ocpp_version: VersionOpt = None,
    ttl: TtlOpt = None,
    wait: WaitOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Secure firmware update (UpdateFirmware; 1.6 SignedUpdateFirmware, L01): sign (or check) and send."""
    seconds, expiry = _wait(wait), _ttl(ttl)
    retrieve, install = _time(retrieve_at, "--retrieve-at"), _time(install_at, "--install-at")
    certificate = _text(signing_certificate)
    if not firmware.is_file():
        raise InvalidInput(f"{firmware}: no such file")
    pki = open_pki()
    view = pki.station_calls.update_firmware(
        identity,
        _chunks(firmware),
        location=location,
        retrieve_at=retrieve,
        install_at=install,
        retries=retries,
        retry_interval=retry_interval,
        signature=signature,
        signing_certificate=certificate,
        ocpp_version=ocpp_version,
        ttl=expiry,
        actor=actor(),
    )
    _report(pki, view, seconds, json_output)


@app.command("firmware-status")
@guarded
def firmware_status(
    identity: IdentityArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many updates.")] = 20,
    json_output: JsonOpt = False,
) -> None:
    """The station's firmware updates, newest first: the outcome and every status it reported (L01)."""
    updates = open_pki().station_calls.firmware_updates(identity, limit=limit)
    if json_output:
        print_json([update.to_json() for update in updates])
        return
    table = Table("requestId", "outcome", "reason", "statuses")
    for update in updates:
        statuses = " → ".join(note.status for note in update.notifications)
        table.add_row(str(update.call.id), update.outcome, escape(update.reason), escape(statuses or "-"))
    console.print(table)


@app.command("calls")
@guarded
def list_calls(
    identity: IdentityArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many, newest first.")] = 100,
    json_output: JsonOpt = False,
) -> None:
    """The calls to the station, newest first: operator calls and the bridge's own deliveries, with answers."""
    pki = open_pki()
    views = pki.station_calls.list(identity, limit=limit)
    if json_output:
        notes = pki.station_calls.notifications(identity, [view.id for view in views])
        print_json(
            [{**view.to_json(), "notifications": [n.to_json() for n in notes.get(view.id, [])]} for view in views]
        )
        return
    table = Table("id", "action", "origin", "status", "answer", "created")
    for view in views:
        answer = ""
        if view.result:
            answer = str(view.result.get("status") or view.result.get("errorCode") or "")
        table.add_row(
            str(view.id),
            view.action,
            view.origin or "bridge",
            view.status,
            escape(answer),
            f"{view.created_at:%Y-%m-%d %H:%M:%S}Z",
        )
    console.print(table)


@app.command("root-sync")
@guarded
def root_sync(
    identity: IdentityArg,
    mode: Annotated[
        str, typer.Option("--mode", help="on, off, or default (EVPKI_OCPP_ROOT_SYNC / EVPKI_OCPP_ROOT_SYNC_DELAY).")
    ],
    delay: Annotated[
        int | None, typer.Option("--delay", min=0, max=86400, help="Seconds after boot (default: the global one).")
    ] = None,
) -> None:
    """Switch the root reconciliation after this station's boot on or off, or delay it (for hand-managed roots)."""
    if mode not in ("on", "off", "default"):
        raise fail("--mode is on, off or default", 2)
    view = open_pki().station_calls.set_root_sync(
        identity, mode=None if mode == "default" else mode, delay=delay, actor=actor()
    )
    console.print(
        f"root sync of {escape(view.identity)}: {view.root_sync or 'default'}"
        + (f", {view.root_sync_delay} s after boot" if view.root_sync_delay is not None else "")
    )
