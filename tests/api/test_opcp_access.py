"""OPCP access: the client-credentials token endpoint, the JWTs and their keys, and the access table.

The token is checked with PyJWT against the published JWK Set alone (what any OPCP client library
does); the access table of ``04_authentication.md`` is walked with every role and scope.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from api.app import create_app
from pki import PKI
from pki.operations.tokens import Role
from tests.foreign_roots import foreign_root
from tests.opcp_support import AUDIENCE, b64, client_token, foreign_oem_chain, opcp_headers

pytestmark = pytest.mark.asyncio

OWN_PCID, FOREIGN_PCID = "WMIOPCP0000000001", "XYZOPCP0000000001"
OWN_EMAID = "DEXYZC000000077"  # of the provider prefix of "mo-v2g-pki"


@pytest_asyncio.fixture
async def http(fresh_pki: PKI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(fresh_pki))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client


def _token_request(client_id: str, secret: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": client_id,
        "client_secret": secret,
        "audience": AUDIENCE,
        "grant_type": "client_credentials",
        **extra,
    }


async def test_a_client_gets_a_jwt_that_the_published_keys_verify(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    view, secret = fresh_pki.opcp.add_client(name="oem-1", role="oem", wmis=["WMI", "abc"])
    answer = await http.post("/opcp/oauth/token", json=_token_request(view.client_id, secret))
    assert answer.status_code == 200, answer.text
    grant = answer.json()
    assert grant["token_type"] == "Bearer" and grant["expires_in"] == 86400 and "pcpservice" in grant["scope"]
    keys = (await http.get("/opcp/.well-known/jwks.json")).json()["keys"]
    header = jwt.get_unverified_header(grant["access_token"])
    jwk = next(key for key in keys if key["kid"] == header["kid"])
    claims = jwt.decode(
        grant["access_token"],
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience=AUDIENCE,
        options={"verify_exp": False, "verify_iat": False},  # the PKI's clock is in 2026-01
    )
    assert claims["role"] == "OEM" and claims["wmis"] == ["ABC", "WMI"] and claims["azp"] == view.client_id
    assert claims["sub"] == f"{view.client_id}@clients" and claims["exp"] - claims["iat"] == 86400
    # RFC 6749 §4.4.2 form encoding and §2.3.1 HTTP Basic work too
    form = await http.post(
        "/opcp/oauth/token",
        content=f"grant_type=client_credentials&audience={AUDIENCE}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(f"{view.client_id}:{secret}".encode()).decode(),
        },
    )
    assert form.status_code == 200, form.text
    roots = await http.get("/opcp/v1/root/rootCerts", headers=opcp_headers(form.json()["access_token"]))
    assert roots.status_code == 200, roots.text
    assert "caCertificate" not in json.dumps(fresh_pki.opcp.list_clients()[0].as_dict())


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "opcp-AAAAAAAAAAAAAAAA"}, 401, "invalid_client"),
        ({"audience": "https://eu.plugncharge-qa.hubject.com"}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
async def test_a_refused_token_request_says_why_as_oauth_does(
    fresh_pki: PKI, http: httpx.AsyncClient, change: dict[str, str], status: int, error: str
) -> None:
    view, secret = fresh_pki.opcp.add_client(name="cpo-1", role="cpo")
    answer = await http.post("/opcp/oauth/token", json={**_token_request(view.client_id, secret), **change})
    assert answer.status_code == status
    assert answer.json()["error"] == error and answer.json()["error_description"]


async def test_rotated_keys_keep_old_tokens_valid_and_removed_clients_lose_access(
    fresh_pki: PKI, http: httpx.AsyncClient
) -> None:
    old = await client_token(http, fresh_pki, "cps-1", "cps")
    new_kid = fresh_pki.opcp.rotate_signing_key()
    new = await client_token(http, fresh_pki, "cps-2", "cps")
    assert jwt.get_unverified_header(new)["kid"] == new_kid != jwt.get_unverified_header(old)["kid"]
    assert len((await http.get("/opcp/.well-known/jwks.json")).json()["keys"]) == 2
    for token in (old, new):
        assert (await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))).status_code == 200
    fresh_pki.clock.advance(dt.timedelta(hours=25))  # type: ignore[attr-defined]
    assert len((await http.get("/opcp/.well-known/jwks.json")).json()["keys"]) == 1  # the retired key left
    expired = await http.get("/opcp/v1/root/ctl", headers=opcp_headers(old))
    assert expired.status_code == 401 and expired.json()["errorMessages"]
    fresh_pki.clock.advance(dt.timedelta(hours=-25))  # type: ignore[attr-defined]
    fresh_pki.opcp.remove_client("cps-2")
    gone = await http.get("/opcp/v1/root/ctl", headers=opcp_headers(new))
    assert gone.status_code == 401


async def test_our_own_api_tokens_and_opcp_tokens_stay_apart(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    own = fresh_pki.tokens.create(name="own-admin", role=Role.ADMIN)[1]
    opcp = await client_token(http, fresh_pki, "admin-1", "admin")
    assert (await http.get("/api/v1/cas", headers=opcp_headers(own))).status_code == 200
    assert (await http.get("/api/v1/cas", headers=opcp_headers(opcp))).status_code == 401
    refused = await http.get("/opcp/v1/root/rootCerts", headers=opcp_headers(own))
    assert refused.status_code == 401 and set(refused.json()) == {"errorMessages", "traceId"}
    forged = opcp.rsplit(".", 1)[0] + ".AAAA"
    assert (await http.get("/opcp/v1/root/rootCerts", headers=opcp_headers(forged))).status_code == 401
    assert (await http.get("/opcp/v1/root/rootCerts")).status_code == 401


# -- the access table, walked --------------------------------------------------------------------

# (client name, role, scope); OEMs and MOs once with the scope of the data and once without.
CALLERS: tuple[tuple[str, str, dict[str, list[str]]], ...] = (
    ("oem-own", "oem", {"wmis": ["WMI"]}),
    ("oem-foreign", "oem", {"wmis": ["QQQ"]}),
    ("cpo", "cpo", {}),
    ("mo-own-pki", "mo-own-pki", {"providers": ["DEABC"]}),
    ("mo-v2g-pki", "mo-v2g-pki", {"providers": ["DEXYZ"]}),
    ("mo-v2g-foreign", "mo-v2g-pki", {"providers": ["FRQQQ"]}),
    ("cps", "cps", {}),
    ("admin", "admin", {}),
)
ALL = {name for name, _, _ in CALLERS}
PCP_READERS = {"oem-own", "mo-own-pki", "mo-v2g-pki", "mo-v2g-foreign", "cps"}


def _contract_request(pki: PKI) -> dict[str, str]:
    now = pki.clock.now()
    return {
        "contractBegins": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "contractEnds": (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pcid": OWN_PCID,
        "emaid": OWN_EMAID,
        "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
    }


def _operations(
    chain_body: dict[str, str], root_b64: str, contract_request: dict[str, str]
) -> list[tuple[str, str, str, Any, set[str]]]:
    """(operation, method, path, JSON body, who may) for every OPCP operation evpki serves."""
    return [
        ("getAllRootCerts", "GET", "/v1/root/rootCerts", None, ALL),
        ("getRootCert", "GET", "/v1/root/rootCerts/{root_id}", None, ALL),
        ("GetCertificateTrustList", "GET", "/v1/root/ctl", None, ALL),
        ("saveRootCa", "PUT", "/v1/root/rootCerts", {"caCertificate": root_b64, "rootType": "MO"}, {"admin"}),
        ("deleteRootCa", "DELETE", "/v1/root/rootCerts/{root_id}", None, {"admin"}),
        ("addOEMProvCert", "PUT", "/v1/oem/provCerts", chain_body, {"oem-own"}),
        ("getOEMProvCert", "GET", f"/v1/oem/provCerts/{OWN_PCID}", None, PCP_READERS),
        ("lookupVehicle", "GET", f"/v1/oem/provCerts/lookupVehicle/{OWN_PCID}", None, PCP_READERS),
        ("generateSignedContractData", "PUT", "/v1/cps/generate/signedContractData", contract_request,
         {"mo-v2g-pki"}),
        ("provideSignedContractData", "GET", f"/v1/ccp/provideSignedContractData/{OWN_EMAID}/{OWN_PCID}", None,
         {"oem-own"}),
        ("deleteOEMProvCert", "DELETE", f"/v1/oem/provCerts/{OWN_PCID}", None, {"oem-own"}),
        ("create-webhook-endpoint", "POST", "/v1/webhook/endpoints",
         {"url": "https://hooks.example/opcp", "enabledEvents": ["root.cert.added"]}, ALL),
        ("get-webhook-endpoints", "GET", "/v1/webhook/endpoints", None, ALL),
    ]  # fmt: skip


async def test_every_operation_with_every_role_and_scope(fresh_pki: PKI, http: httpx.AsyncClient) -> None:
    chain = foreign_oem_chain(OWN_PCID)
    fresh_pki.trust.add(base64.b64decode(b64(chain.root)), use="OEMRootCertificate")
    tokens = {name: await client_token(http, fresh_pki, name, role, **scope) for name, role, scope in CALLERS}
    mo_root = foreign_root("Foreign MO Root CA")
    outcomes: dict[tuple[str, str], int] = {}
    for name, _, _ in CALLERS:
        # each caller meets the same state: the vehicle published, the MO root in the pool
        admin = opcp_headers(tokens["admin"])
        saved = await http.put(
            "/opcp/v1/root/rootCerts", json={"caCertificate": b64(mo_root.certificate), "rootType": "MO"}, headers=admin
        )
        assert saved.status_code == 200, saved.text
        root_id = saved.json()["RootResponse"]["rootCertificateId"]
        published = await http.put("/opcp/v1/oem/provCerts", json=chain.body(), headers=opcp_headers(tokens["oem-own"]))
        assert published.status_code == 200, published.text
        generated = await http.put(
            "/opcp/v1/cps/generate/signedContractData",
            json=_contract_request(fresh_pki),
            headers=opcp_headers(tokens["mo-v2g-pki"]),
        )
        assert generated.status_code == 201, generated.text
        walk = _operations(chain.body(), b64(mo_root.certificate), _contract_request(fresh_pki))
        for operation, method, path, body, allowed in walk:
            answer = await http.request(
                method, "/opcp" + path.format(root_id=root_id), json=body, headers=opcp_headers(tokens[name])
            )
            outcomes[(operation, name)] = answer.status_code
            if name in allowed:
                assert answer.status_code in (200, 201), (operation, name, answer.text)
            else:
                assert answer.status_code == 403, (operation, name, answer.text)
                assert answer.json()["errorMessages"]
            anonymous = await http.request(method, "/opcp" + path.format(root_id=root_id), json=body)
            assert anonymous.status_code == 401, (operation, anonymous.text)
    # the foreign PCID is out of every OEM's reach but its own, even for reading
    foreign = await http.get(f"/opcp/v1/oem/provCerts/{FOREIGN_PCID}", headers=opcp_headers(tokens["oem-own"]))
    assert foreign.status_code == 403
    # and the foreign vehicle's contract is out of the OEM's reach for the provide call too
    provide = f"/opcp/v1/ccp/provideSignedContractData/{OWN_EMAID}/{FOREIGN_PCID}"
    assert (await http.get(provide, headers=opcp_headers(tokens["oem-own"]))).status_code == 403
    assert len(outcomes) == len(CALLERS) * 13


async def test_a_client_removed_by_another_process_is_refused_once_the_cache_bound_passed(
    fresh_pki: PKI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted tokens are remembered for AUTH_CACHE_SECONDS; another process's removal waits that long."""
    from pki.core import accepted
    from pki.opcp import service

    clock = [1000.0]
    monkeypatch.setattr(accepted.time, "monotonic", lambda: clock[0])
    token = await client_token(http, fresh_pki, "cpo-elsewhere", "cpo")
    assert (await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))).status_code == 200
    other = PKI.open(fresh_pki.settings, migrate=False)  # a second OPCP process on the same database
    try:
        other.opcp.remove_client("cpo-elsewhere")
    finally:
        other.close()
    clock[0] += service.AUTH_CACHE_SECONDS / 2
    assert (await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))).status_code == 200  # within the bound
    clock[0] += service.AUTH_CACHE_SECONDS
    gone = await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))
    assert gone.status_code == 401
    assert "no longer exists" in " ".join(gone.json()["errorMessages"])


async def test_a_remembered_token_is_still_judged_by_its_lifetime_and_this_process_s_removals(
    fresh_pki: PKI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pki.core import accepted

    monkeypatch.setattr(accepted.time, "monotonic", lambda: 1000.0)  # the cache bound never passes
    token = await client_token(http, fresh_pki, "cpo-cached", "cpo")
    assert (await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))).status_code == 200
    assert fresh_pki.opcp.cached_principal(token) is not None
    fresh_pki.clock.advance(dt.timedelta(hours=25))  # type: ignore[attr-defined]
    assert fresh_pki.opcp.cached_principal(token) is None
    expired = await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))
    assert expired.status_code == 401 and "expired" in " ".join(expired.json()["errorMessages"])
    fresh_pki.clock.advance(dt.timedelta(hours=-25))  # type: ignore[attr-defined]
    assert (await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))).status_code == 200
    fresh_pki.opcp.remove_client("cpo-cached")  # through this process: at once, within the bound
    assert fresh_pki.opcp.cached_principal(token) is None
    assert (await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))).status_code == 401


async def test_a_verification_that_a_removal_overtook_is_not_remembered(
    fresh_pki: PKI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pki.core import accepted
    from pki.opcp import tokens

    monkeypatch.setattr(accepted.time, "monotonic", lambda: 1000.0)
    token = await client_token(http, fresh_pki, "cpo-raced", "cpo")
    verify = tokens.verify_token

    def verify_then_remove(ctx: Any, access_token: str) -> tokens.VerifiedToken:
        verified = verify(ctx, access_token)  # read before the removal below
        fresh_pki.opcp.remove_client("cpo-raced")
        return verified

    monkeypatch.setattr(tokens, "verify_token", verify_then_remove)
    assert fresh_pki.opcp.authenticate(token).name == "cpo-raced"  # this one call was verified in time
    monkeypatch.setattr(tokens, "verify_token", verify)
    assert fresh_pki.opcp.cached_principal(token) is None
    assert (await http.get("/opcp/v1/root/ctl", headers=opcp_headers(token))).status_code == 401
