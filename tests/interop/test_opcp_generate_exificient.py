"""Contract data our MO CA generated for an MO without its own PKI, checked by tools that share no code
with pki/: the independent car (EXIficient decodes it, plain ``cryptography`` verifies the CPS
signature and decrypts the contract key with the vehicle's provisioning key) and ``openssl verify``
for the contract chain up to our MO root.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from api.app import create_app
from pki import PKI
from tests.conftest import requires_openssl, run_openssl
from tests.interop import car
from tests.interop.exificient import Exificient
from tests.opcp_support import client_token, foreign_oem_chain, opcp_headers

pytestmark = [pytest.mark.interop, pytest.mark.asyncio]

PCID, EMAID = "WMIGEN00000000011", "DEXYZC000000011"
ISO2 = "urn:iso:15118:2:2013:MsgDef"


@requires_openssl
async def test_the_car_installs_contract_data_our_mo_ca_generated(
    fresh_pki: PKI, exificient: Exificient, tmp_path: Path
) -> None:
    vehicle = foreign_oem_chain(PCID)  # a foreign OEM's vehicle in the PCP; its key stays with the car
    fresh_pki.trust.add(vehicle.root.public_bytes(Encoding.DER), use="OEMRootCertificate")
    now = fresh_pki.clock.now()
    session = bytes.fromhex("C0FFEE0011223344")
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as http:
        oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
        mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEXYZ"]))
        published = await http.put("/opcp/v1/oem/provCerts", json=vehicle.body(), headers=oem)
        assert published.status_code == 200, published.text
        made = await http.put(
            "/opcp/v1/cps/generate/signedContractData",
            json={
                "contractBegins": (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "contractEnds": (now + dt.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "pcid": PCID,
                "emaid": EMAID,
                "xsdMsgDefNamespace": ISO2,
            },
            headers=mo,
        )
        assert made.status_code == 201, made.text
        provided = await http.get(
            f"/opcp/v1/ccp/provideSignedContractData/{EMAID}/{PCID}", params={"sessionID": session.hex()}, headers=oem
        )
    assert provided.status_code == 200, provided.text
    mo_root = fresh_pki.cas.chain("mo-sub2")[-1]
    installed = car.open_response(
        exificient,
        base64.b64decode(provided.json()["certificateInstallationRes"]),
        vehicle.vehicle_key,
        session,
        sa_roots=fresh_pki.cas.roots("V2GRootCertificate"),
        contract_roots=[mo_root],
        expected_body="CertificateInstallationRes",
        now=now,
    )
    assert installed.emaid == EMAID
    assert installed.contract_private_key.public_key() == installed.contract_certificate.public_key()
    assert installed.contract_certificate.not_valid_after_utc <= now + dt.timedelta(days=90)

    leaf, untrusted, root = tmp_path / "contract.pem", tmp_path / "mo-subs.pem", tmp_path / "mo-root.pem"
    leaf.write_bytes(installed.contract_certificate.public_bytes(Encoding.PEM))
    untrusted.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in installed.contract_sub_certificates))
    root.write_bytes(mo_root.public_bytes(Encoding.PEM))
    result = run_openssl(
        "verify",
        "-x509_strict",
        "-attime",
        str(int(now.timestamp())),
        "-CAfile",
        str(root),
        "-untrusted",
        str(untrusted),
        str(leaf),
    )
    assert result.returncode == 0, result.stdout + result.stderr
