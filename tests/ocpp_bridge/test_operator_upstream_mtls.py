"""Upstream mutual TLS: in ``--upstream`` mode the bridge presents its client certificate to the upstream
CSMS, verifies the upstream's server certificate, and names the relayed station by identity (URL) and by
the SHA-256 of the certificate it verified (``X-EVPKI-Station-Certificate-SHA256``). The upstream is a
bare WebSocket server whose TLS layer (OpenSSL through ``ssl``) requires a client certificate of a CA made
here with ``cryptography``, not by evpki.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.server import ServerConnection, serve

from ocpp_bridge.gateway import STATION_CERTIFICATE_HEADER, Bridge, BridgeConfig
from ocpp_bridge.tls import server_context
from pki import PKI
from tests.ocpp_bridge.gateway_support import WAIT, pem
from tests.ocpp_bridge.operator_stations import connected, register

pytestmark = pytest.mark.asyncio


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _client_credential(directory: Path) -> tuple[Path, Path, Path, x509.Certificate]:
    """A CA of the upstream operator's and the bridge's client certificate from it (clientAuth)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Upstream client CA"))
        .issuer_name(_name("Upstream client CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("evpki-bridge"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "client-ca.pem", directory / "bridge.pem", directory / "bridge.key"
    ca_file.write_text(pem([ca]))
    cert_file.write_text(pem([leaf]))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file, leaf


async def test_the_bridge_authenticates_to_the_upstream_and_names_the_station(fresh_pki: PKI, tmp_path: Path) -> None:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    ca_file, cert_file, key_file, bridge_certificate = _client_credential(tmp_path)
    upstream_certificates = fresh_pki.stations.server_certificates(server_name="localhost", directory=tmp_path / "up")
    upstream_certificates.refresh()
    context = server_context(upstream_certificates, client_cas=None)
    context.verify_mode = ssl.CERT_REQUIRED  # the upstream admits only the bridges it knows
    context.load_verify_locations(cafile=str(ca_file))
    seen: list[dict[str, Any]] = []

    async def handler(connection: ServerConnection) -> None:
        ssl_object = connection.transport.get_extra_info("ssl_object")
        peer = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
        seen.append({"path": connection.request.path, "headers": connection.request.headers, "peer": peer})
        async for raw in connection:
            message = json.loads(raw)
            if message[0] == 2 and message[2] == "BootNotification":
                now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                await connection.send(
                    json.dumps([3, message[1], {"currentTime": now, "interval": 77, "status": "Accepted"}])
                )

    csms_root = tmp_path / "csms-root.pem"
    csms_root.write_text(pem(fresh_pki.cas.roots("CSMSRootCertificate")))
    identity, serial = "CS-UPMTLS", "SN-UPMTLS"
    credential = register(fresh_pki, tmp_path, identity, serial, "2.0.1")
    fresh_pki.station_calls.set_root_sync(identity, mode="off")
    async with serve(handler, "127.0.0.1", 0, ssl=context, subprotocols=["ocpp2.0.1"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        config = BridgeConfig(
            port=0,
            basic_port=None,
            upstream=f"wss://localhost:{port}/csms",
            upstream_ca=csms_root,
            upstream_cert=cert_file,
            upstream_key=key_file,
            call_timeout=WAIT,
            certificate_dir=tmp_path / "bridge",
        )
        async with (
            Bridge(fresh_pki, config) as bridge,
            connected(bridge, "2.0.1", identity, serial, credential, boot=False) as station,
        ):
            assert (await station.boot()).interval == 77  # the upstream's answer, over mutual TLS
    (upstream,) = seen
    assert upstream["path"] == f"/csms/{identity}"
    assert upstream["peer"] == bridge_certificate
    expected = credential.certificate.fingerprint(hashes.SHA256()).hex()
    assert upstream["headers"][STATION_CERTIFICATE_HEADER] == expected


async def test_a_client_certificate_that_does_not_load_stops_the_bridge_at_start(
    fresh_pki: PKI, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    config = BridgeConfig(
        port=0, basic_port=None, upstream="wss://localhost:1/csms", upstream_cert=broken, upstream_key=broken
    )
    with pytest.raises(ssl.SSLError):
        async with Bridge(fresh_pki, config):
            pass
