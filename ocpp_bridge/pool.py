"""Get15118EVCertificate forwarded to an OPCP contract certificate pool instead of answered locally.

OCPP M01/M02: the CSMS relays the EV's EXI ``CertificateInstallationReq`` to a secondary actor. An
OPCP pool (Hubject's "CCP" interface, ``ccp.v1.json``; evpki's own under ``/opcp`` of ``evpki serve``)
takes ``POST {pool}/v1/ccp/signedContractData`` with ``{"certificateInstallationReq": <base64 EXI>,
"xsdMsgDefNamespace": <schema>}`` from a CPO and answers the signed ``CertificateInstallationRes``
under ``CCPResponse.emaidContent[].messageDef``.

Access is OPCP's (``04_authentication.md``, ``accessToken.v1.json``): either a static bearer token,
or OAuth2 client credentials -- a JSON ``POST`` of ``client_id``, ``client_secret``, ``audience`` and
``grant_type=client_credentials`` to the token endpoint, whose ``access_token`` is kept until
shortly before its ``expires_in`` and fetched again once when the pool answers 401 (a rotated
signing key, a token revoked early). The secret is held as a :class:`~pydantic.SecretStr` and never
logged or put into a reason.

ISO 15118-2 allows the whole round trip about 5 s (4.5 s in the Ed. 3 timing table), so the pool
gets < 4 s for everything (token, request, the one retry) and anything short of a usable answer is
OCPP ``Failed`` with ``exiResponse = ""`` (pitfall P-10) and a ``statusInfo`` reason.

Several contracts in the answer: an ISO 15118-2 CertificateInstallationRes carries exactly one
contract certificate chain and the car installs it in one message, so the first entry is taken --
the pool lists the vehicle's default (highest priority) contract first (OPCP ``setDefaultContract``).
An ISO 15118-20 response also carries one contract, and ``RemainingContractCertificateChains``
tells the car to ask again for the others; of several entries the one the car ranks first in OCPP
2.1's ``prioritizedEMAIDs`` (M01.FR.05, the car's PrioritizedEMAIDs) is taken, else the first, and
2.1's ``remainingContracts`` (M01.FR.07) is read from that response's RemainingContractCertificateChains.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from pki import Settings
from pki.iso15118 import exi20, messages20

__all__ = ["CCP_PATH", "TOKEN_PATH", "ContractPool"]

log = logging.getLogger("evpki.ocpp.pool")
CCP_PATH = "/v1/ccp/signedContractData"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - where evpki's OPCP services (and Hubject's pools) issue tokens
ISO20_NAMESPACE = "urn:iso:std:iso:15118:-20:CommonMessages"
_MAX_TIMEOUT = 3.9  # seconds: the pool's share of ISO 15118-2's ~5 s CertificateInstallation round trip
_MAX_TOKEN_BYTES = 64 << 10
_MAX_ANSWER_BYTES = 1 << 20  # several contracts of ≤ 17,000 characters each fit many times over
_EXPIRY_MARGIN = 60.0  # seconds before expires_in a token is no longer sent (clock skew, time in flight)


class _PoolFailure(Exception):
    """Anything short of a usable answer: the OCPP reason code (≤ 20 characters) and a message."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    usable_until: float  # monotonic seconds; 0: for the one request it was fetched for


@dataclass(frozen=True, slots=True)
class _ClientCredentials:
    client_id: str
    client_secret: SecretStr
    token_url: str
    audience: str


class ContractPool:
    """One OPCP contract pool and how to authenticate to it; thread-safe, one per process is enough.

    ``token``: a static bearer token. ``client_id`` + ``client_secret``: OAuth2 client credentials
    at ``token_url`` (default ``{url}/oauth/token``, where evpki serves it when ``url`` is
    ``https://<evpki>/opcp``) for ``audience`` (default: ``url``). ``timeout`` bounds the whole
    exchange (at most 3.9 s). ``monotonic`` is the clock the token cache reads (tests travel with it).
    """

    def __init__(
        self,
        url: str,
        token: str | SecretStr | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | SecretStr | None = None,
        token_url: str | None = None,
        audience: str | None = None,
        timeout: float = 3.5,
        transport: httpx.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        base = _http_url(url, "the contract pool URL")
        self._endpoint = base + CCP_PATH
        self._static = _secret(token)
        if self._static is not None and not self._static.get_secret_value():
            self._static = None
        self._credentials: _ClientCredentials | None = None
        if client_id or client_secret is not None:
            secret = _secret(client_secret)
            if not client_id or secret is None or not secret.get_secret_value():
                raise ValueError("OAuth2 client credentials need both a client id and a client secret")
            if self._static is not None:
                raise ValueError("give the contract pool either a static token or client credentials, not both")
            self._credentials = _ClientCredentials(
                client_id,
                secret,
                _http_url(token_url, "the contract pool token URL") if token_url else base + TOKEN_PATH,
                audience or base,
            )
        self._timeout = max(0.1, min(timeout, _MAX_TIMEOUT))
        self._now = monotonic
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._client = httpx.Client(follow_redirects=False, trust_env=False, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings) -> ContractPool | None:
        """The pool ``EVPKI_CONTRACT_POOL_*`` configure; None when ``EVPKI_CONTRACT_POOL_URL`` is unset."""
        if not settings.contract_pool_url:
            return None
        return cls(
            settings.contract_pool_url,
            settings.contract_pool_token,
            client_id=settings.contract_pool_client_id,
            client_secret=settings.contract_pool_client_secret,
            token_url=settings.contract_pool_token_url,
            audience=settings.contract_pool_audience,
            timeout=settings.contract_pool_timeout,
        )

    def close(self) -> None:
        self._client.close()

    def get_15118_ev_certificate(
        self,
        *,
        iso15118_schema_version: str,
        action: str,
        exi_request: str,
        max_response_chars: int,
        ocpp_version: str = "2.0.1",
        prioritized_emaids: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The Get15118EVCertificate.conf payload: the pool's EXI answer, or Failed with a reason."""
        if action != "Install":
            # OPCP's signedContractData answers CertificateInstallationReq only.
            return _failed("NotSupported", "the contract pool only installs contracts (action Install)")
        body = {"certificateInstallationReq": exi_request, "xsdMsgDefNamespace": iso15118_schema_version}
        deadline = self._now() + self._timeout
        try:
            entries = self._signed_contract_data(body, deadline)
            entry = _chosen(entries, iso15118_schema_version, prioritized_emaids)
        except _PoolFailure as failure:
            log.warning("contract pool: %s", failure.message)
            return _failed(failure.reason_code, failure.message)
        exi = entry["certificateInstallationRes"]
        if len(exi) > max_response_chars:
            return _failed("TooLarge", f"the pool's EXI response has {len(exi)} > {max_response_chars} characters")
        answer: dict[str, Any] = {"status": "Accepted", "exiResponse": exi}
        if ocpp_version == "2.1" and iso15118_schema_version == ISO20_NAMESPACE:
            remaining = _remaining_contracts(exi)
            if remaining is not None:
                answer["remainingContracts"] = remaining
        return answer

    # -- the exchange

    def _signed_contract_data(self, body: dict[str, str], deadline: float) -> list[Any]:
        """``getSignedContractData``'s ``emaidContent``; one new token and one retry after a 401."""
        bearer = self._bearer(deadline)
        status, answer = self._call("POST", self._endpoint, deadline, _MAX_ANSWER_BYTES, bearer, json=body)
        if status == 401 and self._credentials is not None:
            self._forget(bearer)
            bearer = self._bearer(deadline)
            status, answer = self._call("POST", self._endpoint, deadline, _MAX_ANSWER_BYTES, bearer, json=body)
        if status in (401, 403):
            raise _PoolFailure("PoolAuthFailed", f"the contract pool refused our access token: HTTP {status}")
        content = _emaid_content(answer)
        # 404 with an EXI body is the ISO-compliant "no contract" answer (alwaysReturnEXI): the car reads it.
        if status == 200 or (status == 404 and content):
            if not content:
                raise _PoolFailure("PoolError", "the contract pool's answer has no certificateInstallationRes")
            return content
        said = _error_text(answer)
        raise _PoolFailure("PoolError", f"the contract pool answered HTTP {status}{f' ({said})' if said else ''}")

    def _bearer(self, deadline: float) -> str | None:
        if self._credentials is None:
            return self._static.get_secret_value() if self._static is not None else None
        if not self._token_lock.acquire(timeout=max(0.0, deadline - self._now())):
            raise _PoolFailure("PoolTimeout", "no access token for the contract pool within the time allowed")
        try:
            cached = self._token
            if cached is not None and self._now() < cached.usable_until:
                return cached.value
            token = self._fetch_token(self._credentials, deadline)
            self._token = token if token.usable_until else None
            return token.value
        finally:
            self._token_lock.release()

    def _forget(self, value: str | None) -> None:
        with self._token_lock:
            if self._token is not None and self._token.value == value:  # not one another thread just fetched
                self._token = None

    def _fetch_token(self, credentials: _ClientCredentials, deadline: float) -> _Token:
        payload = {
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret.get_secret_value(),
            "audience": credentials.audience,
            "grant_type": "client_credentials",
        }
        fetched_at = self._now()
        status, answer = self._call("POST", credentials.token_url, deadline, _MAX_TOKEN_BYTES, None, json=payload)
        if status != 200:
            # what the endpoint says is logged and relayed: never with the secret in it, should it echo it
            said = _error_text(answer).replace(credentials.client_secret.get_secret_value(), "***")
            # OPCP accessToken: 401 wrong credentials, 400 missing or wrong information (the audience).
            code = "PoolAuthFailed" if status in (400, 401, 403) else "PoolError"
            raise _PoolFailure(
                code, f"the contract pool's token endpoint answered HTTP {status}{f' ({said})' if said else ''}"
            )
        value = answer.get("access_token") if isinstance(answer, dict) else None
        kind = answer.get("token_type", "Bearer") if isinstance(answer, dict) else None
        if not isinstance(value, str) or not value or any(ch.isspace() or not ch.isprintable() for ch in value):
            raise _PoolFailure("PoolAuthFailed", "the contract pool's token endpoint gave no access_token")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise _PoolFailure("PoolAuthFailed", "the contract pool's token endpoint gave no Bearer token")
        lifetime = answer.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            return _Token(value, 0.0)  # no lifetime said: use it for this request only
        margin = min(_EXPIRY_MARGIN, float(lifetime) / 10)
        return _Token(value, fetched_at + float(lifetime) - margin)

    def _call(
        self, method: str, url: str, deadline: float, limit: int, bearer: str | None, *, json: Any
    ) -> tuple[int, Any]:
        """Status and decoded JSON body (None if not JSON) of one request, read up to ``limit`` before ``deadline``."""
        remaining = deadline - self._now()
        if remaining <= 0:
            raise _PoolFailure("PoolTimeout", "the contract pool did not answer within the time allowed")
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if url.endswith(CCP_PATH):
            headers["alwaysReturnEXI"] = "true"  # a refusal as the EXI answer the car reads
        try:
            with self._client.stream(
                method, url, json=json, headers=headers, timeout=httpx.Timeout(remaining)
            ) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise _PoolFailure("PoolError", f"the contract pool answered more than {limit} bytes")
                    if self._now() > deadline:
                        raise httpx.ReadTimeout("deadline passed", request=response.request)
                status = response.status_code
        except httpx.TimeoutException:
            raise _PoolFailure("PoolTimeout", "the contract pool did not answer within the time allowed") from None
        except httpx.HTTPError as error:
            raise _PoolFailure("PoolUnreachable", f"contract pool unreachable: {type(error).__name__}") from None
        try:
            return status, _json_loads(bytes(body))
        except ValueError:
            return status, None


def _json_loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, RecursionError) as error:
        raise ValueError("not JSON") from error


def _emaid_content(answer: Any) -> list[dict[str, Any]]:
    """The usable ``emaidContent[].messageDef`` entries (a non-empty base64 ``certificateInstallationRes``)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("CCPResponse"), dict):
        return []
    content = answer["CCPResponse"].get("emaidContent")
    entries: list[dict[str, Any]] = []
    for item in content if isinstance(content, list) else []:
        message = item.get("messageDef") if isinstance(item, dict) else None
        exi = message.get("certificateInstallationRes") if isinstance(message, dict) else None
        if isinstance(exi, str) and exi:
            entries.append(message)  # type: ignore[arg-type]
    return entries


def _chosen(entries: list[dict[str, Any]], namespace: str, prioritized: Sequence[str] | None) -> dict[str, Any]:
    """The entry the car gets: -2 the first (one contract per installation); -20 the car's preferred."""
    if namespace == ISO20_NAMESPACE and prioritized:
        ranks = {_normalised(emaid): rank for rank, emaid in enumerate(prioritized)}
        ranked = sorted(
            enumerate(entries), key=lambda pair: (ranks.get(_normalised(pair[1].get("emaid")), len(ranks)), pair[0])
        )
        return ranked[0][1]
    return entries[0]


def _normalised(emaid: Any) -> str:
    return emaid.replace("-", "").upper() if isinstance(emaid, str) else ""


def _remaining_contracts(exi: str) -> int | None:
    """RemainingContractCertificateChains of a -20 CertificateInstallationRes; None if it does not decode."""
    try:
        message = exi20.decode_message(base64.b64decode(exi, validate=True))
    except (binascii.Error, ValueError, exi20.ExiError):
        log.warning("the contract pool's ISO 15118-20 response does not decode; remainingContracts left out")
        return None
    if not isinstance(message, messages20.CertificateInstallationRes):
        return None
    return message.remaining_contract_certificate_chains


def _error_text(answer: Any) -> str:
    """The reason of an OAuth2 (``error``, ``error_description``) or OPCP (``errorMessages``) error body."""
    if not isinstance(answer, dict):
        return ""
    parts: list[Any] = [answer.get("error"), answer.get("error_description")]
    messages = answer.get("errorMessages")
    if isinstance(messages, list):
        parts.extend(messages[:3])
    text = ": ".join(part for part in parts if isinstance(part, str) and part)
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]


def _http_url(url: str, what: str) -> str:
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"{what} must be http(s)")
    return url.rstrip("/")


def _secret(value: str | SecretStr | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value)


def _failed(reason_code: str, message: str) -> dict[str, Any]:
    return {"status": "Failed", "exiResponse": "", "statusInfo": {"reasonCode": reason_code, "additionalInfo": message}}
