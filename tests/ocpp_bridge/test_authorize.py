"""Plug & Charge Authorize (OCPP C07) through the core, REST and the ``ocpp`` adapter; foreign contracts by real OCSP.

A foreign mobility operator is built here with plain ``cryptography``: its root goes into the
trust store (MORootCertificate), and ``openssl ocsp`` on a free port answers for its contract
certificates through a delegated responder -- the case OCTT TC_C_52 checks: the CSMS computes the
CertID itself and asks the responder in the certificate's AIA, and within nextUpdate answers
from its cache (counted at the responder).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from ocpp.routing import on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call, call_result

from ocpp_bridge.adapter import with_certificate_handlers
from ocpp_bridge.core import CertificateService
from ocpp_bridge.gateway import Bridge, BridgeConfig
from ocpp_bridge.ocsp_client import verify_ocsp_response
from ocpp_bridge.status import CertId, StatusError
from pki import PKI, RequestIdentity
from pki.core.clock import FixedClock
from pki.operations.tokens import Role
from tests.api.conftest import bearer
from tests.conftest import make_csr
from tests.ocpp_bridge.gateway_support import WAIT, Station201, client_context, issue_station_credential
from tests.ocpp_bridge.gateway_support import pem as gateway_pem
from tests.ocpp_bridge.test_gateway_proxy import Recording, UpstreamCsms, live_pki, upstream  # noqa: F401 -- fixtures

FOREIGN_EMAID = "NLXYZC000000001"
REVOKED_EMAID = "NLXYZC000000002"
OWN_EMAID = "DEABCC123ABC56"

requires_openssl_ocsp = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("stdbuf") is None, reason="needs openssl and stdbuf"
)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Foreign Mobility Operator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "MO"),
        ]
    )


@dataclass
class ForeignMo:
    """A foreign MO root that issues contract certificates directly, and its delegated OCSP responder."""

    now: dt.datetime
    key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    responder_key: ec.EllipticCurvePrivateKey
    responder: x509.Certificate

    @classmethod
    def make(cls, now: dt.datetime) -> ForeignMo:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name("Foreign MO Root CA")
        root = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=10))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=2), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        responder_key = ec.generate_private_key(ec.SECP256R1())
        responder = (
            cls._leaf_builder(root, "Foreign MO OCSP", responder_key, now)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(now, key, root, responder_key, responder)

    @staticmethod
    def _leaf_builder(
        root: x509.Certificate, common_name: str, key: ec.EllipticCurvePrivateKey, now: dt.datetime, serial: int = 0
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(root.subject)
            .public_key(key.public_key())
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )

    def contract(
        self, emaid: str, serial: int, ocsp_url: str, *, signer: ec.EllipticCurvePrivateKey | None = None
    ) -> x509.Certificate:
        builder = self._leaf_builder(self.root, emaid, ec.generate_private_key(ec.SECP256R1()), self.now, serial)
        aia = x509.AuthorityInformationAccess(
            [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]
        )
        return builder.add_extension(aia, critical=False).sign(signer or self.key, hashes.SHA256())


def _pem(*certificates: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


@dataclass
class Responder:
    url: str
    log: Path

    def count(self) -> int:
        return self.log.read_text(errors="replace").count("OCSP Response Data")

    def wait_for(self, n: int) -> None:
        deadline = time.monotonic() + 10
        while self.count() < n and time.monotonic() < deadline:
            time.sleep(0.01)  # the responder writes its log line right after the answer
        assert self.count() == n


GOOD_SERIAL, REVOKED_SERIAL = 0x1A2B3C4D5E6F7081, 0x2B3C4D5E6F708192


_ACCEPT = re.compile(r"^ACCEPT \S*:(\d+)\s", re.MULTILINE)


@contextlib.contextmanager
def openssl_responder(mo: ForeignMo, tmp_path: Path) -> Iterator[Responder]:
    """``openssl ocsp`` for ``mo``: GOOD_SERIAL good, REVOKED_SERIAL revoked, nextUpdate in 60 minutes."""
    stamp = (mo.now + dt.timedelta(days=365)).strftime("%y%m%d%H%M%SZ")
    revoked_at = (mo.now - dt.timedelta(hours=1)).strftime("%y%m%d%H%M%SZ")
    (tmp_path / "index.txt").write_text(
        f"V\t{stamp}\t\t{GOOD_SERIAL:016X}\tunknown\t/CN={FOREIGN_EMAID}\n"
        f"R\t{stamp}\t{revoked_at},keyCompromise\t{REVOKED_SERIAL:016X}\tunknown\t/CN={REVOKED_EMAID}\n"
    )
    (tmp_path / "ca.pem").write_text(_pem(mo.root))
    (tmp_path / "responder.pem").write_text(_pem(mo.responder))
    (tmp_path / "responder.key").write_bytes(
        mo.responder_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    log = tmp_path / "responder.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # Port 0: a free one, printed as "ACCEPT [::]:<port>"; stdbuf so each answer is logged at once.
            ["stdbuf", "-o0", "openssl", "ocsp", "-index", "index.txt", "-CA", "ca.pem", "-rsigner", "responder.pem",
             "-rkey", "responder.key", "-port", "0", "-nmin", "60", "-resp_text"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # The line may arrive in pieces; wait until the whole address is there.
        deadline = time.monotonic() + 10
        while (accepted := _ACCEPT.search(log.read_text())) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert accepted is not None, f"openssl ocsp did not start: {log.read_text()!r}"
        port = int(accepted.group(1))
        yield Responder(f"http://127.0.0.1:{port}/", log)
    finally:
        process.kill()
        process.wait()


def _real_time(pki: PKI) -> dt.datetime:
    # openssl stamps thisUpdate with the real time; the PKI's clock goes there too.
    clock = pki.clock
    assert isinstance(clock, FixedClock)
    clock.set(dt.datetime.now(dt.UTC))
    return clock.now()


def _authorize(
    service: CertificateService, certificate: str, emaid: str = FOREIGN_EMAID, version: str = "2.0.1"
) -> dict[str, Any]:
    payload = {"idToken": {"idToken": emaid, "type": "eMAID"}, "certificate": certificate}
    return service.handle(version, "CS-0001", "Authorize", payload).response


@requires_openssl_ocsp
def test_foreign_contracts_by_real_ocsp_good_revoked_and_cached(fresh_pki: PKI, tmp_path: Path) -> None:
    mo = ForeignMo.make(_real_time(fresh_pki))
    fresh_pki.trust.add(_pem(mo.root), use="MORootCertificate", actor="test")
    service = CertificateService(fresh_pki)
    with openssl_responder(mo, tmp_path) as responder:
        good = mo.contract(FOREIGN_EMAID, GOOD_SERIAL, responder.url)
        revoked = mo.contract(REVOKED_EMAID, REVOKED_SERIAL, responder.url)
        accepted = {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
        assert _authorize(service, _pem(good)) == accepted
        responder.wait_for(1)
        assert _authorize(service, _pem(good), version="2.1") == accepted  # within nextUpdate: from the cache
        assert _authorize(service, _pem(revoked), REVOKED_EMAID) == {
            "idTokenInfo": {"status": "Invalid"},
            "certificateStatus": "CertificateRevoked",
        }
        responder.wait_for(2)  # one request per certificate: the cached answer did not reach the responder
        # Hash data only, as the station computed it (the responder URL from the station this time).
        name_hash, key_hash = _issuer_hashes(mo.root)
        hash_data = [
            {
                "hashAlgorithm": "SHA256",
                "issuerNameHash": name_hash.hex(),
                "issuerKeyHash": key_hash.hex(),
                "serialNumber": format(GOOD_SERIAL, "X"),
                "responderURL": responder.url,
            }
        ]
        payload = {"idToken": {"idToken": FOREIGN_EMAID, "type": "eMAID"}, "iso15118CertificateHashData": hash_data}
        assert service.handle("2.0.1", "CS-0001", "Authorize", payload).response == accepted
        responder.wait_for(2)  # the same CertID as the chain's: cached
        # Past nextUpdate the cache is stale: the next call asks again (and openssl's answer, stamped with
        # the real time, is already past its nextUpdate for our clock: no usable status).
        clock = fresh_pki.clock
        assert isinstance(clock, FixedClock)
        clock.advance(dt.timedelta(minutes=61))
        chain_error = {"idTokenInfo": {"status": "Invalid"}, "certificateStatus": "CertChainError"}
        assert _authorize(service, _pem(good)) == chain_error
        responder.wait_for(3)
    # The responder is gone: no status can be had, and that is an answer, not an exception.
    clock.advance(dt.timedelta(minutes=61))
    assert _authorize(service, _pem(good)) == {
        "idTokenInfo": {"status": "Invalid"},
        "certificateStatus": "CertChainError",
    }


def _issuer_hashes(issuer: x509.Certificate) -> tuple[bytes, bytes]:
    probe = ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, hashes.SHA256()).build()
    return probe.issuer_name_hash, probe.issuer_key_hash


def test_ocsp_responses_from_unauthorized_signers_or_with_bad_signatures_are_refused(fresh_pki: PKI) -> None:
    now = _real_time(fresh_pki)
    mo = ForeignMo.make(now)
    leaf = mo.contract(FOREIGN_EMAID, GOOD_SERIAL, "http://127.0.0.1:9/")
    name_hash, key_hash = _issuer_hashes(mo.root)
    cert_id = CertId("SHA256", name_hash, key_hash, GOOD_SERIAL)

    def response(signer_key: ec.EllipticCurvePrivateKey, signer: x509.Certificate) -> ocsp.OCSPResponse:
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                leaf, mo.root, hashes.SHA256(), ocsp.OCSPCertStatus.GOOD, now, now + dt.timedelta(hours=1), None, None
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
            .certificates([signer])
        )
        return builder.sign(signer_key, hashes.SHA256())

    assert verify_ocsp_response(response(mo.responder_key, mo.responder), cert_id, mo.root, now)
    assert verify_ocsp_response(response(mo.key, mo.root), cert_id, None, now)  # the issuer itself, brought along
    # A "responder" without id-kp-OCSPSigning, or one another CA issued, is not authorized (RFC 6960 §4.2.2.2).
    other = ForeignMo.make(now)
    plain_key = ec.generate_private_key(ec.SECP256R1())
    plain = ForeignMo._leaf_builder(mo.root, "Not a responder", plain_key, now).sign(mo.key, hashes.SHA256())
    for key, certificate in ((plain_key, plain), (other.responder_key, other.responder)):
        with pytest.raises(StatusError, match="authorized"):
            verify_ocsp_response(response(key, certificate), cert_id, mo.root, now)
    # A signature that does not verify: the issuer's own response, no certificates, its last byte changed.
    issuer_signed = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            leaf, mo.root, hashes.SHA256(), ocsp.OCSPCertStatus.GOOD, now, now + dt.timedelta(hours=1), None, None
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, mo.root)
        .sign(mo.key, hashes.SHA256())
    )
    der = bytearray(issuer_signed.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the end of the ECDSA signature's s
    with pytest.raises(StatusError, match="signature"):
        verify_ocsp_response(ocsp.load_der_ocsp_response(bytes(der)), cert_id, mo.root, now)
    # Stale or not yet valid.
    with pytest.raises(StatusError, match="nextUpdate"):
        verify_ocsp_response(issuer_signed, cert_id, mo.root, now + dt.timedelta(hours=2))
    with pytest.raises(StatusError, match="future"):
        verify_ocsp_response(issuer_signed, cert_id, mo.root, now - dt.timedelta(hours=1))


def test_a_foreign_chain_under_no_trusted_root_is_a_chain_error(fresh_pki: PKI) -> None:
    mo = ForeignMo.make(_real_time(fresh_pki))  # its root is not in the trust store
    certificate = _pem(mo.contract(FOREIGN_EMAID, GOOD_SERIAL, "http://127.0.0.1:9/"))
    assert _authorize(CertificateService(fresh_pki), certificate)["certificateStatus"] == "CertChainError"


def _own_contract(pki: PKI) -> str:
    pki.contracts.add(emaid=OWN_EMAID, pcid="WMIV2G0000000001A")
    csr, _ = make_csr(OWN_EMAID, dc="MO")
    return pki.certificates.issue(profile="contract", csr=csr, identity=RequestIdentity(emaid=OWN_EMAID)).chain_pem


def test_only_plug_and_charge_authorize_is_owned(fresh_pki: PKI) -> None:
    service = CertificateService(fresh_pki)
    rfid = {"idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}}
    assert not service.owns("2.0.1", "Authorize", rfid)
    assert not service.owns("2.0.1", "Authorize", {"idToken": {"idToken": OWN_EMAID, "type": "eMAID"}})
    assert service.owns("2.1", "Authorize", {"idToken": {"idToken": OWN_EMAID, "type": "eMAID"}, "certificate": "x"})
    assert not service.owns(
        "1.6", "Authorize", {"idToken": {"idToken": OWN_EMAID, "type": "eMAID"}, "certificate": "x"}
    )


@pytest.mark.asyncio
async def test_authorize_over_rest(client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]) -> None:
    body = {
        "stationId": "CS-0001",
        "payload": {"idToken": {"idToken": OWN_EMAID, "type": "eMAID"}, "certificate": _own_contract(fresh_pki)},
    }
    for version in ("2.0.1", "2.1"):
        answer = await client.post(f"/api/v1/ocpp/{version}/Authorize", json=body, headers=bearer(tokens[Role.CSMS]))
        assert answer.status_code == 200, answer.text
        assert answer.json()["response"] == {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    rfid = {"stationId": "CS-0001", "payload": {"idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}}}
    refused = await client.post("/api/v1/ocpp/2.0.1/Authorize", json=rfid, headers=bearer(tokens[Role.CSMS]))
    assert refused.status_code == 422 and refused.json()["ocppErrorCode"] == "NotSupported"


class Csms(ChargePoint201):
    @on("Authorize")
    def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> call_result.Authorize:
        return call_result.Authorize(id_token_info={"status": "Blocked"})  # the CSMS's own, for RFID cards


@pytest.mark.asyncio
async def test_authorize_end_to_end_with_the_ocpp_library(fresh_pki: PKI) -> None:
    chain = _own_contract(fresh_pki)
    handler_class = with_certificate_handlers(Csms, CertificateService(fresh_pki), sync_on_boot=False)

    async def on_connect(websocket: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await handler_class("CS-0001", websocket, response_timeout=10).start()

    server = await websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"])
    port = server.sockets[0].getsockname()[1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/CS-0001", subprotocols=["ocpp2.0.1"]) as ws:
            station = ChargePoint201("CS-0001", ws, response_timeout=10)
            receiving = asyncio.create_task(station.start())
            pnc = await station.call(
                call.Authorize(id_token={"id_token": OWN_EMAID, "type": "eMAID"}, certificate=chain)
            )
            rfid = await station.call(call.Authorize(id_token={"id_token": "04A2B3C4", "type": "ISO14443"}))
            receiving.cancel()
    finally:
        server.close()
        await server.wait_closed()
    assert pnc.certificate_status == "Accepted" and pnc.id_token_info["status"] == "Accepted"
    assert rfid.id_token_info["status"] == "Blocked"  # the CSMS's own handler kept it


async def _bridge_authorize(pki: PKI, tmp_path: Path, upstream_url: str | None) -> tuple[Any, Any]:
    """A PnC and an RFID Authorize from a profile-3 station through the standalone bridge (or its proxy)."""
    identity = f"CS-AZ-{'P' if upstream_url else 'S'}"
    pki.stations.add(identity=identity, serial=f"SN-{identity}", security_profile=3)
    credential = issue_station_credential(pki, tmp_path, identity, f"SN-{identity}", validity=dt.timedelta(days=365))
    root = tmp_path / "csms-root.pem"
    root.write_text(gateway_pem(pki.cas.roots("CSMSRootCertificate")))
    chain = _own_contract(pki)
    config = BridgeConfig(port=0, basic_port=None, upstream=upstream_url, upstream_ca=root, call_timeout=WAIT)
    async with (
        Bridge(pki, config) as bridge,
        websockets.connect(
            f"wss://127.0.0.1:{bridge.ports['mtls']}/{identity}",
            subprotocols=["ocpp2.0.1"],
            ssl=client_context(pki, credential),
            server_hostname="localhost",
        ) as connection,
    ):
        station = Station201(
            identity, connection, serial=f"SN-{identity}", root=pki.cas.roots("CSMSRootCertificate")[0]
        )
        task = asyncio.create_task(station.start())
        try:
            token = {"id_token": OWN_EMAID, "type": "eMAID"}
            pnc = await station.call(call.Authorize(id_token=token, certificate=chain), suppress=False)
            rfid = await station.call(call.Authorize(id_token={"id_token": "04A2B3C4", "type": "ISO14443"}))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return pnc, rfid


@pytest.mark.asyncio
async def test_the_standalone_bridge_answers_plug_and_charge_authorize(live_pki: PKI, tmp_path: Path) -> None:  # noqa: F811
    pnc, rfid = await _bridge_authorize(live_pki, tmp_path, None)
    assert pnc.certificate_status == "Accepted" and pnc.id_token_info["status"] == "Accepted"
    assert rfid is None  # no upstream: a CALLERROR NotSupported (suppressed by the library)


@pytest.mark.asyncio
@pytest.mark.parametrize("upstream", ["ws"], indirect=True)  # TLS to the upstream is the proxy tests' business
async def test_in_proxy_mode_the_upstream_csms_keeps_authorize(
    live_pki: PKI,  # noqa: F811
    upstream: tuple[str, list[Recording], list[UpstreamCsms]],  # noqa: F811
    tmp_path: Path,
) -> None:
    url, recordings, _ = upstream
    pnc, rfid = await _bridge_authorize(live_pki, tmp_path, url)
    assert pnc.id_token_info["status"] == "Blocked" and pnc.certificate_status is None  # the upstream's answer
    assert rfid.id_token_info["status"] == "Blocked"
    actions = [json.loads(frame)[2] for frame in recordings[0].received if json.loads(frame)[0] == 2]
    assert actions.count("Authorize") == 2
