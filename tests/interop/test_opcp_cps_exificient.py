"""The CPS signs contract data an MO with its own PKI supplies, and the independent car (EXIficient,
plain ``cryptography``; tests/interop/car.py shares no code with pki/) installs it: the MO's chain
under a foreign MO root, the contract key it encrypted for the vehicle, our CPS signature.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from api.app import create_app
from pki import PKI
from pki.iso15118.keywrap import encrypt_contract_key
from tests.interop import car
from tests.interop.exificient import Exificient
from tests.opcp_support import b64, client_token, foreign_oem_chain, opcp_headers
from tests.pki.iso15118.vehicles import make_car

pytestmark = [pytest.mark.interop, pytest.mark.asyncio]

EMAID = "DEABCC000000031"


async def test_the_car_installs_contract_data_the_mo_made_and_the_cps_signed(
    fresh_pki: PKI, exificient: Exificient
) -> None:
    vehicle = make_car(fresh_pki)
    mo = foreign_oem_chain(EMAID)  # a foreign PKI: root -> sub-CA 1 -> sub-CA 2 -> contract certificate (CN = eMAID)
    fresh_pki.trust.add(mo.root.public_bytes(Encoding.DER), use="MORootCertificate")
    peer = vehicle.certificate.public_key()
    assert isinstance(peer, ec.EllipticCurvePublicKey)
    wrapped = encrypt_contract_key(mo.vehicle_key, peer)  # what the MO's own PKI does for the vehicle
    body = {
        "emaid": EMAID,
        "pcid": vehicle.pcid,
        "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
        "contractData": {
            "contractSignatureCertChain": {
                "contractSignatureCertChainCertificate": b64(mo.vehicle),
                "contractSignatureCertChainSubCertificates": [b64(mo.sub2), b64(mo.sub1)],
            },
            "contractSignatureEncryptedPrivateKey": base64.b64encode(wrapped.encrypted_private_key).decode(),
            "dHpublickey": base64.b64encode(wrapped.dh_public_key).decode(),
            "emaid": EMAID,
        },
    }
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as http:
        headers = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-own-pki", providers=["DEABC"]))
        answer = await http.put("/opcp/v1/cps/signedContractData", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    signed = answer.json()
    assert signed["emaid"] == EMAID and signed["pcid"] == vehicle.pcid
    installed = car.open_response(
        exificient,
        base64.b64decode(signed["signedData"]),
        vehicle.key,
        b"\x00" * 8,
        sa_roots=fresh_pki.cas.roots("V2GRootCertificate"),
        contract_roots=[mo.root],
        expected_body="CertificateInstallationRes",
        now=fresh_pki.clock.now(),
    )
    assert installed.emaid == EMAID
    assert installed.contract_private_key.private_numbers() == mo.vehicle_key.private_numbers()
