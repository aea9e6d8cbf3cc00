"""The OCPP answer to Get15118EVCertificate, whichever ISO 15118 edition produced it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pki.iso15118.messages import ResponseCode
from pki.iso15118.messages20 import ResponseCode as ResponseCode20

__all__ = ["ProvisioningResult"]


@dataclass(frozen=True, slots=True)
class ProvisioningResult:
    """The OCPP answer and what a log or an operator wants to know about it."""

    status: Literal["Accepted", "Failed"]
    exi_response: str  # base64 EXI; "" when Failed
    response_code: ResponseCode | ResponseCode20 | None  # the ISO code inside exi_response; None when Failed
    reason: str | None  # why it is not a plain success
    reason_code: str | None = None  # OCPP StatusInfo.reasonCode (≤ 20 characters)
    emaid: str | None = None
    contract_certificate_serial: str | None = None
    contract_certificate_issuer: str | None = None
    # ISO 15118-20 only: RemainingContractCertificateChains (OCPP 2.1 remainingContracts, M01.FR.07).
    remaining_contracts: int | None = None

    def to_ocpp(self) -> dict[str, Any]:
        """The Get15118EVCertificate.conf payload (2.0.1 / 2.1 field names)."""
        payload: dict[str, Any] = {"status": self.status, "exiResponse": self.exi_response}
        if self.remaining_contracts is not None:
            payload["remainingContracts"] = self.remaining_contracts
        if self.reason is not None:
            payload["statusInfo"] = {"reasonCode": self.reason_code or "Failed", "additionalInfo": self.reason[:512]}
        return payload
