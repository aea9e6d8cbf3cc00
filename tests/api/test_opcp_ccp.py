"""The Contract Certificate Pool and the CPS signers over HTTP: a CPO gets the signed contract data for
the car's request, MOs look up and delete their contracts, OEMs list a vehicle's contracts and choose
the default one; every refusal is an OPCP error body and changes nothing.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from pki import PKI
from pki.iso15118 import ev
from tests.opcp_support import b64, client_token, foreign_oem_chain, opcp_headers
from tests.pki.iso15118.vehicles import make_car

pytestmark = pytest.mark.asyncio

ISO2 = "urn:iso:15118:2:2013:MsgDef"
SESSION = b"\x11\x22\x33\x44\x55\x66\x77\x88"


@pytest_asyncio.fixture
async def http(fresh_pki: PKI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


async def test_a_cpo_gets_signed_contract_data_and_the_oem_chooses_the_default(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    vehicle = make_car(fresh_pki)
    first, second = "DEABCC000000011", "DEABCC000000012"
    fresh_pki.contracts.add(emaid=first, pcid=vehicle.pcid, priority=1, concurrent=True)
    fresh_pki.contracts.add(emaid=second, pcid=vehicle.pcid, priority=2, concurrent=True)
    cpo = opcp_headers(await client_token(http, fresh_pki, "cpo", "cpo"))
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=[vehicle.pcid[:3]]))
    foreign_oem = opcp_headers(await client_token(http, fresh_pki, "oem2", "oem", wmis=["QQQ"]))
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEABC"]))
    foreign_mo = opcp_headers(await client_token(http, fresh_pki, "mo2", "mo-own-pki", providers=["FRXYZ"]))

    exi = ev.installation_request(vehicle.certificate, vehicle.key, fresh_pki.cas.roots("V2GRootCertificate"), SESSION)
    body = {"certificateInstallationReq": base64.b64encode(exi).decode(), "xsdMsgDefNamespace": ISO2}

    def open_answer(answer: httpx.Response) -> str:
        assert answer.status_code == 200, answer.text
        (content,) = answer.json()["CCPResponse"]["emaidContent"]
        opened = ev.open_response(
            base64.b64decode(content["messageDef"]["certificateInstallationRes"]),
            vehicle.key,
            v2g_roots=fresh_pki.cas.roots("V2GRootCertificate"),
            mo_roots=[fresh_pki.cas.chain("mo-sub2")[-1]],
            session_id=SESSION,
            now=fresh_pki.clock.now(),
        )
        assert opened.emaid == content["messageDef"]["emaid"]
        return opened.emaid

    assert (await http.post("/opcp/v1/ccp/signedContractData", json=body, headers=oem)).status_code == 403
    assert open_answer(await http.post("/opcp/v1/ccp/signedContractData", json=body, headers=cpo)) == first

    listing = (await http.get(f"/opcp/v1/ccp/signedContractData/{vehicle.pcid}", headers=oem)).json()
    assert [(c["emaid"], c["defaultContract"]) for c in listing["XMLContracts"]] == [(first, True), (second, False)]
    assert (
        "contractCertificate" in listing["XMLContracts"][0] and "contractCertificate" not in listing["XMLContracts"][1]
    )
    assert (await http.get(f"/opcp/v1/ccp/signedContractData/{vehicle.pcid}", headers=foreign_oem)).status_code == 403

    default_path = f"/opcp/v1/ccp/signedContractData/{vehicle.pcid}/{second}/default"
    assert (await http.post(default_path, headers=foreign_oem)).status_code == 403
    assert (await http.post(default_path, headers=oem)).status_code == 200
    assert open_answer(await http.post("/opcp/v1/ccp/signedContractData", json=body, headers=cpo)) == second
    missing = await http.post(f"/opcp/v1/ccp/signedContractData/{vehicle.pcid}/DEABCC000000099/default", headers=oem)
    assert missing.status_code == 404 and missing.json()["traceId"]

    found = (await http.get(f"/opcp/v1/ccp/lookupContract/{second}", headers=mo)).json()["XMLContracts"]
    assert found[0]["pcid"] == vehicle.pcid and found[0]["defaultContract"] is True
    assert base64.b64decode(found[0]["contractCertificate"])
    assert (await http.get(f"/opcp/v1/ccp/lookupContract/{second}", headers=foreign_mo)).status_code == 403
    assert (await http.get("/opcp/v1/ccp/lookupContract/DEABCC000000099", headers=mo)).status_code == 404

    assert (await http.delete(f"/opcp/v1/ccp/signedContractData/{second}", headers=foreign_mo)).status_code == 403
    skip = await http.delete(f"/opcp/v1/ccp/signedContractData/{second}", headers={**mo, "X-Skip-Revocation": "true"})
    assert skip.status_code == 400
    assert (await http.delete(f"/opcp/v1/ccp/signedContractData/{second}", headers=mo)).status_code == 200
    assert fresh_pki.contracts.get(second).status == "revoked"
    assert (await http.delete(f"/opcp/v1/ccp/signedContractData/{second}", headers=mo)).status_code == 404
    assert open_answer(await http.post("/opcp/v1/ccp/signedContractData", json=body, headers=cpo)) == first

    actions = [e.action for e in fresh_pki.audit.records(after=0, limit=1000)]
    assert actions.count("contract-priority") == 1 and actions.count("contract-revoke") == 1


async def test_refusals_of_the_contract_pool(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    vehicle = make_car(fresh_pki)
    cpo = opcp_headers(await client_token(http, fresh_pki, "cpo", "cpo"))
    exi = ev.installation_request(vehicle.certificate, vehicle.key, fresh_pki.cas.roots("V2GRootCertificate"), SESSION)
    body = {"certificateInstallationReq": base64.b64encode(exi).decode(), "xsdMsgDefNamespace": ISO2}
    # no contract for the PCID: the car gets an EXI refusal by default, a 404 when the CPO asks for no EXI
    refused = await http.post("/opcp/v1/ccp/signedContractData", json=body, headers=cpo)
    assert refused.status_code == 200
    content = refused.json()["CCPResponse"]["emaidContent"][0]["messageDef"]
    assert base64.b64decode(content["certificateInstallationRes"])
    no_exi = await http.post("/opcp/v1/ccp/signedContractData", json=body, headers={**cpo, "alwaysReturnEXI": "false"})
    assert no_exi.status_code == 404 and no_exi.json()["errorMessages"]
    garbage = await http.post(
        "/opcp/v1/ccp/signedContractData",
        json={"certificateInstallationReq": "AAAA", "xsdMsgDefNamespace": ISO2},
        headers=cpo,
    )
    assert garbage.status_code == 400 and garbage.json()["errorMessages"]
    namespace = await http.post(
        "/opcp/v1/ccp/signedContractData", json={**body, "xsdMsgDefNamespace": "urn:nope"}, headers=cpo
    )
    assert namespace.status_code == 400
    assert (await http.post("/opcp/v1/ccp/signedContractData", json=body)).status_code == 401


async def test_every_participant_reads_the_cps_signers(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-own-pki", providers=["DEABC"]))
    admin = opcp_headers(await client_token(http, fresh_pki, "admin", "admin"))
    signers = (await http.get("/opcp/cps/signer", headers=mo)).json()["cpsCertificates"]
    assert signers, "the default hierarchy has a CPS leaf"
    leaf = x509.load_der_x509_certificate(base64.b64decode(signers[0]["cpsCertificate"]))
    sub = x509.load_der_x509_certificate(base64.b64decode(signers[0]["cpsSubCa2Certificate"]))
    leaf.verify_directly_issued_by(sub)
    assert (
        signers[0]["cpsRootDistinguishedName"] == fresh_pki.cas.roots("V2GRootCertificate")[0].subject.rfc4514_string()
    )
    assert (await http.get("/opcp/cps/signer", headers=admin)).status_code == 403


# (client name, role, scope): OEMs and MOs once with the scope of the data and once without
CALLERS: tuple[tuple[str, str, dict[str, list[str]]], ...] = (
    ("oem-own", "oem", {"wmis": ["WMI"]}),
    ("oem-foreign", "oem", {"wmis": ["QQQ"]}),
    ("cpo", "cpo", {}),
    ("mo-own-pki", "mo-own-pki", {"providers": ["DEABC"]}),
    ("mo-own-pki-foreign", "mo-own-pki", {"providers": ["FRXYZ"]}),
    ("mo-v2g-pki", "mo-v2g-pki", {"providers": ["DEABC"]}),
    ("mo-v2g-pki-foreign", "mo-v2g-pki", {"providers": ["FRXYZ"]}),
    ("cps", "cps", {}),
    ("admin", "admin", {}),
)


async def test_every_ccp_and_cps_operation_with_every_role_and_scope(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    """Allowed callers get past the access table (their answer is not 401/403); all others get 403."""
    vehicle = make_car(fresh_pki, "WMICCPACCESS00001")
    emaid = "DEABCC000000051"
    fresh_pki.contracts.add(emaid=emaid, pcid=vehicle.pcid)
    exi = ev.installation_request(vehicle.certificate, vehicle.key, fresh_pki.cas.roots("V2GRootCertificate"), SESSION)
    install = {"certificateInstallationReq": base64.b64encode(exi).decode(), "xsdMsgDefNamespace": ISO2}
    mo_chain = foreign_oem_chain(emaid)  # the MO's own PKI, untrusted here: the allowed MO gets 400
    sign = {
        "xsdMsgDefNamespace": ISO2,
        "contractData": {
            "contractCertificate": b64(mo_chain.vehicle),
            "contractSubCa1Certificate": b64(mo_chain.sub1),
            "contractSignatureEncryptedPrivateKey": "AAAA",
            "dHpublickey": "AAAA",
        },
    }
    mos = {"mo-own-pki", "mo-v2g-pki"}
    participants = {name for name, _, _ in CALLERS} - {"admin"}
    operations: list[tuple[str, str, Any, set[str]]] = [
        ("POST", "/v1/ccp/signedContractData", install, {"cpo"}),
        ("GET", f"/v1/ccp/signedContractData/{vehicle.pcid}", None, {"oem-own"}),
        ("POST", f"/v1/ccp/signedContractData/{vehicle.pcid}/{emaid}/default", None, {"oem-own"}),
        ("GET", f"/v1/ccp/lookupContract/{emaid}", None, mos),
        ("GET", "/cps/signer", None, participants),
        ("PUT", "/v1/cps/contractData/signed", sign, {"mo-own-pki"}),
        ("DELETE", f"/v1/ccp/signedContractData/{emaid}", None, mos),
    ]  # fmt: skip
    for name, role, scope in CALLERS:
        headers = opcp_headers(await client_token(http, fresh_pki, name, role, **scope))
        for method, path, body, allowed in operations:
            answer = await http.request(method, "/opcp" + path, json=body, headers=headers)
            if name in allowed:
                assert answer.status_code not in (401, 403), (method, path, name, answer.text)
            else:
                assert answer.status_code == 403, (method, path, name, answer.text)
                assert answer.json()["errorMessages"]
    assert fresh_pki.contracts.get(emaid).status == "revoked"  # the first allowed MO deleted it
