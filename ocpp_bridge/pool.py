"""Get15118EVCertificate forwarded to an OPCP-style contract certificate pool instead of answered locally.

OCPP M01/M02: the CSMS relays the EV's EXI ``CertificateInstallationReq`` to a secondary actor. A
commercial pool (Hubject OPCP "CCP" interface) takes ``POST {ccp}/v1/ccp/signedContractData`` with
``{"certificateInstallationReq": <base64 EXI>, "xsdMsgDefNamespace": <schema>}`` and a bearer token, and
returns the signed ``CertificateInstallationRes`` under ``emaidContent[0].messageDef``. ISO 15118-2
allows the whole round trip about 5 s (4.5 s in the Ed. 3 timing table), so the pool gets < 4 s
and anything short of a usable answer is OCPP ``Failed`` with ``exiResponse = ""`` (pitfall P-10).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

__all__ = ["ContractPool"]

log = logging.getLogger("evpki.ocpp.pool")
_PATH = "/v1/ccp/signedContractData"


class ContractPool:
    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = 3.5, transport: httpx.BaseTransport | None = None
    ) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("the contract pool URL must be http(s)")
        self._endpoint = url.rstrip("/") + _PATH
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=min(timeout, 3.9), headers=headers, transport=transport)

    def close(self) -> None:
        self._client.close()

    def get_15118_ev_certificate(
        self, *, iso15118_schema_version: str, action: str, exi_request: str, max_response_chars: int
    ) -> dict[str, Any]:
        """The Get15118EVCertificate.conf payload: the pool's EXI answer, or Failed with a reason."""
        if action != "Install":
            # OPCP's signedContractData answers CertificateInstallationReq only.
            return _failed("NotSupported", "the contract pool only installs contracts (action Install)")
        body = {"certificateInstallationReq": exi_request, "xsdMsgDefNamespace": iso15118_schema_version}
        try:
            response = self._client.post(self._endpoint, json=body)
        except httpx.HTTPError as error:
            log.warning("contract pool unreachable: %s", error)
            return _failed("PoolUnreachable", f"contract pool unreachable: {type(error).__name__}")
        if response.status_code != 200:
            return _failed("PoolError", f"contract pool answered HTTP {response.status_code}")
        try:
            exi = response.json()["emaidContent"][0]["messageDef"]["certificateInstallationRes"]
        except (ValueError, KeyError, IndexError, TypeError):
            return _failed("PoolError", "the contract pool's answer has no certificateInstallationRes")
        if not isinstance(exi, str) or not exi:
            return _failed("PoolError", "the contract pool's certificateInstallationRes is empty")
        if len(exi) > max_response_chars:
            return _failed("TooLarge", f"the pool's EXI response has {len(exi)} > {max_response_chars} characters")
        return {"status": "Accepted", "exiResponse": exi}


def _failed(reason_code: str, message: str) -> dict[str, Any]:
    return {"status": "Failed", "exiResponse": "", "statusInfo": {"reasonCode": reason_code, "additionalInfo": message}}
