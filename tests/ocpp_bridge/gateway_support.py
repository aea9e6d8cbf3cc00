"""Helpers of the gateway tests: a live PKI clock, station certificates on disk, TLS client contexts,
and stations written with the real ``ocpp`` ChargePoint classes (1.6, 2.0.1, 2.1)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from pki import PKI, RequestIdentity
from tests.conftest import ORG

# TLS 1.3 reports a refused client certificate after the handshake: the HTTP response never comes.
TLS_REFUSED = (ssl.SSLError, ConnectionError, ConnectionClosed, InvalidHandshake, OSError)
SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
WAIT = 30.0  # generous: every wait ends on an event, this only bounds a failure


async def wait_until(predicate: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``predicate`` until it holds (for effects only visible in the database)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def pem(certificates: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


@dataclass
class Credential:
    """A station's TLS client credential as files (the test station keeps its key unencrypted)."""

    chain: Path
    key: Path
    certificate: x509.Certificate

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "X")


def csr_pem(key: Any, common_name: str, organization: str = ORG) -> str:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def write_credential(directory: Path, name: str, key: Any, chain_pem: str) -> Credential:
    directory.mkdir(parents=True, exist_ok=True)
    chain, key_path = directory / f"{name}.chain.pem", directory / f"{name}.key.pem"
    chain.write_text(chain_pem)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Credential(chain, key_path, x509.load_pem_x509_certificates(chain_pem.encode())[0])


def issue_station_credential(
    pki: PKI,
    directory: Path,
    identity: str,
    serial: str,
    *,
    validity: dt.timedelta = dt.timedelta(days=10),
    organization: str = ORG,
    name: str = "bootstrap",
) -> Credential:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = pki.certificates.issue(
        profile="station",
        csr=csr_pem(key, serial, organization),
        identity=RequestIdentity(station_id=identity, station_serial=serial),
        validity=validity,
        actor="test",
    )
    return write_credential(directory, name, key, issued.chain_pem)


def client_context(pki: PKI, credential: Credential | None = None) -> ssl.SSLContext:
    """What a station holds: the CSMS root (to check the bridge) and, on profile 3, its certificate."""
    context = ssl.create_default_context(cadata=pem(pki.cas.roots("CSMSRootCertificate")))
    if credential is not None:
        context.load_cert_chain(credential.chain, credential.key)
    return context


def verify_chain(chain_pem: str, root: x509.Certificate) -> list[x509.Certificate]:
    """The station's check of a CertificateSigned chain (A02.FR.06): leaf ← sub-CA ← our CSMS root."""
    chain = x509.load_pem_x509_certificates(chain_pem.encode())
    for child, parent in zip(chain, [*chain[1:], root], strict=True):
        child.verify_directly_issued_by(parent)
    now = dt.datetime.now(dt.UTC)
    assert chain[0].not_valid_before_utc <= now < chain[0].not_valid_after_utc
    return chain


class EnrollingStation:
    """Mixin of the test stations: answers the certificate calls and enrolls when triggered."""

    serial: str
    root: x509.Certificate
    version: str

    def _setup(self, serial: str, root: x509.Certificate) -> None:
        self.serial = serial
        self.root = root
        self.triggered = asyncio.Event()
        self.signed = asyncio.Event()
        self.csr_answered = asyncio.Event()  # our SignCertificate got its CALLRESULT (may follow CertificateSigned)
        self.new_key: Any = None
        self.chain_pem = ""
        self.sign_status = ""
        self.received: list[str] = []

    def _make_csr(self) -> str:
        self.new_key = ec.generate_private_key(ec.SECP256R1())
        return csr_pem(self.new_key, self.serial)

    def _accept_chain(self, certificate_chain: str) -> bool:
        chain = verify_chain(certificate_chain, self.root)
        assert chain[0].public_key() == self.new_key.public_key()
        assert chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == self.serial
        self.chain_pem = certificate_chain
        return True


class Station201(ChargePoint201, EnrollingStation):
    version = "2.0.1"
    _call, _result = call201, result201

    def __init__(self, identity: str, connection: Any, *, serial: str, root: x509.Certificate) -> None:
        super().__init__(identity, connection, response_timeout=WAIT)
        self._setup(serial, root)

    async def boot(self) -> Any:
        return await self.call(
            self._call.BootNotification(charging_station={"model": "Test", "vendor_name": "evpki"}, reason="PowerUp"),
            suppress=False,
        )

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, **kwargs: Any) -> Any:
        self.received.append(f"TriggerMessage:{requested_message}")
        self.triggered.set()
        return self._result.TriggerMessage(status="Accepted")

    @after("TriggerMessage")
    async def after_trigger(self, requested_message: str, **kwargs: Any) -> None:
        if requested_message == "SignChargingStationCertificate":
            answer = await self.call(
                self._call.SignCertificate(csr=self._make_csr(), certificate_type="ChargingStationCertificate"),
                suppress=False,
            )
            self.sign_status = answer.status
            self.csr_answered.set()

    @on("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, **kwargs: Any) -> Any:
        self.received.append("CertificateSigned")
        return self._result.CertificateSigned(
            status="Accepted" if self._accept_chain(certificate_chain) else "Rejected"
        )

    @after("CertificateSigned")
    def after_certificate_signed(self, **kwargs: Any) -> None:
        self.signed.set()  # the answer is on the wire

    @on("GetInstalledCertificateIds")
    def on_installed(self, **kwargs: Any) -> Any:
        self.received.append("GetInstalledCertificateIds")
        return self._result.GetInstalledCertificateIds(status="NotFound")

    @on("InstallCertificate")
    def on_install(self, **kwargs: Any) -> Any:
        self.received.append("InstallCertificate")
        return self._result.InstallCertificate(status="Accepted")

    @on("DeleteCertificate")
    def on_delete(self, **kwargs: Any) -> Any:
        self.received.append("DeleteCertificate")
        return self._result.DeleteCertificate(status="Accepted")


class Station21(ChargePoint21, EnrollingStation):
    version = "2.1"
    _call, _result = call21, result21

    def __init__(self, identity: str, connection: Any, *, serial: str, root: x509.Certificate) -> None:
        super().__init__(identity, connection, response_timeout=WAIT)
        self._setup(serial, root)

    boot = Station201.boot
    on_trigger = Station201.on_trigger
    after_trigger = Station201.after_trigger
    on_certificate_signed = Station201.on_certificate_signed
    after_certificate_signed = Station201.after_certificate_signed
    on_installed = Station201.on_installed
    on_install = Station201.on_install
    on_delete = Station201.on_delete


class Station16(ChargePoint16, EnrollingStation):
    version = "1.6"

    def __init__(self, identity: str, connection: Any, *, serial: str, root: x509.Certificate) -> None:
        super().__init__(identity, connection, response_timeout=WAIT)
        self._setup(serial, root)

    async def boot(self) -> Any:
        return await self.call(
            call16.BootNotification(charge_point_model="Test", charge_point_vendor="evpki"), suppress=False
        )

    @on("ExtendedTriggerMessage")
    def on_trigger(self, requested_message: str, **kwargs: Any) -> Any:
        self.received.append(f"ExtendedTriggerMessage:{requested_message}")
        self.triggered.set()
        return result16.ExtendedTriggerMessage(status="Accepted")

    @after("ExtendedTriggerMessage")
    async def after_trigger(self, requested_message: str, **kwargs: Any) -> None:
        if requested_message == "SignChargePointCertificate":
            answer = await self.call(call16.SignCertificate(csr=self._make_csr()), suppress=False)
            self.sign_status = answer.status
            self.csr_answered.set()

    @on("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, **kwargs: Any) -> Any:
        self.received.append("CertificateSigned")
        return result16.CertificateSigned(status="Accepted" if self._accept_chain(certificate_chain) else "Rejected")

    @after("CertificateSigned")
    def after_certificate_signed(self, **kwargs: Any) -> None:
        self.signed.set()  # the answer is on the wire

    @on("GetInstalledCertificateIds")
    def on_installed(self, **kwargs: Any) -> Any:
        self.received.append("GetInstalledCertificateIds")
        return result16.GetInstalledCertificateIds(status="NotFound")

    @on("InstallCertificate")
    def on_install(self, **kwargs: Any) -> Any:
        self.received.append("InstallCertificate")
        return result16.InstallCertificate(status="Accepted")

    @on("DeleteCertificate")
    def on_delete(self, **kwargs: Any) -> Any:
        self.received.append("DeleteCertificate")
        return result16.DeleteCertificate(status="Accepted")


STATION_CLASSES: dict[str, type[Any]] = {"1.6": Station16, "2.0.1": Station201, "2.1": Station21}


def basic_auth(identity: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()}


def security_events(pki: PKI, identity: str) -> list[dict[str, Any]]:
    """The security events the audit log holds for ``identity``."""
    import json

    records = pki.audit.records(action="security-event", limit=1000)
    return [event for event in (json.loads(r.details) for r in records) if event.get("station") == identity]


def foreign_credential(directory: Path, serial: str) -> Credential:
    """A CA of somebody else's making, issuing a certificate that looks right (O, CN) otherwise."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        )

    def certificate(subject: str, public_key: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("Evil"))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
        )
        if ca:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        return builder.sign(ca_key, hashes.SHA256())

    chain = pem([certificate(serial, key.public_key(), False), certificate("Evil", ca_key.public_key(), True)])
    return write_credential(directory, "foreign", key, chain)
