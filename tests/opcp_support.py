"""Helpers of the OPCP tests: clients with tokens, and a foreign OEM's chain made with plain ``cryptography``."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki import PKI
from tests.conftest import FRESH_EPOCH
from tests.foreign_roots import foreign_root

__all__ = ["OemChain", "b64", "client_token", "foreign_oem_chain", "opcp_headers"]

AUDIENCE = "http://127.0.0.1:8080/opcp"


def b64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


async def client_token(http: httpx.AsyncClient, pki: PKI, name: str, role: str, **scope: list[str]) -> str:
    """A new OPCP client of ``role`` and an access token for it, fetched from the token endpoint."""
    view, secret = pki.opcp.add_client(name=name, role=role, **scope)
    answer = await http.post(
        "/opcp/oauth/token",
        json={
            "client_id": view.client_id,
            "client_secret": secret,
            "audience": AUDIENCE,
            "grant_type": "client_credentials",
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def opcp_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True, slots=True)
class OemChain:
    root: x509.Certificate
    sub1: x509.Certificate
    sub2: x509.Certificate
    vehicle: x509.Certificate
    vehicle_key: ec.EllipticCurvePrivateKey

    def body(self) -> dict[str, str]:
        return {
            "subCA1Certificate": b64(self.sub1),
            "subCA2Certificate": b64(self.sub2),
            "vehicleCertificate": b64(self.vehicle),
        }


def _ca(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    depth: int,
) -> x509.Certificate:
    start = FRESH_EPOCH - dt.timedelta(days=10)
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "OEM")]
            )
        )
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=depth), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def foreign_oem_chain(pcid: str, *, valid_days: int = 365) -> OemChain:
    """An OEM that is not evpki: root -> sub-CA 1 -> sub-CA 2 -> the vehicle's provisioning certificate (CN = PCID)."""
    root = foreign_root("Foreign OEM Root CA")
    sub1_key, sub2_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    sub1 = _ca("Foreign OEM Sub-CA 1", sub1_key, root.certificate, root.key, 1)  # type: ignore[arg-type]
    sub2 = _ca("Foreign OEM Sub-CA 2", sub2_key, sub1, sub1_key, 0)
    start = FRESH_EPOCH - dt.timedelta(days=1)
    vehicle = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, pcid), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "OEM")]
            )
        )
        .issuer_name(sub2.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, True, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(sub2_key.public_key()), critical=False)
        .sign(sub2_key, hashes.SHA256())
    )
    return OemChain(root.certificate, sub1, sub2, vehicle, leaf_key)
