"""The OCPP 2.0.1 / 2.1 ``Authorize`` handler for Plug & Charge (C07): idToken type eMAID with a contract chain.

The core (:mod:`ocpp_bridge.core`) owns an Authorize only when it is Plug & Charge: idToken type
``eMAID`` and a contract chain (``certificate``) or its OCSP data (``iso15118CertificateHashData``).
Every other Authorize (RFID cards, eMAID without certificate data) is the CSMS's own business, and
so is every Authorize in proxy mode (the gateway relays it to the upstream CSMS).

The decision is :meth:`pki.iso15118.Contracts.authorize`; this module turns the payload into its
inputs and the decision into ``idTokenInfo.status`` + ``certificateStatus``. Foreign certificates
are checked by OCSP over HTTP (:class:`~ocpp_bridge.ocsp_client.ContractOcsp`).
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp_bridge.ocsp_client import ContractOcsp
from pki import PKI, InvalidInput
from pki.iso15118 import AuthorizationDecision, HashEntry

__all__ = ["is_pnc_authorize", "pnc_authorize"]

log = logging.getLogger("evpki.ocpp.authorize")


def is_pnc_authorize(payload: dict[str, Any] | None) -> bool:
    """idToken type eMAID with ``certificate`` or ``iso15118CertificateHashData`` (C07)."""
    if not isinstance(payload, dict):
        return False
    token = payload.get("idToken")
    if not isinstance(token, dict) or token.get("type") != "eMAID":
        return False
    return bool(payload.get("certificate")) or bool(payload.get("iso15118CertificateHashData"))


def pnc_authorize(pki: PKI, ocsp_client: ContractOcsp, station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The AuthorizeResponse payload for a schema-valid Plug & Charge AuthorizeRequest."""
    id_token = str(payload["idToken"]["idToken"])
    certificate = payload.get("certificate")
    try:
        hash_data = [HashEntry.from_ocpp(entry) for entry in payload.get("iso15118CertificateHashData") or ()]
        decision: AuthorizationDecision = pki.contracts.authorize(
            certificate=certificate, hash_data=hash_data, id_token=id_token, foreign=ocsp_client
        )
    except InvalidInput as error:
        # Hash data that names no certificate: nothing can be validated (C07.FR.17).
        log.info("Authorize from %s: %s", station_id, error.message)
        return {"idTokenInfo": {"status": "Invalid"}, "certificateStatus": "CertChainError"}
    log.info(
        "Authorize from %s: %s / %s (%s)",
        station_id,
        decision.certificate_status.value,
        decision.id_token_status.value,
        decision.reason,
    )
    return {
        "idTokenInfo": {"status": decision.id_token_status.value},
        "certificateStatus": decision.certificate_status.value,
    }
