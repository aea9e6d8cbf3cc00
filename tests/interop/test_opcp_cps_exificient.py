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
ISO2 = "urn:iso:15118:2:2013:MsgDef"


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


async def test_forwarded_contract_data_reaches_the_car_through_the_ccp(fresh_pki: PKI, exificient: Exificient) -> None:
    """createAndForward stores the signed data in the CCP; the CPO's request for the car answers it, with
    the car's SessionID put in, and the car installs it. Deleting it takes it out (no contract is left)."""
    vehicle = make_car(fresh_pki)
    emaid = "DEABCC000000032"
    mo = foreign_oem_chain(emaid)
    fresh_pki.trust.add(mo.root.public_bytes(Encoding.DER), use="MORootCertificate")
    peer = vehicle.certificate.public_key()
    assert isinstance(peer, ec.EllipticCurvePublicKey)
    wrapped = encrypt_contract_key(mo.vehicle_key, peer)
    body = {
        "emaid": emaid,
        "pcid": vehicle.pcid,
        "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
        "contractData": {
            "contractSignatureCertChain": {
                "contractSignatureCertChainCertificate": b64(mo.vehicle),
                "contractSignatureCertChainSubCertificates": [b64(mo.sub2), b64(mo.sub1)],
            },
            "contractSignatureEncryptedPrivateKey": base64.b64encode(wrapped.encrypted_private_key).decode(),
            "dHpublickey": base64.b64encode(wrapped.dh_public_key).decode(),
        },
    }
    session = bytes.fromhex("1122334455667788")
    root_ids = [(r.issuer.rfc4514_string(), r.serial_number) for r in fresh_pki.cas.roots("V2GRootCertificate")]
    request = car.build_installation_request(
        exificient, vehicle.certificate.public_bytes(Encoding.DER), vehicle.key, root_ids, session
    )
    install = {"certificateInstallationReq": base64.b64encode(request).decode(), "xsdMsgDefNamespace": ISO2}
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as http:
        mo_headers = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-own-pki", providers=["DEABC"]))
        cpo = opcp_headers(await client_token(http, fresh_pki, "cpo", "cpo"))
        oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=[vehicle.pcid[:3]]))
        forwarded = await http.put("/opcp/v1/cps/forward/signedContractData", json=body, headers=mo_headers)
        assert forwarded.status_code == 201, forwarded.text
        answer = await http.post("/opcp/v1/ccp/signedContractData", json=install, headers=cpo)
        listing = (await http.get(f"/opcp/v1/ccp/signedContractData/{vehicle.pcid}", headers=oem)).json()
        looked_up = await http.get(f"/opcp/v1/ccp/lookupContract/{emaid}", headers=mo_headers)
        deleted = await http.delete(f"/opcp/v1/ccp/signedContractData/{emaid}", headers=mo_headers)
        after = await http.post(
            "/opcp/v1/ccp/signedContractData", json=install, headers={**cpo, "alwaysReturnEXI": "false"}
        )
    assert answer.status_code == 200, answer.text
    (content,) = answer.json()["CCPResponse"]["emaidContent"]
    installed = car.open_response(
        exificient,
        base64.b64decode(content["messageDef"]["certificateInstallationRes"]),
        vehicle.key,
        session,
        sa_roots=fresh_pki.cas.roots("V2GRootCertificate"),
        contract_roots=[mo.root],
        expected_body="CertificateInstallationRes",
        now=fresh_pki.clock.now(),
    )
    assert installed.emaid == emaid == content["messageDef"]["emaid"]
    assert [entry["emaid"] for entry in listing["XMLContracts"]] == [emaid]
    assert looked_up.status_code == 200 and looked_up.json()["XMLContracts"][0]["pcid"] == vehicle.pcid
    assert deleted.status_code == 200 and after.status_code == 404
    events = [e.action for e in fresh_pki.audit.records(after=0, limit=1000)]
    assert events.count("opcp-ccp-put") == 1 and events.count("opcp-ccp-delete") == 1
