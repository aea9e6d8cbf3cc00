"""The OPCP pools over HTTP: the Root Certificate Pool (backed by the trust store and our own roots)
and the Provisioning Certificate Pool, which contract provisioning then uses for foreign OEMs' sub-CAs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from pki import PKI
from pki.iso15118 import ResponseCode, ev
from tests.foreign_roots import foreign_root, sha256_of
from tests.opcp_support import OemChain, b64, client_token, foreign_oem_chain, opcp_headers

pytestmark = pytest.mark.asyncio

PCID = "WMIPOOL0000000001"
SESSION = b"\x01\x02\x03\x04\x05\x06\x07\x08"


@pytest_asyncio.fixture
async def http(fresh_pki: PKI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


async def test_the_root_pool_lists_our_roots_and_the_trusted_ones(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    cpo = opcp_headers(await client_token(http, fresh_pki, "cpo", "cpo"))
    admin = opcp_headers(await client_token(http, fresh_pki, "admin", "admin"))
    listing = (await http.get("/opcp/v1/root/rootCerts", headers=cpo)).json()["RootCertificateCollection"]
    own_v2g = fresh_pki.cas.chain("cpo-sub1")[-1]
    entry = next(e for e in listing["rootCertificates"] if e["fingerprint"] == sha256_of(own_v2g))
    assert entry["rootType"] == "V2G" and base64.b64decode(entry["caCertificate"]) == _der(own_v2g)
    assert entry["rootIssuerSerialNumber"] == f"{own_v2g.serial_number:x}" and entry["validTo"].endswith("Z")
    assert {e["rootType"] for e in listing["rootCertificates"]} == {"V2G", "MO", "OEM"}
    mo_only = (await http.get("/opcp/v1/root/rootCerts?rootType=mo", headers=cpo)).json()
    assert {e["rootType"] for e in mo_only["RootCertificateCollection"]["rootCertificates"]} == {"MO"}
    assert (await http.get("/opcp/v1/root/rootCerts?rootType=pe", headers=cpo)).status_code == 400

    root = foreign_root("Ecosystem V2G Root CA")
    saved = await http.put(
        "/opcp/v1/root/rootCerts", json={"caCertificate": b64(root.certificate), "rootType": "V2G"}, headers=admin
    )
    assert saved.status_code == 200, saved.text
    root_id = saved.json()["RootResponse"]["rootCertificateId"]
    again = await http.put(
        "/opcp/v1/root/rootCerts", json={"caCertificate": b64(root.certificate), "rootType": "V2G"}, headers=admin
    )
    assert again.json()["RootResponse"]["rootCertificateId"] == root_id  # PUT twice: one root
    assert [v.sha256 for v in fresh_pki.trust.list(use="V2GRootCertificate")] == [sha256_of(root.certificate)]
    one = (await http.get(f"/opcp/v1/root/rootCerts/{root_id}", headers=cpo)).json()["RootResponse"]
    assert one["distinguishedName"] == root.certificate.subject.rfc4514_string()
    assert one["signatureAlgorithm"] == "secp256r1" and one["xsdMsgDefNamespace"] == "urn:iso:15118:2:2013:MsgDef"

    # the CTL is what `evpki trust import` reads: a second evpki takes the pool over from it
    ctl = (await http.get("/opcp/v1/root/ctl", headers=cpo)).json()
    assert {e["rootCertificateId"] for e in ctl["CTL"]["rootCertificates"]} >= {root_id, entry["rootCertificateId"]}

    own_id = entry["rootCertificateId"]
    refused = await http.delete(f"/opcp/v1/root/rootCerts/{own_id}", headers=admin)
    assert refused.status_code == 400 and "own roots" in refused.json()["errorMessages"][0]
    assert (await http.delete(f"/opcp/v1/root/rootCerts/{root_id}", headers=admin)).status_code == 200
    gone = await http.get(f"/opcp/v1/root/rootCerts/{root_id}", headers=cpo)
    assert gone.status_code == 404 and gone.json()["errorMessages"] == [
        "Root certificate with the given ID is not found"
    ]
    assert fresh_pki.trust.list(use="V2GRootCertificate") == []
    bad = await http.put(
        "/opcp/v1/root/rootCerts", json={"caCertificate": b64(root.certificate), "rootType": "PE"}, headers=admin
    )
    assert bad.status_code == 400
    not_ca = await http.put(
        "/opcp/v1/root/rootCerts",
        json={"caCertificate": b64(foreign_root(ca=False).certificate), "rootType": "MO"},
        headers=admin,
    )
    assert not_ca.status_code == 400 and "trust.ca" in not_ca.json()["errorMessages"][0]


async def test_the_ctl_imports_into_another_trust_store(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    admin = opcp_headers(await client_token(http, fresh_pki, "admin", "admin"))
    root = foreign_root("Ecosystem MO Root CA")
    await http.put(
        "/opcp/v1/root/rootCerts", json={"caCertificate": b64(root.certificate), "rootType": "MO"}, headers=admin
    )
    ctl = (await http.get("/opcp/v1/root/ctl", headers=admin)).json()
    fresh_pki.trust.remove(sha256_of(root.certificate), use="MORootCertificate")
    report = fresh_pki.trust.import_data(json.dumps(ctl).encode())
    assert sha256_of(root.certificate) in {v.sha256 for v in fresh_pki.trust.list(use="MORootCertificate")}
    assert not report.refused or all("already" in r.reason or "expired" in r.reason for r in report.refused)


async def _publish(http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, str]) -> httpx.Response:
    return await http.put("/opcp/v1/oem/provCerts", json=body, headers=headers)


async def test_an_oem_publishes_only_checked_chains_of_its_own_vehicles(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-own-pki", providers=["DEABC"]))
    chain = foreign_oem_chain(PCID)
    untrusted = await _publish(http, oem, chain.body())
    assert untrusted.status_code == 400 and "trusted OEM root" in untrusted.json()["errorMessages"][0]
    fresh_pki.trust.add(_der(chain.root), use="OEMRootCertificate")
    garbage = await _publish(http, oem, {**chain.body(), "vehicleCertificate": "not base64"})
    assert garbage.json()["errorMessages"] == ["Invalid certificate format on vehicleCertificate"]
    foreign = foreign_oem_chain("QQQPOOL0000000001")
    fresh_pki.trust.add(_der(foreign.root), use="OEMRootCertificate")
    assert (await _publish(http, oem, foreign.body())).status_code == 403  # not its WMI
    wrong_sub = await _publish(http, oem, {**chain.body(), "subCA2Certificate": b64(foreign.sub2)})
    assert wrong_sub.status_code == 400
    published = await _publish(http, oem, chain.body())
    assert published.status_code == 200, published.text
    data = published.json()
    assert data["rootIssuerSerialNumber"] == f"{chain.root.serial_number:x}"
    assert data["rootIssuerDistinguishedName"] == chain.root.subject.rfc4514_string()
    got = (await http.get(f"/opcp/v1/oem/provCerts/{PCID}", headers=mo)).json()["OEMMessage"]
    assert base64.b64decode(got["vehicleCertificate"]) == _der(chain.vehicle)
    assert base64.b64decode(got["subCA1Certificate"]) == _der(chain.sub1)
    assert (await http.get(f"/opcp/v1/oem/provCerts/lookupVehicle/{PCID}", headers=mo)).status_code == 200
    bad_pcid = await http.get("/opcp/v1/oem/provCerts/short", headers=mo)
    assert bad_pcid.status_code == 400 and "must match" in bad_pcid.json()["errorMessages"][0]
    assert (await http.delete(f"/opcp/v1/oem/provCerts/{PCID}", headers=mo)).status_code == 403
    assert (await http.delete(f"/opcp/v1/oem/provCerts/{PCID}", headers=oem)).status_code == 200
    missing = await http.get(f"/opcp/v1/oem/provCerts/lookupVehicle/{PCID}", headers=mo)
    assert missing.status_code == 404
    assert missing.json()["errorMessages"] == ["The OEM provisioning certificate with given PCID is not found."]
    actions = [e.action for e in fresh_pki.audit.records(after=0, limit=1000)]
    assert actions.count("opcp-pcp-put") == 1 and actions.count("opcp-pcp-delete") == 1


async def test_an_expired_chain_is_refused(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    chain = foreign_oem_chain(PCID, valid_days=2)
    fresh_pki.trust.add(_der(chain.root), use="OEMRootCertificate")
    fresh_pki.clock.advance(dt.timedelta(days=3))  # type: ignore[attr-defined]
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
    expired = await _publish(http, oem, chain.body())
    assert expired.status_code == 400 and "expired" in expired.json()["errorMessages"][0]


def _install(pki: PKI, chain: OemChain) -> object:
    exi = ev.installation_request(chain.vehicle, chain.vehicle_key, pki.cas.roots("V2GRootCertificate"), SESSION)
    return pki.contracts.provision(
        iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
        action="Install",
        exi_request=base64.b64encode(exi).decode(),
    )


async def test_contract_provisioning_finds_a_foreign_vehicles_sub_cas_in_the_pool(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    """The car sends only its provisioning certificate; the OEM's root is in the trust store, its sub-CAs nowhere
    but in the PCP -- no PEM file of intermediates configured by hand."""
    chain = foreign_oem_chain(PCID)
    fresh_pki.trust.add(_der(chain.root), use="OEMRootCertificate")
    fresh_pki.contracts.add(emaid="DEABCC000000001", pcid=PCID)
    before = _install(fresh_pki, chain)
    assert before.response_code is ResponseCode.FAILED_CERT_CHAIN_ERROR  # type: ignore[attr-defined]
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
    assert (await _publish(http, oem, chain.body())).status_code == 200
    after = _install(fresh_pki, chain)
    assert after.status == "Accepted" and after.response_code is ResponseCode.OK, after.reason  # type: ignore[attr-defined]
    opened = ev.open_response(
        base64.b64decode(after.exi_response),  # type: ignore[attr-defined]
        chain.vehicle_key,
        v2g_roots=fresh_pki.cas.roots("V2GRootCertificate"),
        mo_roots=[fresh_pki.cas.chain("mo-sub2")[-1]],
        session_id=SESSION,
        now=fresh_pki.clock.now(),
    )
    assert opened.emaid == "DEABCC000000001"
