"""The CPS over HTTP for MOs with their own PKI: what it refuses to sign, and who may ask.

The signed result itself is opened by the independent car in
``tests/interop/test_opcp_cps_exificient.py``; here the refusals, each an OPCP error body.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from api.app import create_app
from pki import PKI
from pki.iso15118.keywrap import encrypt_contract_key
from tests.opcp_support import OemChain, b64, client_token, foreign_oem_chain, opcp_headers
from tests.pki.iso15118.vehicles import make_car

pytestmark = pytest.mark.asyncio

EMAID = "DEABCC000000041"


@pytest_asyncio.fixture
async def http(fresh_pki: PKI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client


def _flat(mo: OemChain, dh: bytes, key: bytes) -> dict[str, Any]:
    return {
        "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
        "contractData": {
            "contractCertificate": b64(mo.vehicle),
            "contractSubCa2Certificate": b64(mo.sub2),
            "contractSubCa1Certificate": b64(mo.sub1),
            "contractSignatureEncryptedPrivateKey": base64.b64encode(key).decode(),
            "dHpublickey": base64.b64encode(dh).decode(),
        },
    }


async def test_the_cps_signs_only_checked_contract_data_of_the_mos_own_emaids(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    vehicle = make_car(fresh_pki)
    mo = foreign_oem_chain(EMAID)
    peer = vehicle.certificate.public_key()
    assert isinstance(peer, ec.EllipticCurvePublicKey)
    wrapped = encrypt_contract_key(mo.vehicle_key, peer)
    body = _flat(mo, wrapped.dh_public_key, wrapped.encrypted_private_key)
    own = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-own-pki", providers=["DEABC"]))
    foreign = opcp_headers(await client_token(http, fresh_pki, "mo2", "mo-own-pki", providers=["FRXYZ"]))
    v2g_mo = opcp_headers(await client_token(http, fresh_pki, "mo3", "mo-v2g-pki", providers=["DEABC"]))
    cpo = opcp_headers(await client_token(http, fresh_pki, "cpo", "cpo"))
    path = "/opcp/v1/cps/contractData/signed"

    untrusted = await http.put(path, json=body, headers=own)
    assert untrusted.status_code == 400 and "trusted MO root" in untrusted.json()["errorMessages"][0]
    fresh_pki.trust.add(mo.root.public_bytes(Encoding.DER), use="MORootCertificate")
    for headers in (foreign, v2g_mo, cpo):
        assert (await http.put(path, json=body, headers=headers)).status_code == 403
    assert (await http.put(path, json=body)).status_code == 401
    short_key = await http.put(path, json=_flat(mo, wrapped.dh_public_key, b"\x00" * 16), headers=own)
    assert short_key.status_code == 400 and "48 bytes" in short_key.json()["errorMessages"][0]
    not_a_point = await http.put(
        path, json=_flat(mo, b"\x04" + b"\x01" * 64, wrapped.encrypted_private_key), headers=own
    )
    assert not_a_point.status_code == 400
    other = foreign_oem_chain("DEABCC000000042")
    wrong_cn = await http.put(
        "/opcp/v1/cps/signedContractData",
        json={
            "emaid": EMAID,
            "contractData": {
                "contractSignatureCertChain": {
                    "contractSignatureCertChainCertificate": b64(other.vehicle),
                    "contractSignatureCertChainSubCertificates": [b64(other.sub2), b64(other.sub1)],
                },
                "contractSignatureEncryptedPrivateKey": body["contractData"]["contractSignatureEncryptedPrivateKey"],
                "dHpublickey": body["contractData"]["dHpublickey"],
            },
        },
        headers=own,
    )
    assert wrong_cn.status_code == 400 and "CN" in wrong_cn.json()["errorMessages"][0]

    signed = await http.put(path, json=body, headers=own)
    assert signed.status_code == 201, signed.text
    data = signed.json()
    assert data["emaid"] == EMAID and base64.b64decode(data["signedData"])
    signers = (await http.get("/opcp/cps/signer", headers=own)).json()["cpsCertificates"]
    assert data["cpsV2GRootCertificateFingerprint"] in {s["cpsV2GRootCertificateFingerprint"] for s in signers}
    again = await http.put(
        path, json={**body, "cpsV2GRootCertificateFingerprint": data["cpsV2GRootCertificateFingerprint"]}, headers=own
    )
    assert again.status_code == 201
    unknown_root = await http.put(
        path, json={**body, "cpsV2GRootCertificateFingerprint": "00000000-0000-0000-0000-000000000000"}, headers=own
    )
    assert unknown_root.status_code == 400
    actions = [e.action for e in fresh_pki.audit.records(after=0, limit=1000)]
    assert actions.count("opcp-cps-sign") == 2
