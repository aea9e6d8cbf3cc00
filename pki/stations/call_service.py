"""``pki.station_calls``: what an operator asks of a station, checked, built for its OCPP version and stored.

Each method validates everything first -- the station is registered and its version known, the
use exists in that version, a certificate to install is a root (self-signed CA) of the right
kind, a firmware signer is ours, valid and not revoked -- and only then stores the call
(:mod:`pki.stations.calls`), so a refused request queues nothing. The bridges send the call;
:meth:`StationCalls.wait` lets a caller block until the station answered.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import update

from pki.ca.root_uses import ROOT_USE_PKI, RootUse
from pki.ca.services import CertificateAuthorities, Certificates
from pki.ca.trust_store import TrustStore
from pki.core.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from pki.operations import audit
from pki.revocation import issuer_hashes
from pki.runtime.context import Context
from pki.stations import call_payloads, calls, notifications, registry
from pki.stations.call_feed import CallFeed, Filed, open_call_feed
from pki.stations.deliveries import DeliveryView
from pki.stations.notifications import FirmwareUpdateView, NotificationView
from pki.stations.registry import StationView
from pki.store.models import StationRow
from pki.store.repository import CertificateFilter

__all__ = ["FirmwareSigning", "StationCalls"]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
_HASH_FIELDS = ("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber")
_STATIONS = StationRow.__table__  # type: ignore[attr-defined]
_MAX_TTL = dt.timedelta(days=366)


class FirmwareSigning(Protocol):
    """What :class:`StationCalls` needs of ``pki.firmware`` (a higher layer hands it in)."""

    def sign(
        self,
        chunks: Iterable[bytes],
        *,
        location: str | None = ...,
        retrieve_at: dt.datetime | None = ...,
        actor: str = ...,
        signer_ca: str | None = ...,
        payloads: Iterable[Any] = ...,
        request_id: int | None = ...,
    ) -> Any: ...

    def verify(self, chunks: Iterable[bytes], *, signature: str, certificate: str | bytes) -> Any: ...


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _is_root(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca or certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError):  # unsupported key types too
        return False
    return True


def hash_data(certificate: x509.Certificate, issuer: x509.Certificate, algorithm: str) -> dict[str, str]:
    """OCPP CertificateHashDataType of ``certificate`` (RFC 6960 CertID values in hex)."""
    name_hash, key_hash = issuer_hashes(issuer, _HASHES[algorithm]())
    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": name_hash.hex(),
        "issuerKeyHash": key_hash.hex(),
        "serialNumber": format(certificate.serial_number, "X"),
    }


def _names(entry: dict[str, Any], certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    algorithm = str(entry.get("hashAlgorithm", ""))
    if algorithm not in _HASHES:
        return False
    try:
        if int(str(entry.get("serialNumber", "")), 16) != certificate.serial_number:
            return False
    except ValueError:
        return False
    expected = hash_data(certificate, issuer, algorithm)
    return all(str(entry.get(f, "")).lower() == expected[f].lower() for f in ("issuerNameHash", "issuerKeyHash"))


class StationCalls:
    """``pki.station_calls``: operator-initiated calls on a station (stored until it answers)."""

    def __init__(
        self,
        ctx: Context,
        cas: CertificateAuthorities,
        trust: TrustStore,
        certificates: Certificates,
        firmware: FirmwareSigning,
    ) -> None:
        self._ctx = ctx
        self._cas = cas
        self._trust = trust
        self._certificates = certificates
        self._firmware = firmware

    # -- common ------------------------------------------------------------------------------------

    def _target(self, station: str, ocpp_version: str | None) -> tuple[StationView, str]:
        view = registry.get_station(self._ctx, station)
        version = ocpp_version or view.ocpp_version
        if version is None:
            raise InvalidInput(
                f"station {station!r} has never connected, so its OCPP version is unknown: name it (1.6, 2.0.1, 2.1)"
            )
        if version not in call_payloads.CERTIFICATE_ID_TYPES:
            raise InvalidInput(f"unknown OCPP version {version!r}; use 1.6, 2.0.1 or 2.1")
        return view, version

    def _store(
        self,
        station: str,
        version: str,
        built: tuple[str, dict[str, Any]],
        *,
        ttl: dt.timedelta | None,
        actor: str,
        topic: str | None = None,
    ) -> DeliveryView:
        if ttl is not None and not dt.timedelta(0) < ttl <= _MAX_TTL:
            raise InvalidInput("a call's time to live is positive and at most 366 days")
        action, payload = built
        return calls.create_call(
            self._ctx,
            station=station,
            action=action,
            payload=payload,
            ocpp_version=version,
            topic=topic,
            ttl=ttl,
            actor=actor,
        )

    def _certificate(
        self, *, ca_id: str | None, trusted: str | None, certificate_pem: str | None, use: RootUse | None
    ) -> tuple[x509.Certificate, x509.Certificate | None]:
        """The certificate an operator names, and its issuer when known (a root is its own)."""
        given = [value for value in (ca_id, trusted, certificate_pem) if value is not None]
        if len(given) > 1:
            raise InvalidInput("name one certificate: a CA of ours, a trusted root, or a PEM")
        if ca_id is not None:
            ca = self._cas.get(ca_id)
            certificate = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
            if use is not None and (not ca.is_root or ROOT_USE_PKI[use] != ca.pki):
                kind = "root" if ca.is_root else "sub-CA"
                raise PolicyViolation("install.root-use", f"{ca_id} is a {ca.pki} {kind}, not a {use.value}")
            issuer = certificate if ca.is_root else None
            if ca.parent_id is not None:
                issuer = x509.load_pem_x509_certificate(self._cas.get(ca.parent_id).certificate_pem.encode())
            return certificate, issuer
        if trusted is not None:
            view = self._trust.get(trusted)
            if use is not None and view.use is not use:
                raise PolicyViolation(
                    "install.root-use", f"trusted root {trusted!r} is trusted as {view.use.value}, not {use.value}"
                )
            if use is not None and view.removed_at is not None:
                raise Conflict(f"trusted root {trusted!r} was removed; it is not offered to stations")
            certificate = x509.load_pem_x509_certificate(view.certificate_pem.encode())
            return certificate, certificate
        if certificate_pem is not None:
            try:
                parsed = x509.load_pem_x509_certificates(certificate_pem.encode())
            except ValueError:
                raise InvalidInput("the certificate is not PEM X.509") from None
            if len(parsed) != 1:
                raise InvalidInput(f"give exactly one certificate, not {len(parsed)}")
            certificate = parsed[0]
            if _is_root(certificate):
                return certificate, certificate
            if use is not None:
                # Pitfall P-13: InstallCertificate carries roots only.
                raise PolicyViolation(
                    "install.root-only",
                    f"{certificate.subject.rfc4514_string()[:100]} is not a root (a self-signed CA certificate); "
                    f"{use.value} installs roots only",
                )
            issuer = next(
                (
                    x509.load_pem_x509_certificate(ca.certificate_pem.encode())
                    for ca in self._cas.list()
                    if x509.load_pem_x509_certificate(ca.certificate_pem.encode()).subject == certificate.issuer
                ),
                None,
            )
            return certificate, issuer
        if use is None:
            raise InvalidInput("name the certificate to delete (a CA of ours, a trusted root, a PEM or hash data)")
        return self._cas.roots(use)[0], None

    # -- the calls -----------------------------------------------------------------------------------

    def install_certificate(
        self,
        station: str,
        *,
        use: str,
        ca_id: str | None = None,
        trusted: str | None = None,
        certificate_pem: str | None = None,
        ocpp_version: str | None = None,
        ttl: dt.timedelta | None = None,
        actor: str = "system",
    ) -> DeliveryView:
        """InstallCertificate (M05): our root, a trusted root, a root PEM, or by default the newest root of ``use``."""
        _, version = self._target(station, ocpp_version)
        root_use = call_payloads.install_use(version, use)
        certificate, _ = self._certificate(ca_id=ca_id, trusted=trusted, certificate_pem=certificate_pem, use=root_use)
        built = call_payloads.install_certificate(version, root_use, _pem(certificate))
        return self._store(station, version, built, ttl=ttl, actor=actor)

    def delete_certificate(
        self,
        station: str,
        *,
        hash_data_given: dict[str, str] | None = None,
        ca_id: str | None = None,
        trusted: str | None = None,
        certificate_pem: str | None = None,
        hash_algorithm: str | None = None,
        ocpp_version: str | None = None,
        ttl: dt.timedelta | None = None,
        actor: str = "system",
    ) -> DeliveryView:
        """DeleteCertificate (M04) by hash data, given or computed in the hash algorithm the station reported."""
        _, version = self._target(station, ocpp_version)
        if hash_algorithm is not None and hash_algorithm not in _HASHES:
            raise InvalidInput(f"hash algorithm is SHA256, SHA384 or SHA512, not {hash_algorithm!r}")
        if hash_data_given is not None:
            if any(value is not None for value in (ca_id, trusted, certificate_pem)):
                raise InvalidInput("give hash data or a certificate, not both")
            data = self._checked_hash_data(hash_data_given)
        else:
            certificate, issuer = self._certificate(
                ca_id=ca_id, trusted=trusted, certificate_pem=certificate_pem, use=None
            )
            if issuer is None:
                raise InvalidInput(
                    "its issuer is neither itself nor one of our CAs, so its hash data cannot be computed: give it"
                )
            data = self._reported(station, certificate, issuer) or hash_data(
                certificate, issuer, hash_algorithm or self._reported_algorithm(station)
            )
            if hash_algorithm is not None and data["hashAlgorithm"] != hash_algorithm:
                data = hash_data(certificate, issuer, hash_algorithm)
        return self._store(station, version, call_payloads.delete_certificate(version, data), ttl=ttl, actor=actor)

    @staticmethod
    def _checked_hash_data(given: dict[str, str]) -> dict[str, str]:
        if not isinstance(given, dict) or set(given) != set(_HASH_FIELDS):
            raise InvalidInput(f"hash data has exactly the fields {', '.join(_HASH_FIELDS)}")
        if given["hashAlgorithm"] not in _HASHES:
            raise InvalidInput("hashAlgorithm is SHA256, SHA384 or SHA512")
        size = _HASHES[given["hashAlgorithm"]]().digest_size
        try:
            ok = all(len(bytes.fromhex(str(given[f]))) == size for f in ("issuerNameHash", "issuerKeyHash"))
            int(str(given["serialNumber"]), 16)
        except ValueError:
            ok = False
        if not ok or len(str(given["serialNumber"])) > 40:
            raise InvalidInput(f"issuerNameHash and issuerKeyHash are {size}-byte hex, serialNumber hex (≤ 40)")
        return {f: str(given[f]) for f in _HASH_FIELDS}

    def _inventory(self, station: str) -> list[dict[str, Any]]:
        """The hash data entries of the station's answered GetInstalledCertificateIds, newest first."""
        entries: list[dict[str, Any]] = []
        for call in calls.list_calls(self._ctx, station, limit=200):
            if call.action != "GetInstalledCertificateIds" or not call.result:
                continue
            entries.extend(call.result.get("certificateHashData", []))  # 1.6
            entries.extend(item["certificateHashData"] for item in call.result.get("certificateHashDataChain", []))
        return entries

    def _reported(self, station: str, certificate: x509.Certificate, issuer: x509.Certificate) -> dict[str, str] | None:
        # M04.FR.07: exactly the hash data the station reported for the certificate.
        for entry in self._inventory(station):
            if _names(entry, certificate, issuer):
                return {f: str(entry[f]) for f in _HASH_FIELDS}
        return None

    def _reported_algorithm(self, station: str) -> str:
        for entry in self._inventory(station):
            if entry.get("hashAlgorithm") in _HASHES:
                return str(entry["hashAlgorithm"])
        return "SHA256"

    def get_installed(
        self,
        station: str,
        *,
        types: list[str] | None = None,
        ocpp_version: str | None = None,
        ttl: dt.timedelta | None = None,
        actor: str = "system",
    ) -> DeliveryView:
        """GetInstalledCertificateIds (M03) for some types or (2.x) all; the answer is stored with the call."""
        _, version = self._target(station, ocpp_version)
        built = call_payloads.get_installed(version, list(types or []))
        return self._store(station, version, built, ttl=ttl, actor=actor)

    def trigger(
        self,
        station: str,
        *,
        message: str,
        evse_id: int | None = None,
        ocpp_version: str | None = None,
        ttl: dt.timedelta | None = None,
        actor: str = "system",
    ) -> DeliveryView:
        """A renewal trigger (A02): TriggerMessage / 1.6 ExtendedTriggerMessage (V2G: PnC DataTransfer)."""
        _, version = self._target(station, ocpp_version)
        built = call_payloads.trigger(version, message, evse_id=evse_id)
        return self._store(station, version, built, ttl=ttl, actor=actor)

    def get_log(
        self,
        station: str,
        *,
        remote_location: str,
        oldest: dt.datetime | None = None,
        latest: dt.datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        ocpp_version: str | None = None,
        ttl: dt.timedelta | None = None,
        actor: str = "system",
    ) -> DeliveryView:
        """GetLog SecurityLog to ``remote_location``; the call's id is its requestId."""
        _, version = self._target(station, ocpp_version)
        built = call_payloads.get_log(
            version,
            request_id=0,  # replaced by the call's id
            remote_location=remote_location,
            oldest=oldest,
            latest=latest,
            retries=retries,
            retry_interval=retry_interval,
        )
        return self._store(station, version, built, ttl=ttl, actor=actor)

    def rotate_password(
        self,
        station: str,
        password: str | None = None,
        *,
        ocpp_version: str | None = None,
        ttl: dt.timedelta | None = None,
        actor: str = "system",
    ) -> DeliveryView:
        """A01: a new Basic-auth password (random when not given) for the station; the registry takes it
        only once the station accepted. A newer request supersedes a pending one."""
        view, version = self._target(station, ocpp_version)
        if view.security_profile != 2:
            raise PolicyViolation(
                "password.profile",
                f"station {station!r} uses security profile {view.security_profile}; Basic auth is profile 2",
            )
        secret = password if password is not None else secrets.token_urlsafe(24)[:32]
        registry.password_hash(secret)  # the length rule, before anything is stored
        built = call_payloads.set_password(version, secret)
        return self._store(station, version, built, ttl=ttl, actor=actor, topic="operator:password")

    def upgrade_security_profile(
        self,
        station: str,
        *,
        profile: int = 3,
        slot: int | None = None,
        url: str | None = None,
        fallback_slot: int | None = 0,
        interface: str = "Wired0",
        ocpp_version: str | None = None,
        ttl: dt.timedelta | None = None,
        actor: str = "system",
    ) -> DeliveryView:
        """A05: move a profile-2 station to profile 3, only when it holds a valid station certificate of ours.

        1.6: ChangeConfiguration SecurityProfile. 2.x: SetNetworkProfile (the profile-3 ``url`` in
        configuration ``slot``), once accepted SetVariables NetworkConfigurationPriority (``slot``, then
        ``fallback_slot``: the slot the station falls back to when profile 3 fails, so it is never
        stranded), once accepted Reset OnIdle.
        """
        view, version = self._target(station, ocpp_version)
        if profile != 3:
            raise InvalidInput("the only upgrade evpki offers is to security profile 3 (mutual TLS)")
        if view.security_profile >= profile:
            raise Conflict(f"station {station!r} already uses security profile {view.security_profile}")
        valid = [
            c
            for c in self._certificates.list(CertificateFilter(identity=station, profile="station"))
            if c.identity == station and c.status == "valid"
        ]
        if not valid:
            raise PolicyViolation(
                "profile.certificate",
                f"station {station!r} holds no valid station certificate of this PKI; renew it first (A05.FR.02)",
            )
        if version == "1.6":
            built = call_payloads.set_security_profile(version, profile)
            return self._store(station, version, built, ttl=ttl, actor=actor, topic="operator:security-profile")
        if slot is None or url is None:
            raise InvalidInput(
                "a 2.x station moves to profile 3 by a new network profile: give its configuration slot and the "
                "profile-3 wss:// address (A05, 2.0.1 Ed. 3)"
            )
        built = call_payloads.set_network_profile(version, slot, url, interface=interface)
        priority = call_payloads.network_priority(slot, fallback_slot)
        topic = f"{calls.NETWORK_PROFILE_TOPIC}{priority}"
        return self._store(station, version, built, ttl=ttl, actor=actor, topic=topic)

    def update_firmware(
        self,
        station: str,
        firmware: Iterable[bytes],
        *,
        location: str,
        retrieve_at: dt.datetime | None = None,
        install_at: dt.datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        signature: str | None = None,
        signing_certificate: str | None = None,
        ocpp_version: str | None = None,
        ttl: dt.timedelta | None = None,
        actor: str = "system",
    ) -> DeliveryView:
        """L01 / 1.6 SignedUpdateFirmware: sign the file (or check the signature given) and queue the update."""
        _, version = self._target(station, ocpp_version)
        if ttl is not None and not dt.timedelta(0) < ttl <= _MAX_TTL:
            raise InvalidInput("a call's time to live is positive and at most 366 days")
        call_payloads.location(version, location, "location")
        retrieve = retrieve_at or self._ctx.clock.now()
        call_payloads.date_time(retrieve, "retrieveDateTime")
        if install_at is not None:
            call_payloads.date_time(install_at, "installDateTime")
        for value, name in ((retries, "retries"), (retry_interval, "retryInterval")):
            if value is not None:
                call_payloads.int32(value, name, minimum=0)
        if (signature is None) != (signing_certificate is None):
            raise InvalidInput("an existing signature comes with its signing certificate (both or neither)")
        if signature is not None and signing_certificate is not None:
            # A00.FR.707: the CSMS checks the signature and its signer (ours, valid, not revoked) first.
            if len(signature) > 800 or len(signing_certificate) > 5500:  # FirmwareType limits, every version
                raise InvalidInput(
                    "OCPP carries a signature of at most 800 and a certificate of at most 5500 characters"
                )
            self._firmware.verify(firmware, signature=signature, certificate=signing_certificate)
            certificate_pem, signature_b64 = signing_certificate, signature
        else:
            signed = self._firmware.sign(
                firmware, location=location, retrieve_at=retrieve, actor=actor, payloads=(version,), request_id=1
            )
            certificate_pem, signature_b64 = signed.certificate_pem, signed.signature
        body: dict[str, Any] = {"location": location, "retrieveDateTime": call_payloads.date_time(retrieve, "r")}
        if install_at is not None:
            body["installDateTime"] = call_payloads.date_time(install_at, "installDateTime")
        body["signingCertificate"] = certificate_pem
        body["signature"] = signature_b64
        payload: dict[str, Any] = {"requestId": 0, "firmware": body}  # requestId: the call's id
        if retries is not None:
            payload["retries"] = retries
        if retry_interval is not None:
            payload["retryInterval"] = retry_interval
        action = "SignedUpdateFirmware" if version == "1.6" else "UpdateFirmware"
        return self._store(station, version, (action, payload), ttl=ttl, actor=actor, topic="operator:firmware")

    # -- reading, waiting, and what the bridges report ------------------------------------------------------

    def list(self, station: str, *, limit: int = 100) -> list[DeliveryView]:
        """The calls to ``station``, newest first (the bridge's own deliveries too; ``origin`` tells)."""
        calls.expire_due(self._ctx, station=station)
        return calls.list_calls(self._ctx, station, limit=limit)

    def get(self, station: str, call_id: int) -> DeliveryView:
        calls.expire_due(self._ctx, station=station)
        return calls.operator_call(self._ctx, call_id, station=station)

    def wait(self, station: str, call_id: int, timeout: float, *, poll: float = 0.1) -> DeliveryView:
        """The call once it is no longer pending, or as it is after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.get(station, call_id)
            if view.status != "pending" or time.monotonic() >= deadline:
                return view
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def pending(self, only: Callable[[int, str], bool] | None = None) -> list[DeliveryView]:
        """Every station's pending, unexpired operator calls, oldest first (what a bridge polls for);
        ``only(call_id, station)`` picks the ones wanted before their payloads are read."""
        calls.expire_due(self._ctx)
        return calls.pending_operator_calls(self._ctx, only=only)

    def feed(self, filed: Filed) -> CallFeed:
        """What tells a bridge that calls were filed (:mod:`pki.stations.call_feed`); ``filed`` is called
        from the feed's thread with the stations named (PostgreSQL), the caller closes the feed."""
        return open_call_feed(self._ctx.database, filed)

    def sendable(self, call: DeliveryView) -> str | None:
        """Why ``call`` must not go out now (a firmware signer revoked or expired since), else None."""
        if call.action not in notifications.FIRMWARE_CALLS:
            return None
        pem = str(call.payload.get("firmware", {}).get("signingCertificate", ""))
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode())
            view = self._certificates.get(certificate.fingerprint(hashes.SHA256()).hex())
        except (ValueError, NotFound):
            return "the firmware signing certificate is not one of this PKI"
        if view.status != "valid":
            return f"the firmware signing certificate {view.serial} is {view.status}; the update is not sent"
        return None

    def record_answer(
        self, call_id: int, response: dict[str, Any], *, station: str, actor: str = "ocpp"
    ) -> tuple[DeliveryView, DeliveryView | None]:
        """The station's CALLRESULT to an operator call; returns it and the call that follows, if any."""
        return calls.record_answer(self._ctx, call_id, response, station=station, actor=actor)

    def record_error(
        self, call_id: int, code: str, description: str, *, station: str, actor: str = "ocpp"
    ) -> DeliveryView:
        """The station's CALLERROR (or the bridge's refusal to send): the call is closed as ``error``."""
        return calls.record_call_error(self._ctx, call_id, code, description, station=station, actor=actor)

    def record_notification(
        self, *, station: str, action: str, payload: dict[str, Any], actor: str = "ocpp"
    ) -> NotificationView:
        """A Firmware/SignedFirmware/LogStatusNotification, filed under its call by requestId."""
        return notifications.record_notification(
            self._ctx, station=station, action=action, payload=payload, actor=actor
        )

    def notifications(self, station: str, call_ids: list[int]) -> dict[int, list[NotificationView]]:
        return notifications.notifications_for(self._ctx, station, call_ids)

    def firmware_updates(self, station: str, *, limit: int = 20) -> list[FirmwareUpdateView]:
        """The station's firmware updates, newest first, each with its notifications and outcome."""
        calls.expire_due(self._ctx, station=station)
        return notifications.firmware_updates(self._ctx, station, limit=limit)

    # -- root reconciliation after boot --------------------------------------------------------------

    def set_root_sync(
        self, station: str, *, mode: str | None, delay: int | None = None, actor: str = "system"
    ) -> StationView:
        """Per-station root reconciliation after boot: ``on``, ``off`` or None (the default), and a delay (s)."""
        if mode not in (None, "on", "off"):
            raise InvalidInput("root sync is 'on', 'off' or the default")
        if delay is not None and not 0 <= delay <= 86_400:
            raise InvalidInput("the root sync delay is 0-86400 seconds")
        now = self._ctx.clock.now()
        with self._ctx.database.transaction() as connection:
            found = connection.execute(
                update(_STATIONS)
                .where(_STATIONS.c.identity == station)
                .values(root_sync=mode, root_sync_delay=delay, updated_at=now)
            ).rowcount
            if not found:
                raise NotFound(f"no station {station!r}; `evpki station add` registers one")
            audit.append_on(
                connection,
                at=now,
                actor=actor,
                action="station-root-sync",
                details={"identity": station, "mode": mode, "delay": delay},
            )
        return registry.get_station(self._ctx, station)

    def root_sync(self, station: str) -> tuple[bool, float]:
        """Whether and after how many seconds the bridge reconciles the station's roots after boot."""
        settings = self._ctx.settings
        try:
            view = registry.get_station(self._ctx, station)
        except NotFound:
            return settings.ocpp_root_sync, settings.ocpp_root_sync_delay
        enabled = settings.ocpp_root_sync if view.root_sync is None else view.root_sync == "on"
        delay = settings.ocpp_root_sync_delay if view.root_sync_delay is None else float(view.root_sync_delay)
        return enabled, delay
