"""Test stations for operator calls: the ``ocpp`` library's ChargePoint (1.6, 2.0.1, 2.1) answering what an
operator sends -- InstallCertificate, DeleteCertificate, GetInstalledCertificateIds, triggers, GetLog,
SetVariables / ChangeConfiguration, SetNetworkProfile, Reset, UpdateFirmware / SignedUpdateFirmware -- and
reporting status notifications afterwards, plus the fixtures' plumbing: a bridge that polls for calls quickly, the REST
app on the same database, and a station connected over mutual TLS or Basic auth."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from ocpp.messages import Call
from ocpp.routing import after, on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from ocpp_bridge.gateway import Bridge, BridgeConfig
from pki import PKI
from tests.ocpp_bridge.gateway_support import (
    SUBPROTOCOL,
    WAIT,
    Station16,
    Station21,
    Station201,
    basic_auth,
    client_context,
    issue_station_credential,
)

FIRMWARE_OK = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed")


def verify_firmware_signature(firmware: dict[str, Any], data: bytes) -> x509.Certificate:
    """The station's check of a signed update (L01.FR.04), with ``cryptography`` directly rather than evpki's
    own verifier: SHA-256 over the whole file under the signer's key. Returns the signer."""
    signer = x509.load_pem_x509_certificate(firmware["signingCertificate"].encode())
    signature = base64.b64decode(firmware["signature"])
    key = signer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    return signer


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OperatorMixin:
    """Records every CALL it receives (raw camelCase) and answers with ``self.answers[action]``."""

    version: str

    def _operator_setup(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, str] = {}
        self.inventory: list[tuple[str, dict[str, str]]] = []  # (type, hash data) it reports installed
        self.firmware_statuses: tuple[str, ...] = FIRMWARE_OK
        self.firmware_events: tuple[str, ...] = ("FirmwareUpdated",)
        self.reported = asyncio.Event()  # the status notifications after GetLog / UpdateFirmware are sent

    async def _handle_call(self, msg: Call) -> Any:
        self.calls.append((msg.action, msg.payload))
        return await super()._handle_call(msg)  # type: ignore[misc]

    def got(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.calls if name == action]

    def answer(self, action: str, default: str = "Accepted") -> str:
        return self.answers.get(action, default)


def snake_hash(hash_data: dict[str, str]) -> dict[str, str]:
    """Wire hash data (camelCase) as the ``ocpp`` library's payload fields."""
    return {
        "hash_algorithm": hash_data["hashAlgorithm"],
        "issuer_name_hash": hash_data["issuerNameHash"],
        "issuer_key_hash": hash_data["issuerKeyHash"],
        "serial_number": hash_data["serialNumber"],
    }


class Operator201(OperatorMixin, Station201):
    _call, _result = call201, result201

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._operator_setup()

    @on("InstallCertificate")
    def on_install(self, **kwargs: Any) -> Any:
        return self._result.InstallCertificate(status=self.answer("InstallCertificate"))

    @on("DeleteCertificate")
    def on_delete(self, **kwargs: Any) -> Any:
        return self._result.DeleteCertificate(status=self.answer("DeleteCertificate"))

    @on("GetInstalledCertificateIds")
    def on_installed(self, **kwargs: Any) -> Any:
        if not self.inventory:
            return self._result.GetInstalledCertificateIds(status="NotFound")
        chain = [{"certificate_type": kind, "certificate_hash_data": snake_hash(data)} for kind, data in self.inventory]
        return self._result.GetInstalledCertificateIds(status="Accepted", certificate_hash_data_chain=chain)

    @on("GetLog")
    def on_get_log(self, **kwargs: Any) -> Any:
        return self._result.GetLog(status=self.answer("GetLog"), filename="security.log")

    @after("GetLog")
    async def after_get_log(self, request_id: int, **kwargs: Any) -> None:
        for status in ("Uploading", "Uploaded"):
            await self.call(self._call.LogStatusNotification(status=status, request_id=request_id), suppress=False)
        self.reported.set()

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        results = [
            {
                "attribute_status": self.answer("SetVariables"),
                "component": item["component"],
                "variable": item["variable"],
            }
            for item in set_variable_data
        ]
        return self._result.SetVariables(set_variable_result=results)

    @on("Reset")
    def on_reset(self, **kwargs: Any) -> Any:
        return self._result.Reset(status=self.answer("Reset"))

    @on("SetNetworkProfile")
    def on_set_network_profile(self, **kwargs: Any) -> Any:
        return self._result.SetNetworkProfile(status=self.answer("SetNetworkProfile"))

    @on("UpdateFirmware")
    def on_update_firmware(self, **kwargs: Any) -> Any:
        return self._result.UpdateFirmware(status=self.answer("UpdateFirmware"))

    @after("UpdateFirmware")
    async def after_update_firmware(self, request_id: int, **kwargs: Any) -> None:
        if self.answer("UpdateFirmware") in ("Accepted", "AcceptedCanceled"):
            for status in self.firmware_statuses:
                await self.call(
                    self._call.FirmwareStatusNotification(status=status, request_id=request_id), suppress=False
                )
        for event in self.firmware_events:
            await self.call(self._call.SecurityEventNotification(type=event, timestamp=now_text()), suppress=False)
        self.reported.set()


class Operator21(OperatorMixin, Station21):
    _call, _result = call21, result21

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._operator_setup()

    on_install = Operator201.on_install
    on_delete = Operator201.on_delete
    on_installed = Operator201.on_installed
    on_get_log = Operator201.on_get_log
    after_get_log = Operator201.after_get_log
    on_set_variables = Operator201.on_set_variables
    on_reset = Operator201.on_reset
    on_set_network_profile = Operator201.on_set_network_profile
    on_update_firmware = Operator201.on_update_firmware
    after_update_firmware = Operator201.after_update_firmware


class Operator16(OperatorMixin, Station16):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._operator_setup()

    @on("InstallCertificate")
    def on_install(self, **kwargs: Any) -> Any:
        return result16.InstallCertificate(status=self.answer("InstallCertificate"))

    @on("DeleteCertificate")
    def on_delete(self, **kwargs: Any) -> Any:
        return result16.DeleteCertificate(status=self.answer("DeleteCertificate"))

    @on("GetInstalledCertificateIds")
    def on_installed(self, certificate_type: str, **kwargs: Any) -> Any:
        entries = [snake_hash(data) for kind, data in self.inventory if kind == certificate_type]
        if not entries:
            return result16.GetInstalledCertificateIds(status="NotFound")
        return result16.GetInstalledCertificateIds(status="Accepted", certificate_hash_data=entries)

    @on("GetLog")
    def on_get_log(self, **kwargs: Any) -> Any:
        return result16.GetLog(status=self.answer("GetLog"), filename="security.log")

    @after("GetLog")
    async def after_get_log(self, request_id: int, **kwargs: Any) -> None:
        for status in ("Uploading", "Uploaded"):
            await self.call(call16.LogStatusNotification(status=status, request_id=request_id), suppress=False)
        self.reported.set()

    @on("ChangeConfiguration")
    def on_change_configuration(self, **kwargs: Any) -> Any:
        return result16.ChangeConfiguration(status=self.answer("ChangeConfiguration"))

    @on("SignedUpdateFirmware")
    def on_update_firmware(self, **kwargs: Any) -> Any:
        return result16.SignedUpdateFirmware(status=self.answer("SignedUpdateFirmware"))

    @after("SignedUpdateFirmware")
    async def after_update_firmware(self, request_id: int, **kwargs: Any) -> None:
        if self.answer("SignedUpdateFirmware") in ("Accepted", "AcceptedCanceled"):
            for status in self.firmware_statuses:
                await self.call(
                    call16.SignedFirmwareStatusNotification(status=status, request_id=request_id), suppress=False
                )
        for event in self.firmware_events:
            await self.call(
                call16.SecurityEventNotification(type=event, timestamp=now_text(), tech_info="test"), suppress=False
            )
        self.reported.set()


OPERATOR_STATIONS: dict[str, type[Any]] = {"1.6": Operator16, "2.0.1": Operator201, "2.1": Operator21}


def operator_bridge_config(certificate_dir: Path) -> BridgeConfig:
    """A bridge on free ports for both profiles and the combined listener, polling for operator calls quickly."""
    return BridgeConfig(
        port=0,
        basic_port=0,
        combined_port=0,
        call_timeout=WAIT,
        call_poll_interval=0.02,
        certificate_dir=certificate_dir,
    )


def register(pki: PKI, directory: Path, identity: str, serial: str, version: str) -> Any:
    """A profile-3 station with a fresh certificate; its version recorded as if it had connected before."""
    pki.stations.add(identity=identity, serial=serial, security_profile=3)
    credential = issue_station_credential(pki, directory, identity, serial, validity=dt.timedelta(days=365))
    pki.stations.record_connection(identity, version)
    return credential


@contextlib.asynccontextmanager
async def connected(
    bridge: Bridge,
    version: str,
    identity: str,
    serial: str,
    credential: Any = None,
    *,
    password: str | None = None,
    boot: bool = True,
    station_class: type[Any] | None = None,
    listener: str | None = None,
) -> AsyncIterator[Any]:
    """An operator test station connected to ``bridge`` (mutual TLS, or Basic auth with ``password``), on
    the listener of its profile or the ``listener`` named (``combined``)."""
    port = bridge.ports[listener or ("mtls" if password is None else "basic")]
    url = f"wss://127.0.0.1:{port}/ocpp/{identity}"
    headers = basic_auth(identity, password) if password is not None else None
    root: x509.Certificate = bridge.pki.cas.roots("CSMSRootCertificate")[0]
    async with websockets.connect(
        url,
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        ssl=client_context(bridge.pki, credential),
        server_hostname="localhost",
        additional_headers=headers,
        open_timeout=WAIT,
    ) as connection:
        station = (station_class or OPERATOR_STATIONS[version])(identity, connection, serial=serial, root=root)
        task = asyncio.create_task(station.start())
        try:
            if boot:
                assert (await station.boot()).status == "Accepted"
            yield station
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
