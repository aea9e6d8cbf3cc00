"""The CCP's signed contract data opened by the independent car (EXIficient for every EXI byte, plain
``cryptography`` for the signatures, the key agreement and the chains; tests/interop/car.py shares
no code with pki/): a CPO posts the car's CertificateInstallationReq to ``/opcp/v1/ccp/signedContractData``
and the car installs the vehicle's default contract from the answer.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from pki import PKI
from tests.interop import car
from tests.interop.exificient import Exificient
from tests.opcp_support import client_token, opcp_headers
from tests.pki.iso15118.vehicles import make_car

pytestmark = [pytest.mark.interop, pytest.mark.asyncio]

ISO2 = "urn:iso:15118:2:2013:MsgDef"
SESSION = bytes.fromhex("0A0B0C0D0E0F1011")


async def test_the_car_opens_the_signed_contract_data_of_the_pool(fresh_pki: PKI, exificient: Exificient) -> None:
    vehicle = make_car(fresh_pki)
    fresh_pki.contracts.add(emaid="DEABCC000000021", pcid=vehicle.pcid, priority=5, concurrent=True)
    fresh_pki.contracts.add(emaid="DEABCC000000022", pcid=vehicle.pcid, priority=9, concurrent=True)
    root_ids = [(r.issuer.rfc4514_string(), r.serial_number) for r in fresh_pki.cas.roots("V2GRootCertificate")]
    request = car.build_installation_request(
        exificient, vehicle.certificate.public_bytes(serialization.Encoding.DER), vehicle.key, root_ids, SESSION
    )
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as http:
        cpo = opcp_headers(await client_token(http, fresh_pki, "cpo", "cpo"))
        oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=[vehicle.pcid[:3]]))
        chosen = await http.post(f"/opcp/v1/ccp/signedContractData/{vehicle.pcid}/DEABCC000000022/default", headers=oem)
        assert chosen.status_code == 200, chosen.text
        answer = await http.post(
            "/opcp/v1/ccp/signedContractData",
            json={"certificateInstallationReq": base64.b64encode(request).decode(), "xsdMsgDefNamespace": ISO2},
            headers=cpo,
        )
    assert answer.status_code == 200, answer.text
    (content,) = answer.json()["CCPResponse"]["emaidContent"]
    installed = car.open_response(
        exificient,
        base64.b64decode(content["messageDef"]["certificateInstallationRes"]),
        vehicle.key,
        SESSION,
        sa_roots=fresh_pki.cas.roots("V2GRootCertificate"),
        contract_roots=[fresh_pki.cas.chain("mo-sub2")[-1]],
        expected_body="CertificateInstallationRes",
        now=fresh_pki.clock.now(),
    )
    assert installed.emaid == content["messageDef"]["emaid"] == "DEABCC000000022"
