"""The contract pool client (:mod:`ocpp_bridge.pool`) against a scripted OPCP pool (httpx MockTransport):
the static token and OAuth2 client credentials (cache, expiry, one new token after a 401), several
contracts in an answer (-2: the first; -20: the car's preferred, ``remainingContracts`` from its EXI),
and Failed with ``exiResponse = ""`` on any trouble. The clock is injected: nothing sleeps.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from pydantic import SecretStr

from ocpp_bridge.pool import ContractPool
from pki import Settings
from pki.iso15118 import exi20
from pki.iso15118.messages20 import (
    CertificateChain,
    CertificateInstallationRes,
    ContractCertificateChain,
    ECDHCurve,
    EncryptedKeyType,
    EncryptedPrivateKey,
    MessageHeader,
    Processing,
    ResponseCode,
    SignedInstallationData,
)

ISO2 = "urn:iso:15118:2:2013:MsgDef"
ISO20 = "urn:iso:std:iso:15118:-20:CommonMessages"
POOL = "https://pool.example/opcp"
SECRET = "s3cr3t-never-logged"


def _content(*entries: tuple[str, str | None]) -> dict[str, object]:
    return {
        "CCPResponse": {
            "emaidContent": [
                {"messageDef": {"certificateInstallationRes": exi, **({"emaid": emaid} if emaid else {})}}
                for exi, emaid in entries
            ]
        }
    }


@dataclass
class FakePool:
    """A scripted OPCP pool: tokens ``t1``, ``t2`` ...; the CCP answers what ``ccp`` says for a known token."""

    now: list[float] = field(default_factory=lambda: [1000.0])
    expires_in: object = 3600
    token_status: int = 200
    valid: set[str] = field(default_factory=set)
    ccp: Callable[[httpx.Request], httpx.Response] = lambda _r: httpx.Response(200, json=_content(("RVhJ", None)))
    token_requests: list[httpx.Request] = field(default_factory=list)
    ccp_requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            self.token_requests.append(request)
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "invalid_client", "error_description": "no"})
            token = f"t{len(self.token_requests)}"
            self.valid.add(token)
            return httpx.Response(
                200, json={"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in, "scope": "x"}
            )
        self.ccp_requests.append(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401)
        return self.ccp(request)

    def client(self, **options: object) -> ContractPool:
        return ContractPool(
            POOL,
            client_id="cpo-1",
            client_secret=SecretStr(SECRET),
            transport=httpx.MockTransport(self),
            monotonic=lambda: self.now[0],
            **options,  # type: ignore[arg-type]
        )


def _ask(pool: ContractPool, namespace: str = ISO2, version: str = "2.0.1", **extra: object) -> dict[str, object]:
    return pool.get_15118_ev_certificate(
        iso15118_schema_version=namespace,
        action="Install",
        exi_request="UkVR",
        max_response_chars=5600,
        ocpp_version=version,
        **extra,  # type: ignore[arg-type]
    )


def test_client_credentials_fetch_a_token_once_and_send_it_as_bearer() -> None:
    fake = FakePool()
    pool = fake.client()
    assert _ask(pool) == {"status": "Accepted", "exiResponse": "RVhJ"}
    assert _ask(pool) == {"status": "Accepted", "exiResponse": "RVhJ"}
    (token_request,) = fake.token_requests
    assert str(token_request.url) == f"{POOL}/oauth/token"
    assert json.loads(token_request.content) == {
        "client_id": "cpo-1",
        "client_secret": SECRET,
        "audience": POOL,
        "grant_type": "client_credentials",
    }
    assert [r.headers["authorization"] for r in fake.ccp_requests] == ["Bearer t1", "Bearer t1"]
    assert str(fake.ccp_requests[0].url) == f"{POOL}/v1/ccp/signedContractData"
    assert fake.ccp_requests[0].headers["alwaysReturnEXI"] == "true"
    assert json.loads(fake.ccp_requests[0].content) == {
        "certificateInstallationReq": "UkVR",
        "xsdMsgDefNamespace": ISO2,
    }


def test_the_token_is_fetched_again_shortly_before_it_expires() -> None:
    fake = FakePool(expires_in=600)  # margin: 60 s (at most a tenth of the lifetime)
    pool = fake.client()
    _ask(pool)
    fake.now[0] += 539
    _ask(pool)
    assert len(fake.token_requests) == 1
    fake.now[0] += 2  # 541 s after: inside the last minute
    _ask(pool)
    assert len(fake.token_requests) == 2
    assert fake.ccp_requests[-1].headers["authorization"] == "Bearer t2"


def test_a_token_without_expires_in_serves_its_request_only() -> None:
    fake = FakePool(expires_in=None)
    pool = fake.client()
    _ask(pool)
    _ask(pool)
    assert len(fake.token_requests) == 2


def test_a_401_gets_one_new_token_and_one_retry() -> None:
    fake = FakePool()
    pool = fake.client()
    _ask(pool)
    fake.valid.clear()  # the pool rotated its signing key: the cached token no longer verifies
    assert _ask(pool) == {"status": "Accepted", "exiResponse": "RVhJ"}
    assert [r.headers["authorization"] for r in fake.ccp_requests] == ["Bearer t1", "Bearer t1", "Bearer t2"]


def test_a_second_401_is_failed_without_a_third_attempt() -> None:
    fake = FakePool(ccp=lambda _r: httpx.Response(401))
    answer = _ask(fake.client())
    assert answer["status"] == "Failed" and answer["exiResponse"] == ""
    assert answer["statusInfo"]["reasonCode"] == "PoolAuthFailed"  # type: ignore[index]
    assert len(fake.token_requests) == 2 and len(fake.ccp_requests) == 2


def test_wrong_client_credentials_are_failed_and_the_secret_is_never_said(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakePool(token_status=401)
    caplog.set_level(logging.DEBUG)
    pool = fake.client()
    answer = _ask(pool)
    assert answer["status"] == "Failed" and answer["exiResponse"] == ""
    assert answer["statusInfo"] == {  # type: ignore[comparison-overlap]
        "reasonCode": "PoolAuthFailed",
        "additionalInfo": "the contract pool's token endpoint answered HTTP 401 (invalid_client: no)",
    }
    assert not fake.ccp_requests
    assert SECRET not in caplog.text and SECRET not in json.dumps(answer) and SECRET not in repr(pool.__dict__)


def test_a_token_endpoint_echoing_the_secret_does_not_get_it_logged(caplog: pytest.LogCaptureFixture) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"error": "invalid_request", "error_description": json.loads(request.content)["client_secret"]}
        )

    caplog.set_level(logging.DEBUG)
    pool = ContractPool(POOL, client_id="c", client_secret=SECRET, transport=httpx.MockTransport(echo))
    answer = _ask(pool)
    assert (
        answer["statusInfo"]["additionalInfo"]
        == "the contract pool's token endpoint answered HTTP 400 (invalid_request: ***)"
    )  # type: ignore[index]
    assert SECRET not in caplog.text


def test_the_static_token_is_sent_and_a_401_is_failed() -> None:
    seen: list[httpx.Request] = []

    def ccp(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"errorMessages": ["bad token"], "traceId": "x"})

    pool = ContractPool(POOL, "static-token", transport=httpx.MockTransport(ccp))
    answer = _ask(pool)
    assert answer["statusInfo"]["reasonCode"] == "PoolAuthFailed"  # type: ignore[index]
    assert [r.headers["authorization"] for r in seen] == ["Bearer static-token"]


def test_iso15118_2_takes_the_first_of_several_contracts() -> None:
    fake = FakePool(ccp=lambda _r: httpx.Response(200, json=_content(("Rmlyc3Q=", "DEABC1"), ("U2Vjb25k", "DEABC2"))))
    assert _ask(fake.client(), prioritized_emaids=["DEABC2"]) == {"status": "Accepted", "exiResponse": "Rmlyc3Q="}


def _response20(remaining: int) -> str:
    data = SignedInstallationData(
        id="id1",
        contract_certificate_chain=ContractCertificateChain(certificate=b"\x00", sub_certificates=(b"\x00",)),
        ecdh_curve=ECDHCurve.SECP521,
        dh_public_key=bytes(133),
        encrypted_private_key=EncryptedPrivateKey(EncryptedKeyType.SECP521, bytes(94)),
    )
    message = CertificateInstallationRes(
        header=MessageHeader(session_id=bytes(8), timestamp=1_768_478_400),
        response_code=ResponseCode.OK,
        evse_processing=Processing.FINISHED,
        cps_certificate_chain=CertificateChain(certificate=b"\x00"),
        signed_installation_data=data,
        remaining_contract_certificate_chains=remaining,
    )
    return base64.b64encode(exi20.encode_message(message)).decode()


def test_iso15118_20_takes_the_cars_preferred_contract_and_says_how_many_remain() -> None:
    first, preferred = _response20(1), _response20(2)
    fake = FakePool(ccp=lambda _r: httpx.Response(200, json=_content((first, "DEABC1"), (preferred, "DE-ABC-2"))))
    pool = fake.client()
    answer = _ask(pool, ISO20, "2.1", prioritized_emaids=["DEAAA9", "deabc2"])
    assert answer == {"status": "Accepted", "exiResponse": preferred, "remainingContracts": 2}
    assert _ask(pool, ISO20, "2.1") == {"status": "Accepted", "exiResponse": first, "remainingContracts": 1}
    assert "remainingContracts" not in _ask(pool, ISO20, "2.0.1")  # 2.0.1 has no such field


def test_an_iso_compliant_404_reaches_the_car() -> None:
    fake = FakePool(ccp=lambda _r: httpx.Response(404, json=_content(("RkFJTEVE", None))))
    assert _ask(fake.client()) == {"status": "Accepted", "exiResponse": "RkFJTEVE"}


@pytest.mark.parametrize(
    ("response", "reason_code", "info"),
    [
        (
            httpx.Response(404, json={"errorMessages": ["Contract or Vehicle not found."], "traceId": "t"}),
            "PoolError",
            "the contract pool answered HTTP 404 (Contract or Vehicle not found.)",
        ),
        (httpx.Response(500, text="oops"), "PoolError", "the contract pool answered HTTP 500"),
        (httpx.Response(200, json={"emaidContent": []}), "PoolError", "has no certificateInstallationRes"),
        (httpx.Response(200, json=_content(("", None))), "PoolError", "has no certificateInstallationRes"),
        (httpx.Response(200, text="not json"), "PoolError", "has no certificateInstallationRes"),
        (httpx.Response(403), "PoolAuthFailed", "HTTP 403"),
        (httpx.Response(200, json=_content(("A" * 5601, None))), "TooLarge", "5601 > 5600"),
    ],
)
def test_unusable_answers_are_failed_with_an_empty_exi_response(
    response: httpx.Response, reason_code: str, info: str
) -> None:
    answer = _ask(FakePool(ccp=lambda _r: response).client())
    assert answer["status"] == "Failed" and answer["exiResponse"] == ""
    assert answer["statusInfo"]["reasonCode"] == reason_code  # type: ignore[index]
    assert info in answer["statusInfo"]["additionalInfo"]  # type: ignore[index]


def test_transport_errors_and_the_deadline_are_failed() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    for handler, code in ((unreachable, "PoolUnreachable"), (slow, "PoolTimeout")):
        answer = _ask(ContractPool(POOL, "t", transport=httpx.MockTransport(handler)))
        assert (answer["status"], answer["exiResponse"], answer["statusInfo"]["reasonCode"]) == ("Failed", "", code)  # type: ignore[index]

    fake = FakePool()
    token_endpoint = fake.__call__

    def slow_token(request: httpx.Request) -> httpx.Response:
        fake.now[0] += 3.6  # the token took longer than the whole 3.5 s budget
        return token_endpoint(request)

    pool = ContractPool(
        POOL, client_id="c", client_secret="s", transport=httpx.MockTransport(slow_token), monotonic=lambda: fake.now[0]
    )
    answer = _ask(pool)
    assert answer["statusInfo"]["reasonCode"] == "PoolTimeout"  # type: ignore[index]
    assert not fake.ccp_requests  # the CCP was not asked after the deadline


def test_only_install_is_forwarded() -> None:
    fake = FakePool()
    answer = fake.client().get_15118_ev_certificate(
        iso15118_schema_version=ISO2, action="Update", exi_request="UkVR", max_response_chars=5600
    )
    assert answer["statusInfo"]["reasonCode"] == "NotSupported" and not fake.token_requests  # type: ignore[index]


def test_settings_configure_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVPKI_CONTRACT_POOL_URL", "http://127.0.0.1:9/opcp/")
    monkeypatch.setenv("EVPKI_CONTRACT_POOL_CLIENT_ID", "cpo-1")
    monkeypatch.setenv("EVPKI_CONTRACT_POOL_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("EVPKI_CONTRACT_POOL_TIMEOUT", "30")
    settings = Settings()
    assert SECRET not in repr(settings)
    pool = ContractPool.from_settings(settings)
    assert pool is not None
    assert pool._credentials is not None and pool._credentials.token_url == "http://127.0.0.1:9/opcp/oauth/token"
    assert pool._credentials.audience == "http://127.0.0.1:9/opcp"
    assert pool._timeout == 3.9  # capped below ISO 15118-2's round trip
    monkeypatch.setenv("EVPKI_CONTRACT_POOL_TOKEN", "static")
    with pytest.raises(ValueError, match="not both"):
        ContractPool.from_settings(Settings())
    monkeypatch.delenv("EVPKI_CONTRACT_POOL_URL")
    assert ContractPool.from_settings(Settings()) is None
