"""What the OCTT plays against evpki: ``ocpp`` stations that answer the way the test tool's station does,
the operator who starts the CSMS-initiated steps through the REST API, and the step walks the OCPP 1.6 and
2.0.1 cases share (the same case in both editions is one walk, parametrised by version)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from ocpp.routing import after, on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from websockets.exceptions import InvalidStatus

from ocpp_bridge.gateway import Bridge
from ocpp_bridge.status import cert_id_of
from pki import PKI
from tests.conftest import ORG, make_csr
from tests.ocpp_bridge.conftest import SECC_ID
from tests.ocpp_bridge.gateway_support import (
    SUBPROTOCOL,
    Credential,
    client_context,
    csr_pem,
    issue_station_credential,
    security_events,
    verify_chain,
    wait_until,
    write_credential,
)
from tests.ocpp_bridge.operator_stations import (
    Operator16,
    Operator21,
    Operator201,
    connected,
    now_text,
    register,
    snake_hash,
    verify_firmware_signature,
)

OLD_PASSWORD, NEW_PASSWORD = "old-password-0123456", "new-password-9876543210"
# OCPP 2.0.1 A02: the certificate signing requests a trigger asks for. SignCombinedCertificate asks for one
# certificate serving as both (the CSR's type is ChargingStationCertificate: the enum has no "combined").
CSR_TYPES = {
    "SignChargingStationCertificate": ("ChargingStationCertificate",),
    "SignV2GCertificate": ("V2GCertificate",),
    "SignCombinedCertificate": ("ChargingStationCertificate",),
}
# The root each signed certificate type chains to (A02.FR.06: the station checks it).
SIGNED_UNDER = {"ChargingStationCertificate": "CSMSRootCertificate", "V2GCertificate": "V2GRootCertificate"}
CSMS_ROOT_USE = {"1.6": "CentralSystemRootCertificate", "2.0.1": "CSMSRootCertificate", "2.1": "CSMSRootCertificate"}


@dataclass
class Api:
    """The operator's side of the OCTT: REST calls filed on a station, answered when the station has."""

    client: httpx.AsyncClient
    headers: dict[str, str]

    async def call(self, identity: str, what: str, body: dict[str, Any], *, status: int = 200) -> dict[str, Any]:
        answer = await self.client.post(f"/api/v1/stations/{identity}/{what}?wait=20s", json=body, headers=self.headers)
        assert answer.status_code == status, answer.text
        return dict(answer.json())

    async def get(self, path: str) -> Any:
        answer = await self.client.get(path, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def firmware(self, identity: str, firmware: bytes, query: str) -> dict[str, Any]:
        answer = await self.client.post(
            f"/api/v1/stations/{identity}/firmware?wait=20s&{query}",
            content=firmware,
            headers={**self.headers, "Content-Type": "application/octet-stream"},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


# -- the OCTT's stations -------------------------------------------------------------------------------


class OcttMixin:
    """Renewal the way the test tool does it: a CSR per type the trigger asks for, the CertificateSigned
    answered as told; an inventory of (type, hash data, child hash data) filtered by the types asked."""

    serial: str
    answers: dict[str, str]

    def _octt_setup(self) -> None:
        self.keys: dict[str, Any] = {}
        self.key_type = "ec"
        self.sign_statuses: list[str] = []
        self.installed: list[tuple[str, dict[str, str], list[dict[str, str]]]] = []

    def csr_for(self, certificate_type: str) -> str:
        key: Any = (
            rsa.generate_private_key(65537, 2048) if self.key_type == "rsa" else ec.generate_private_key(ec.SECP256R1())
        )
        self.keys[certificate_type] = key
        if certificate_type == "V2GCertificate":
            return make_csr(SECC_ID, organization=ORG, country="DE", dc="CPO", key=key)[0]
        return csr_pem(key, self.serial)

    def _hash_entries(self, wanted: list[str] | None) -> list[dict[str, Any]]:
        return [
            {
                "certificate_type": kind,
                "certificate_hash_data": snake_hash(data),
                **({"child_certificate_hash_data": [snake_hash(c) for c in children]} if children else {}),
            }
            for kind, data, children in self.installed
            if not wanted or kind in wanted
        ]


class Octt201(OcttMixin, Operator201):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._octt_setup()

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, **kwargs: Any) -> Any:
        self.triggered.set()
        return self._result.TriggerMessage(status=self.answer("TriggerMessage"))

    @after("TriggerMessage")
    async def after_trigger(self, requested_message: str, **kwargs: Any) -> None:
        for certificate_type in CSR_TYPES.get(requested_message, ()):
            request = self._call.SignCertificate(csr=self.csr_for(certificate_type), certificate_type=certificate_type)
            self.sign_statuses.append((await self.call(request, suppress=False)).status)
        self.csr_answered.set()

    @on("CertificateSigned")
    def on_certificate_signed(self, **kwargs: Any) -> Any:
        return self._result.CertificateSigned(status=self.answer("CertificateSigned"))

    @on("GetInstalledCertificateIds")
    def on_installed(self, certificate_type: list[str] | None = None, **kwargs: Any) -> Any:
        entries = self._hash_entries(certificate_type)
        if not entries:
            return self._result.GetInstalledCertificateIds(status="NotFound")
        return self._result.GetInstalledCertificateIds(status="Accepted", certificate_hash_data_chain=entries)


class Octt21(OcttMixin, Operator21):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._octt_setup()

    on_trigger = Octt201.on_trigger
    after_trigger = Octt201.after_trigger
    on_certificate_signed = Octt201.on_certificate_signed
    on_installed = Octt201.on_installed


class Octt16(OcttMixin, Operator16):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._octt_setup()

    @on("ExtendedTriggerMessage")
    def on_trigger(self, requested_message: str, **kwargs: Any) -> Any:
        self.triggered.set()
        return result16.ExtendedTriggerMessage(status=self.answer("ExtendedTriggerMessage"))

    @after("ExtendedTriggerMessage")
    async def after_trigger(self, requested_message: str, **kwargs: Any) -> None:
        if requested_message == "SignChargePointCertificate":
            request = call16.SignCertificate(csr=self.csr_for("ChargingStationCertificate"))
            self.sign_statuses.append((await self.call(request, suppress=False)).status)
        self.csr_answered.set()

    @on("CertificateSigned")
    def on_certificate_signed(self, **kwargs: Any) -> Any:
        return result16.CertificateSigned(status=self.answer("CertificateSigned"))


OCTT_STATIONS: dict[str, type[Any]] = {"1.6": Octt16, "2.0.1": Octt201, "2.1": Octt21}


def enroll(pki: PKI, directory: Path, case: str, version: str) -> tuple[str, str, Credential]:
    """A profile-3 station of its own for ``case``, known to have spoken ``version``, roots managed by hand."""
    slug = version.replace(".", "")
    identity, serial = f"OCTT-{case}-{slug}", f"SN-{case}-{slug}"
    credential = register(pki, directory, identity, serial, version)
    pki.station_calls.set_root_sync(identity, mode="off")
    return identity, serial, credential


@contextlib.asynccontextmanager
async def octt_station(
    bridge: Bridge, version: str, identity: str, serial: str, credential: Credential | None = None, **kwargs: Any
) -> AsyncIterator[Any]:
    async with connected(
        bridge, version, identity, serial, credential, station_class=OCTT_STATIONS[version], **kwargs
    ) as station:
        yield station


# -- TLS (A00.FR.4xx) ---------------------------------------------------------------------------------

REQUIRED_SUITES = (  # A00.FR.421, and the key type of the server certificate each needs
    ("ECDHE-ECDSA-AES128-GCM-SHA256", ec.EllipticCurvePublicKey),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", ec.EllipticCurvePublicKey),
    ("AES128-GCM-SHA256", rsa.RSAPublicKey),
    ("AES256-GCM-SHA384", rsa.RSAPublicKey),
)


async def tls_handshake(port: int, context: ssl.SSLContext) -> tuple[str, str, x509.Certificate, str | None]:
    """(cipher, TLS version, server certificate, compression) of one handshake with the bridge."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        server = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
        return ssl_object.cipher()[0], ssl_object.version(), server, ssl_object.compression()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def walk_tls_server_certificate(bridge: Bridge, version: str) -> None:
    """TC_A_04 / 1.6 TC_086 on the profile-2 listener (server-side TLS only), then a Boot over it."""
    pki = bridge.pki
    (csms_root,) = pki.cas.roots("CSMSRootCertificate")
    for cipher, key_type in REQUIRED_SUITES:
        # 1. The station opens TLS 1.2 offering one required suite: the handshake completes with it.
        context = client_context(pki)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(cipher)
        chosen, tls_version, server, compression = await tls_handshake(bridge.ports["basic"], context)
        assert (chosen, tls_version) == (cipher, "TLSv1.2")
        # 2. The server certificate: CN = the FQDN (A00.FR.510), the suite's key type and strength
        #    (A00.FR.501-503), short-lived (A00.FR.701), issued under the CSMS root the station holds.
        assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
        key = server.public_key()
        assert isinstance(key, key_type)
        assert key.key_size >= (2048 if isinstance(key, rsa.RSAPublicKey) else 224)
        assert server.not_valid_after_utc - server.not_valid_before_utc <= dt.timedelta(hours=24, minutes=10)
        issuer, root = pki.cas.chain("cso-sub")
        server.verify_directly_issued_by(issuer)
        assert root == csms_root
        # 3. No TLS compression (A00.FR.424).
        assert compression is None
    # 4. TLS 1.3 is served too (">= 1.2").
    assert (await tls_handshake(bridge.ports["basic"], client_context(pki)))[1] == "TLSv1.3"
    # 5. The station upgrades to WebSocket with its subprotocol and boots: Accepted.
    identity = f"OCTT-TLS-{version.replace('.', '')}"
    pki.stations.add(identity=identity, serial=f"SN-TLS-{version}", security_profile=2, password=OLD_PASSWORD)
    pki.station_calls.set_root_sync(identity, mode="off")
    async with octt_station(bridge, version, identity, "-", password=OLD_PASSWORD) as station:
        assert station._connection.subprotocol == SUBPROTOCOL[version]
    assert pki.stations.get(identity).ocpp_version == version


async def walk_client_certificate_valid(bridge: Bridge, directory: Path, case: str, version: str) -> None:
    """TC_A_07 / 1.6 TC_087: mutual TLS with the station certificate, admitted, booted, recorded."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, directory, case, version)
    # 1. The station presents its certificate (O = the CSO, CN = its serial: A00.FR.404/405).
    subject = credential.certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == serial
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORG
    # 2. The handshake and upgrade succeed; 3. BootNotification is Accepted (inside ``connected``).
    async with octt_station(bridge, version, identity, serial, credential) as station:
        assert station._connection.subprotocol == SUBPROTOCOL[version]
        heartbeat = await station.call(station._call.Heartbeat() if version != "1.6" else call16.Heartbeat())
        assert heartbeat.current_time
    # 4. evpki records the connection and no security event against the station.
    assert pki.stations.get(identity).ocpp_version == version
    assert security_events(pki, identity) == []


# -- A02 renewal ----------------------------------------------------------------------------------------


async def walk_renewal(
    bridge: Bridge, api: Api, directory: Path, case: str, version: str, trigger: str, *, key_type: str = "ec"
) -> None:
    """TC_A_11/12/13 / 1.6 TC_074: the operator triggers, the station asks, evpki signs, the station accepts."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, directory, case, version)
    async with octt_station(bridge, version, identity, serial, credential) as station:
        station.key_type = key_type
        # 1. The operator asks for the trigger; 2. the station receives it in its version's names.
        triggered = await api.call(identity, "trigger", {"message": trigger})
        if version == "1.6":
            assert station.got("ExtendedTriggerMessage") == [{"requestedMessage": "SignChargePointCertificate"}]
        else:
            assert station.got("TriggerMessage") == [{"requestedMessage": trigger}]
        # 3. The station's Accepted is what the operator sees.
        assert triggered["status"] == "accepted" and triggered["result"] == {"status": "Accepted"}
        # 4. SignCertificate per requested type: evpki answers Accepted (A02.FR.11).
        await wait_until(station.csr_answered.is_set)
        kinds = CSR_TYPES[trigger] if version != "1.6" else ("ChargingStationCertificate",)
        assert station.sign_statuses == ["Accepted"] * len(kinds)
        # 5. CertificateSigned per CSR: its type mirrors the CSR's (A02.FR.14), the chain is leaf first and
        #    chains to the root of that type, the leaf carries the CSR's key and subject.
        await wait_until(lambda: len(station.got("CertificateSigned")) == len(kinds))
        for kind, signed in zip(kinds, station.got("CertificateSigned"), strict=True):
            # 1.6 has no certificateType; 2.x mirrors the CSR's (A02.FR.14).
            assert signed.get("certificateType") == (None if version == "1.6" else kind)
            (root,) = pki.cas.roots(SIGNED_UNDER[kind])
            leaf = verify_chain(signed["certificateChain"], root)[0]
            assert leaf.public_key() == station.keys[kind].public_key()
            common_name = SECC_ID if kind == "V2GCertificate" else serial
            assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == common_name
            assert isinstance(leaf.public_key(), rsa.RSAPublicKey if key_type == "rsa" else ec.EllipticCurvePublicKey)
        # 6. The station accepts: evpki closes the deliveries.
        await wait_until(lambda: all(d.action != "CertificateSigned" for d in pki.deliveries.pending(identity)))
        for kind in set(kinds):
            assert pki.deliveries.last(identity, f"CertificateSigned:{kind}") is not None
    if "ChargingStationCertificate" not in kinds:
        return
    # 7. The station reconnects with its new certificate (A02.FR.08): admitted, and the old one superseded.
    station_key = station.keys["ChargingStationCertificate"]
    (chain,) = [
        signed["certificateChain"]
        for signed in station.got("CertificateSigned")
        if signed.get("certificateType") != "V2GCertificate"
    ]
    renewed = write_credential(directory, f"{case}-renewed", station_key, chain)
    async with octt_station(bridge, version, identity, serial, renewed):
        await wait_until(lambda: pki.certificates.get(credential.serial, "cso-sub").superseded_by == renewed.serial)
    assert pki.certificates.get(renewed.serial, "cso-sub").status == "valid"


async def walk_renewal_rejected(
    bridge: Bridge, api: Api, directory: Path, case: str, version: str, *, event: str | None = None
) -> None:
    """TC_A_14 / 1.6 TC_077: the station rejects the signed certificate (and with ``event`` reports it);
    evpki had answered the CSR Accepted, and keeps the station's old certificate."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, directory, case, version)
    async with octt_station(bridge, version, identity, serial, credential) as station:
        station.answers["CertificateSigned"] = "Rejected"
        # 1-2. Trigger, Accepted.
        triggered = await api.call(identity, "trigger", {"message": "SignChargingStationCertificate"})
        assert triggered["status"] == "accepted"
        # 3. SignCertificate answered Accepted (what the test case demands of the CSMS).
        await wait_until(station.csr_answered.is_set)
        assert station.sign_statuses == ["Accepted"]
        # 4. CertificateSigned arrives; the station answers Rejected.
        await wait_until(lambda: bool(station.got("CertificateSigned")))
        leaf = x509.load_pem_x509_certificates(station.got("CertificateSigned")[0]["certificateChain"].encode())[0]
        # 5. evpki records the rejection: the delivery is closed as rejected, not re-sent, and the never
        #    installed certificate is revoked; the station's certificate stays valid.
        serial_hex = format(leaf.serial_number, "X")
        await wait_until(lambda: pki.certificates.get(serial_hex, "cso-sub").status == "revoked")
        assert pki.deliveries.last(identity, "CertificateSigned:ChargingStationCertificate", status="rejected")
        assert pki.deliveries.pending(identity) == []
        assert pki.certificates.get(credential.serial, "cso-sub").status == "valid"
        if event is not None:
            # 6. The station's security event is confirmed (A04.FR.03) and recorded under it.
            calls = call16 if version == "1.6" else station._call
            notification = calls.SecurityEventNotification(type=event, timestamp=now_text(), tech_info="rejected")
            assert await station.call(notification, suppress=False) is not None
            assert [e["type"] for e in security_events(pki, identity)] == [event]
    # 7. The station goes on with its old certificate (no automatic retry, A02.FR.20): admitted.
    async with octt_station(bridge, version, identity, serial, credential) as station:
        assert station.got("CertificateSigned") == []


# -- A05 security profile upgrade, A01 password ------------------------------------------------------------


async def walk_profile_upgrade(bridge: Bridge, api: Api, directory: Path, version: str, listener: str | None) -> None:
    """TC_A_19 / 1.6 TC_083: 2.x SetNetworkProfile (profile 3 in a free slot), NetworkConfigurationPriority
    with that slot first, then Reset (2.0.1 Ed. 3; SecurityCtrlr.SecurityProfile is read-only); 1.6
    ChangeConfiguration SecurityProfile. The registry follows on the mutual-TLS reconnect, and profile 2
    refuses the station from then on -- on the listeners of each profile, or on one address for both."""
    pki = bridge.pki
    slug = version.replace(".", "")
    identity, serial = f"OCTT-A05-{slug}-{listener or 'own'}", f"SN-A05-{slug}-{listener or 'own'}"
    pki.stations.add(identity=identity, serial=serial, security_profile=2, password=OLD_PASSWORD)
    pki.stations.record_connection(identity, version)
    pki.station_calls.set_root_sync(identity, mode="off")
    credential = issue_station_credential(pki, directory, identity, serial, validity=dt.timedelta(days=365))
    async with octt_station(bridge, version, identity, serial, password=OLD_PASSWORD, listener=listener) as station:
        # 1. The operator asks for profile 3; 2. the station receives it in its version's names and accepts.
        body = {} if version == "1.6" else {"slot": 2, "url": "wss://csms.example.test/ocpp", "fallbackSlot": 1}
        answer = await api.call(identity, "security-profile", body)
        assert answer["status"] == "accepted"
        if version == "1.6":
            assert station.got("ChangeConfiguration") == [{"key": "SecurityProfile", "value": "3"}]
        else:
            (profile,) = station.got("SetNetworkProfile")
            assert profile["configurationSlot"] == 2
            data = profile["connectionData"]
            assert (data["securityProfile"], data["ocppCsmsUrl"], data["ocppTransport"]) == (
                3,
                "wss://csms.example.test/ocpp",
                "JSON",
            )
            assert ("ocppVersion" in data) == (version == "2.0.1")  # required in 2.0.1, optional in 2.1
            # 3. Once accepted: the new slot first in NetworkConfigurationPriority, the fallback after it;
            # 4. once that is accepted, the Reset that makes it take effect (A05.FR.04).
            await wait_until(lambda: bool(station.got("Reset")))
            (item,) = station.got("SetVariables")[0]["setVariableData"]
            assert item["component"] == {"name": "OCPPCommCtrlr"}
            assert item["variable"] == {"name": "NetworkConfigurationPriority"} and item["attributeValue"] == "2,1"
            assert station.got("Reset") == [{"type": "OnIdle"}]
            sent = [name for name, _ in station.calls if name in ("SetNetworkProfile", "SetVariables", "Reset")]
            assert sent == ["SetNetworkProfile", "SetVariables", "Reset"]
    # 4. Until the station comes back on profile 3, the registry keeps profile 2 with 3 pending.
    view = pki.stations.get(identity)
    assert (view.security_profile, view.pending_security_profile) == (2, 3)
    # 5. It reconnects over mutual TLS: admitted, and the registry now says profile 3.
    async with octt_station(bridge, version, identity, serial, credential, listener=listener):
        pass
    view = pki.stations.get(identity)
    assert (view.security_profile, view.pending_security_profile) == (3, None)
    # 6. A05.FR.07: the lower profile is refused from then on (profile 2 answers every refusal alike).
    with pytest.raises(InvalidStatus) as refused:
        async with octt_station(bridge, version, identity, serial, password=OLD_PASSWORD, listener=listener):
            pass
    assert refused.value.response.status_code == 401


async def walk_password_update(bridge: Bridge, api: Api, version: str) -> None:
    """A01 / 1.6 TC_073: SetVariables BasicAuthPassword (1.6 ChangeConfiguration AuthorizationKey); the
    registry takes the new password only once the station accepted it."""
    pki = bridge.pki
    identity = f"OCTT-PW-{version.replace('.', '')}"
    pki.stations.add(identity=identity, serial=f"SN-PW-{version}", security_profile=2, password=OLD_PASSWORD)
    pki.stations.record_connection(identity, version)
    pki.station_calls.set_root_sync(identity, mode="off")
    action = "ChangeConfiguration" if version == "1.6" else "SetVariables"
    async with octt_station(bridge, version, identity, "-", password=OLD_PASSWORD) as station:
        # A station that rejects the new password: the registry keeps the old one, the answer shows none.
        station.answers[action] = "Rejected"
        answer = await api.call(identity, "password", {"password": NEW_PASSWORD})
        assert answer["status"] == "rejected" and NEW_PASSWORD not in str(answer)
        assert pki.stations.check_password(identity, OLD_PASSWORD) is not None
        assert pki.stations.check_password(identity, NEW_PASSWORD) is None
        # 1. The operator sets a new password; 2. the station receives it under its version's key; accepts.
        station.answers[action] = "Accepted"
        answer = await api.call(identity, "password", {"password": NEW_PASSWORD})
        assert answer["status"] == "accepted"
        sent = station.got(action)[-1]
        if version == "1.6":
            assert sent == {"key": "AuthorizationKey", "value": NEW_PASSWORD}
        else:
            (item,) = sent["setVariableData"]
            assert item["variable"] == {"name": "BasicAuthPassword"} and item["attributeValue"] == NEW_PASSWORD
    # 3. The registry holds the new password only, and the stored calls keep no clear text.
    assert pki.stations.check_password(identity, NEW_PASSWORD) is not None
    assert pki.stations.check_password(identity, OLD_PASSWORD) is None
    assert all(NEW_PASSWORD not in str(view.payload) for view in pki.station_calls.list(identity))
    # 4. The station reconnects with the new password: admitted.
    async with octt_station(bridge, version, identity, "-", password=NEW_PASSWORD):
        pass


# -- M05 install, M03 retrieve, M04 delete --------------------------------------------------------------------


async def walk_install_root(
    bridge: Bridge, api: Api, directory: Path, case: str, version: str, use: str, station_answer: str = "Accepted"
) -> None:
    """TC_M_01-05 / 1.6 TC_075: InstallCertificate of our root of ``use``; the station's answer recorded."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, directory, case, version)
    async with octt_station(bridge, version, identity, serial, credential) as station:
        station.answers["InstallCertificate"] = station_answer
        # 1. The operator installs the root; 2. the station receives it: its version's type name, one PEM
        #    certificate, our (self-signed) root of that use.
        answer = await api.call(identity, "install-certificate", {"use": use})
        (install,) = station.got("InstallCertificate")
        wire_use = CSMS_ROOT_USE[version] if use == "CSMSRootCertificate" else use
        assert install["certificateType"] == wire_use
        newest = pki.cas.roots(use)[0]  # the operator named no root: the newest of the use
        assert x509.load_pem_x509_certificates(install["certificate"].encode()) == [newest]
        # 3. The station's answer is what the operator sees and what evpki keeps with the call.
        expected = {"Accepted": "accepted", "Rejected": "rejected", "Failed": "failed"}[station_answer]
        assert (answer["status"], answer["result"]) == (expected, {"status": station_answer})
        assert pki.station_calls.get(identity, answer["id"]).status == expected


def hash_entry(certificate: x509.Certificate, issuer: x509.Certificate, algorithm: str = "SHA256") -> dict[str, str]:
    return cert_id_of(certificate, issuer, algorithm)


async def walk_retrieve(
    bridge: Bridge,
    api: Api,
    directory: Path,
    case: str,
    version: str,
    asked: list[str],
    installed: list[tuple[str, dict[str, str], list[dict[str, str]]]],
) -> dict[str, Any]:
    """TC_M_12-19 / 1.6 part of TC_076: GetInstalledCertificateIds for ``asked`` (none: every type)."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, directory, case, version)
    async with octt_station(bridge, version, identity, serial, credential) as station:
        station.installed = installed
        station.inventory = [(kind, data) for kind, data, _ in installed]  # what the 1.6 station reports
        # 1. The operator asks; 2. the station receives the types asked (none: all, M03.FR.02).
        body = {"types": asked} if asked else {}
        answer = await api.call(identity, "installed-certificates", body)
        sent = station.got("GetInstalledCertificateIds")
        if version == "1.6":
            assert sent == [{"certificateType": asked[0]}]
        else:
            assert sent == [{"certificateType": asked} if asked else {}]
        # 3. The station's answer (Accepted with the hash data, or NotFound without any) is kept as sent.
        matching = [entry for entry in installed if not asked or entry[0] in asked]
        result = answer["result"]
        if not matching:
            assert (answer["status"], result) == ("answered", {"status": "NotFound"})
            return result  # type: ignore[no-any-return]
        assert result["status"] == "Accepted"
        if version == "1.6":
            assert result["certificateHashData"] == [data for _, data, _ in matching]
        else:
            reported = [
                {"certificateType": kind, "certificateHashData": data, **({"childCertificateHashData": c} if c else {})}
                for kind, data, c in matching
            ]
            assert result["certificateHashDataChain"] == reported
        assert pki.station_calls.get(identity, answer["id"]).result == result
        return result  # type: ignore[no-any-return]


async def walk_delete(
    bridge: Bridge, api: Api, directory: Path, case: str, version: str, ca_id: str, station_answer: str = "Accepted"
) -> None:
    """TC_M_20/21 / 1.6 TC_076: retrieve, then DeleteCertificate with exactly the hash data reported -- once
    per hash algorithm the station may report with (M04.FR.07)."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, directory, case, version)
    (root,) = [c for c in pki.cas.chain(ca_id)][-1:]
    use = next(u for u in ("CSMSRootCertificate", "ManufacturerRootCertificate") if root in pki.cas.roots(u))
    wire_use = CSMS_ROOT_USE[version] if use == "CSMSRootCertificate" else use
    async with octt_station(bridge, version, identity, serial, credential) as station:
        station.answers["DeleteCertificate"] = station_answer
        for algorithm in ("SHA256", "SHA384", "SHA512"):
            reported = hash_entry(root, root, algorithm)
            station.installed, station.inventory = [(wire_use, reported, [])], [(wire_use, reported)]
            # 1-2. GetInstalledCertificateIds: the station reports the root under ``algorithm``.
            listed = await api.call(identity, "installed-certificates", {"types": [wire_use]})
            assert listed["result"]["status"] == "Accepted"
            # 3. The operator deletes it by name; 4. the station receives the hash data as it reported them.
            deleted = await api.call(identity, "delete-certificate", {"caId": ca_id})
            assert station.got("DeleteCertificate")[-1] == {"certificateHashData": reported}
            # 5. Its answer is recorded with the call.
            expected = {"Accepted": "accepted", "Failed": "failed", "NotFound": "answered"}[station_answer]
            assert (deleted["status"], deleted["result"]) == (expected, {"status": station_answer})


# -- L01 secure firmware update -------------------------------------------------------------------------------

FIRMWARE = b"firmware image v2 " * 1000
LOCATION = "https://fw.example.com/v2.bin"
INSTALLED = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed")
_SCHEDULED = ("Downloading", "Downloaded", "SignatureVerified", "InstallScheduled", "Installing", "Installed")
_REFUSED_SIGNER = {"events": ("InvalidFirmwareSigningCertificate",), "outcome": "refused"}
# What the station answers and reports in each firmware case, and the outcome evpki must show.
FIRMWARE_CASES: dict[str, dict[str, Any]] = {
    "installed": {"words": "FirmwareUpdated"},
    "install-scheduled": {"statuses": _SCHEDULED, "query": "&installDateTime=2030-01-01T00:00:00Z"},
    "download-scheduled": {
        "statuses": ("DownloadScheduled", *INSTALLED),
        "query": "&retrieveDateTime=2030-01-01T00:00:00Z",
    },
    "revoked-certificate": {"answer": "RevokedCertificate", "words": "L01.FR.22", **_REFUSED_SIGNER},
    "invalid-certificate": {"answer": "InvalidCertificate", "words": "L01.FR.02", **_REFUSED_SIGNER},
    "invalid-signature": {
        "statuses": ("Downloading", "Downloaded", "InvalidSignature"),
        "events": ("InvalidFirmwareSignature",),
        "outcome": "failed",
        "words": "L01.FR.03",
    },
    "download-failed": {"statuses": ("Downloading", "DownloadFailed")},
    "install-verification-failed": {"statuses": (*INSTALLED[:4], "InstallVerificationFailed")},
    "installation-failed": {"statuses": (*INSTALLED[:4], "InstallationFailed")},
    "waits-for-transaction": {"statuses": _SCHEDULED},
}
for _failure in ("download-failed", "install-verification-failed", "installation-failed"):
    FIRMWARE_CASES[_failure].update(events=(), outcome="failed", words=FIRMWARE_CASES[_failure]["statuses"][-1])


async def walk_firmware(
    bridge: Bridge,
    api: Api,
    directory: Path,
    case: str,
    version: str,
    *,
    answer: str = "Accepted",
    statuses: tuple[str, ...] = INSTALLED,
    events: tuple[str, ...] = ("FirmwareUpdated",),
    outcome: str = "installed",
    words: str = "",
    query: str = "",
) -> dict[str, Any]:
    """TC_L_* / 1.6 TC_080/081: the operator pushes a file, evpki signs it and sends the signed update, the
    station answers and reports under the call's requestId; evpki's outcome names what happened."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, directory, case, version)
    action = "SignedUpdateFirmware" if version == "1.6" else "UpdateFirmware"
    async with octt_station(bridge, version, identity, serial, credential) as station:
        station.answers[action] = answer
        station.firmware_statuses, station.firmware_events = statuses, events
        # 1. The operator files the update; 2. the station receives it with requestId = the call's id and
        #    the signing certificate and signature (L01.FR.11), the signature verifying over the whole file
        #    under a signer issued by the manufacturer root.
        sent_call = await api.firmware(identity, FIRMWARE, f"location={LOCATION}&retries=2{query}")
        (sent,) = station.got(action)
        assert sent["requestId"] == sent_call["id"] and sent["firmware"]["location"] == LOCATION
        for name, value in urllib.parse.parse_qsl(query):  # installDateTime / retrieveDateTime as asked
            assert sent["firmware"][name] == value
        signer = verify_firmware_signature(sent["firmware"], FIRMWARE)
        (manufacturer_root,) = pki.cas.roots("ManufacturerRootCertificate")
        signer.verify_directly_issued_by(manufacturer_root)
        # 3. The station's answer is the call's.
        assert sent_call["result"] == {"status": answer}
        # 4. Every status and firmware event it reports is recorded under the call, in order.
        await wait_until(station.reported.is_set)
        reported = len(statuses if answer in ("Accepted", "AcceptedCanceled") else ()) + len(events)
        await wait_until(
            lambda: (
                len(pki.station_calls.notifications(identity, [sent_call["id"]]).get(sent_call["id"], [])) == reported
            )
        )
    # 5. The outcome the operator reads names it (L01.FR.02/03/21/22/24/31).
    (update,) = (await api.get(f"/api/v1/stations/{identity}/firmware"))["updates"]
    assert update["requestId"] == sent_call["id"] and update["outcome"] == outcome, update
    assert words in update["reason"], update
    notified = [n["status"] for n in update["notifications"] if n["action"] != "SecurityEventNotification"]
    assert notified == (list(statuses) if answer in ("Accepted", "AcceptedCanceled") else [])
    return dict(update)


async def walk_firmware_during_update(
    bridge: Bridge, api: Api, directory: Path, case: str, version: str, second_answer: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """TC_L_10 / TC_L_11: a second update while the first runs. AcceptedCanceled: the station cancels the
    first for it (L01.FR.24); Rejected: it cannot, and the first goes on (L01.FR.27). Returns both updates
    as the operator reads them (first, second)."""
    pki = bridge.pki
    identity, serial, credential = enroll(pki, directory, case, version)

    def filed(call_id: int) -> int:
        return len(pki.station_calls.notifications(identity, [call_id]).get(call_id, []))

    async with octt_station(bridge, version, identity, serial, credential) as station:
        # 1. The first update: accepted, and the station is downloading (AcceptedCanceled) or installing.
        running = ("Downloading",) if second_answer == "AcceptedCanceled" else INSTALLED[:4]
        station.firmware_statuses, station.firmware_events = running, ()
        first = await api.firmware(identity, FIRMWARE, f"location={LOCATION}")
        assert first["status"] == "accepted"
        await wait_until(lambda: filed(first["id"]) == len(running))
        # 2. The second update reaches the station signed, with its own requestId; the answer is the call's.
        station.reported.clear()
        station.answers["UpdateFirmware"] = second_answer
        station.firmware_statuses = INSTALLED
        station.firmware_events = ("FirmwareUpdated",) if second_answer == "AcceptedCanceled" else ()
        second = await api.firmware(identity, FIRMWARE, f"location={LOCATION}")
        sent = station.got("UpdateFirmware")[-1]
        assert sent["requestId"] == second["id"] != first["id"]
        verify_firmware_signature(sent["firmware"], FIRMWARE)
        assert second["result"] == {"status": second_answer}
        await wait_until(station.reported.is_set)
        if second_answer != "AcceptedCanceled":
            # 3. The first update goes on to Installed, and the station reports FirmwareUpdated (no requestId).
            done = station._call.FirmwareStatusNotification(status="Installed", request_id=first["id"])
            await station.call(done, suppress=False)
            event = station._call.SecurityEventNotification(type="FirmwareUpdated", timestamp=now_text())
            await station.call(event, suppress=False)
        expected = (1, 6) if second_answer == "AcceptedCanceled" else (6, 0)
        try:
            await wait_until(lambda: (filed(first["id"]), filed(second["id"])) == expected)
        except AssertionError:
            notes = pki.station_calls.notifications(identity, [first["id"], second["id"]])
            raise AssertionError(f"filed {notes}, calls {pki.station_calls.list(identity)}") from None
    updates = {u["requestId"]: u for u in (await api.get(f"/api/v1/stations/{identity}/firmware"))["updates"]}
    return updates[first["id"]], updates[second["id"]]
