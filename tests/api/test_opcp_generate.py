"""``generateSignedContractData`` and ``provideSignedContractData`` over HTTP: what the MO without its own
PKI gets made, what it is refused, and what the OEM fetches.

The generated data itself is opened by the independent car (EXIficient, plain ``cryptography``,
``openssl verify``) in ``tests/interop/test_opcp_generate_exificient.py``; here the pool's side.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from api.app import create_app
from pki import PKI
from pki.iso15118.exi import decode_message
from pki.iso15118.messages import CertificateInstallationRes
from pki.iso15118.signing import verify_elements
from pki.opcp import generate
from pki.store.repository import CertificateFilter
from tests.conftest import FRESH_EPOCH
from tests.opcp_support import OemChain, client_token, foreign_oem_chain, opcp_headers

pytestmark = pytest.mark.asyncio

ISO2 = "urn:iso:15118:2:2013:MsgDef"
PCID, OTHER_PCID = "WMIGEN00000000001", "WMIGEN00000000002"
EMAID = "DEXYZC000000001"


@pytest_asyncio.fixture
async def http(fresh_pki: PKI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(pki: PKI, pcid: str = PCID, emaid: str = EMAID, **change: Any) -> dict[str, Any]:
    now = pki.clock.now()
    body = {
        "contractBegins": _iso(now - dt.timedelta(days=1)),
        "contractEnds": _iso(now + dt.timedelta(days=200)),
        "pcid": pcid,
        "emaid": emaid,
        "xsdMsgDefNamespace": ISO2,
    }
    return {**body, **change}


async def _publish(http: httpx.AsyncClient, pki: PKI, *pcids: str) -> dict[str, OemChain]:
    chains = {pcid: foreign_oem_chain(pcid) for pcid in pcids}
    oem = opcp_headers(await client_token(http, pki, "gen-oem-publisher", "oem", wmis=["WMI"]))
    for chain in chains.values():
        pki.trust.add(chain.root.public_bytes(Encoding.DER), use="OEMRootCertificate")
        answer = await http.put("/opcp/v1/oem/provCerts", json=chain.body(), headers=oem)
        assert answer.status_code == 200, answer.text
    return chains


def _stored(pki: PKI, provided: dict[str, Any]) -> tuple[CertificateInstallationRes, bytes]:
    message = decode_message(base64.b64decode(provided["certificateInstallationRes"]))
    assert isinstance(message.body, CertificateInstallationRes)
    return message.body, message.header.session_id


async def test_generated_contract_data_is_stored_for_the_vehicle_and_the_oem_fetches_it(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    await _publish(http, fresh_pki, PCID)
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEXYZ"]))
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
    made = await http.put("/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki), headers=mo)
    assert made.status_code == 201, made.text
    assert made.content == b""
    path = f"/opcp/v1/ccp/provideSignedContractData/{EMAID}/{PCID}"
    provided = await http.get(path, params={"sessionID": "0A1B2C3D4E5F6071"}, headers=oem)
    assert provided.status_code == 200, provided.text
    assert provided.json()["xsdMsgDefNamespace"] == ISO2
    body, session_id = _stored(fresh_pki, provided.json())
    assert session_id == bytes.fromhex("0A1B2C3D4E5F6071") and body.emaid.value == EMAID
    contract = x509.load_der_x509_certificate(body.contract_signature_cert_chain.certificate)
    ends = fresh_pki.clock.now() + dt.timedelta(days=200)
    assert contract.not_valid_after_utc <= ends.replace(microsecond=0)
    assert contract.not_valid_after_utc > ends - dt.timedelta(minutes=1)
    # the registry holds the contract with our certificate as its current one: OCSP and deletion reach it
    registered = fresh_pki.contracts.get(EMAID)
    assert registered.pcid == PCID and registered.current_certificate is not None
    assert registered.current_certificate.serial == format(contract.serial_number, "X")
    looked_up = await http.get(f"/opcp/v1/ccp/lookupContract/{EMAID}", headers=mo)
    assert looked_up.status_code == 200 and looked_up.json()["XMLContracts"][0]["pcid"] == PCID
    listing = (await http.get(f"/opcp/v1/ccp/signedContractData/{PCID}", headers=oem)).json()["XMLContracts"]
    assert [entry["emaid"] for entry in listing] == [EMAID]
    # without a sessionID the header's is zero; the signature (over the body) is the same
    plain = await http.get(path, headers=oem)
    plain_body, plain_session = _stored(fresh_pki, plain.json())
    assert plain_session == b"\x00" * 8 and plain_body == body

    # the same pcid + eMAID again replaces it: a new certificate, the old one superseded
    again = await http.put(
        "/opcp/v1/cps/generate/signedContractData",
        json=_body(fresh_pki, contractEnds=_iso(fresh_pki.clock.now() + dt.timedelta(days=100))),
        headers=mo,
    )
    assert again.status_code == 201, again.text
    replaced, _ = _stored(fresh_pki, (await http.get(path, headers=oem)).json())
    new_contract = x509.load_der_x509_certificate(replaced.contract_signature_cert_chain.certificate)
    assert new_contract.serial_number != contract.serial_number
    assert new_contract.public_key() != contract.public_key()
    old = fresh_pki.certificates.get(format(contract.serial_number, "X"))
    assert old.status == "superseded"
    actions = [record.action for record in fresh_pki.audit.records(after=0, limit=1000)]
    assert actions.count("opcp-cps-generate") == 2 and actions.count("contract-add") == 1
    assert actions.count("contract-period") == 1

    # deleting it from the pool revokes the certificate we issued
    deleted = await http.delete(f"/opcp/v1/ccp/signedContractData/{EMAID}", headers=mo)
    assert deleted.status_code == 200, deleted.text
    assert fresh_pki.certificates.get(format(new_contract.serial_number, "X")).status == "revoked"
    gone = await http.get(path, headers=oem)
    assert gone.status_code == 404 and gone.json()["errorMessages"]
    reused = await http.put("/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki), headers=mo)
    assert reused.status_code == 400 and "revoked" in reused.json()["errorMessages"][0]


async def test_a_contract_that_begins_later_gets_a_certificate_valid_from_its_start(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    await _publish(http, fresh_pki, PCID)
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEXYZ"]))
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
    begins = fresh_pki.clock.now().replace(microsecond=0) + dt.timedelta(days=10)
    body = _body(fresh_pki, contractBegins=_iso(begins), contractEnds=_iso(begins + dt.timedelta(days=800)))
    made = await http.put("/opcp/v1/cps/generate/signedContractData", json=body, headers=mo)
    assert made.status_code == 201, made.text
    provided = await http.get(f"/opcp/v1/ccp/provideSignedContractData/{EMAID}/{PCID}", headers=oem)
    stored, _ = _stored(fresh_pki, provided.json())
    contract = x509.load_der_x509_certificate(stored.contract_signature_cert_chain.certificate)
    assert contract.not_valid_before_utc == begins
    assert contract.not_valid_after_utc == begins + dt.timedelta(days=365)  # the profile's default, not 800 days
    assert fresh_pki.contracts.get(EMAID).status == "pending"


def _at(days: int) -> str:
    """The fresh PKI's time plus ``days``, as OPCP writes it."""
    return (FRESH_EPOCH + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contractEnds": "2020-01-01T00:00:00Z"}, "The given contractEnds date is in the past."),
        ({"contractBegins": "yesterday"}, "contractBegins does not match"),
        ({"contractBegins": _at(60), "contractEnds": _at(30)}, "after contractBegins"),
        ({"pcid": "WMIGEN00000000009"}, "The OEM provisioning certificate with the given PCID is not available."),
        ({"pcid": "WMI-NOT-A-PCID"}, "pcid : must match"),
        ({"emaid": "DEXYZ"}, "not an eMAID"),
        ({"xsdMsgDefNamespace": "urn:iso:15118:20:2022:MsgDef"}, "ISO 15118-20 generation is not offered"),
        ({"xsdMsgDefNamespace": "urn:example"}, "xsdMsgDefNamespace"),
        ({"cpsV2GRootCertificateFingerprint": "00000000-0000-0000-0000-000000000000"}, "no CPS of ours"),
    ],
)
async def test_refused_generation_makes_nothing(
    fresh_pki: PKI, http: httpx.AsyncClient, change: dict[str, str], message: str
) -> None:
    await _publish(http, fresh_pki, PCID)
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEXYZ"]))
    before = len(fresh_pki.audit.records(after=0, limit=10_000))
    answer = await http.put("/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki, **change), headers=mo)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["errorMessages"][0]
    assert len(fresh_pki.audit.records(after=0, limit=10_000)) == before


async def test_an_emaid_of_another_vehicle_is_refused_and_only_its_mo_may_generate(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    await _publish(http, fresh_pki, PCID, OTHER_PCID)
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEXYZ"]))
    made = await http.put("/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki), headers=mo)
    assert made.status_code == 201, made.text
    before = len(fresh_pki.audit.records(after=0, limit=10_000))
    taken = await http.put(
        "/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki, pcid=OTHER_PCID), headers=mo
    )
    assert taken.status_code == 400 and "EMAID is already used by other PCID" in taken.json()["errorMessages"][0]
    assert len(fresh_pki.audit.records(after=0, limit=10_000)) == before
    for role, scope in (("mo-v2g-pki", {"providers": ["FRQQQ"]}), ("mo-own-pki", {"providers": ["DEXYZ"]})):
        other = opcp_headers(await client_token(http, fresh_pki, f"other-{role}", role, **scope))
        refused = await http.put("/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki), headers=other)
        assert refused.status_code == 403, refused.text
    assert (await http.put("/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki))).status_code == 401


@pytest.mark.parametrize("session_id", ["0", "XYZ0", "001122334455667788", "0x12"])
async def test_provide_refuses_a_session_id_that_is_not_hex_of_at_most_8_bytes(
    fresh_pki: PKI, http: httpx.AsyncClient, session_id: str
) -> None:
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
    answer = await http.get(
        f"/opcp/v1/ccp/provideSignedContractData/{EMAID}/{PCID}", params={"sessionID": session_id}, headers=oem
    )
    assert answer.status_code == 400 and "SessionID" in answer.json()["errorMessages"][0]


async def test_provide_answers_only_the_vehicles_own_contract(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    await _publish(http, fresh_pki, PCID, OTHER_PCID)
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEXYZ"]))
    assert (
        await http.put("/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki), headers=mo)
    ).status_code == 201
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
    foreign_oem = opcp_headers(await client_token(http, fresh_pki, "oem-2", "oem", wmis=["QQQ"]))
    base = "/opcp/v1/ccp/provideSignedContractData"
    assert (await http.get(f"{base}/{EMAID}/{OTHER_PCID}", headers=oem)).status_code == 404
    assert (await http.get(f"{base}/DEXYZC000000999/{PCID}", headers=oem)).status_code == 404
    assert (await http.get(f"{base}/{EMAID}/{PCID}", headers=foreign_oem)).status_code == 403
    assert (await http.get(f"{base}/{EMAID}/{PCID}", headers=mo)).status_code == 403
    twenty = await http.get(
        f"{base}/{EMAID}/{PCID}", params={"xsdMsgDefNamespace": "urn:iso:std:iso:15118:-20:CommonMessages"}, headers=oem
    )
    assert twenty.status_code == 404
    provided = await http.get(f"{base}/{EMAID}/{PCID}", headers=oem)
    root_id = provided.json()["cpsV2GRootCertificateFingerprint"]
    by_root = await http.get(
        f"{base}/{EMAID}/{PCID}", params={"cpsV2GRootCertificateFingerprint": root_id}, headers=oem
    )
    assert by_root.status_code == 200
    other_root = await http.get(
        f"{base}/{EMAID}/{PCID}",
        params={"cpsV2GRootCertificateFingerprint": "00000000-0000-0000-0000-000000000000"},
        headers=oem,
    )
    assert other_root.status_code == 404
    # the CPS signature covers the body only: it verifies whatever session the header carries
    message = decode_message(base64.b64decode(provided.json()["certificateInstallationRes"]))
    assert isinstance(message.body, CertificateInstallationRes) and message.header.signature is not None
    cps = x509.load_der_x509_certificate(message.body.sa_provisioning_certificate_chain.certificate)
    body = message.body
    elements = (body.contract_signature_cert_chain, body.contract_signature_encrypted_private_key,
                body.dh_public_key, body.emaid)  # fmt: skip
    verify_elements(message.header.signature, elements, cps.public_key(), what="CPS")


async def test_an_emaid_taken_while_the_certificate_is_made_leaves_nothing_behind(
    fresh_pki: PKI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last check runs in the issuance's transaction: a refusal there stores neither the certificate
    nor the contract nor the pool's entry (the race of two MOs is played by the key wrap step)."""
    await _publish(http, fresh_pki, PCID)
    mo = opcp_headers(await client_token(http, fresh_pki, "mo", "mo-v2g-pki", providers=["DEXYZ"]))
    real_wrap = generate.encrypt_contract_key

    def wrap_while_another_vehicle_takes_the_emaid(*args: Any, **kwargs: Any) -> Any:
        fresh_pki.contracts.add(emaid=EMAID, pcid=OTHER_PCID)
        return real_wrap(*args, **kwargs)

    monkeypatch.setattr(generate, "encrypt_contract_key", wrap_while_another_vehicle_takes_the_emaid)
    before = [record.action for record in fresh_pki.audit.records(after=0, limit=10_000)]
    answer = await http.put("/opcp/v1/cps/generate/signedContractData", json=_body(fresh_pki), headers=mo)
    assert answer.status_code == 400 and "EMAID is already used by other PCID" in answer.json()["errorMessages"][0]
    after = [record.action for record in fresh_pki.audit.records(after=0, limit=10_000)]
    assert after == [*before, "contract-add"]  # only the other MO's contract
    assert fresh_pki.contracts.get(EMAID).pcid == OTHER_PCID
    assert fresh_pki.contracts.get(EMAID).current_certificate is None
    assert fresh_pki.certificates.list(CertificateFilter(profile="contract", identity=EMAID)) == []
    oem = opcp_headers(await client_token(http, fresh_pki, "oem", "oem", wmis=["WMI"]))
    missing = await http.get(f"/opcp/v1/ccp/provideSignedContractData/{EMAID}/{PCID}", headers=oem)
    assert missing.status_code == 404
