"""The OCPP-J CALLERROR the handler core raises (OCPP-J §4.2.3 error codes)."""

from __future__ import annotations

__all__ = ["OCPP_ERROR_CODES", "OcppCallError"]

OCPP_ERROR_CODES = frozenset(
    {
        "FormatViolation",
        "FormationViolation",  # OCPP 1.6-J spelling
        "GenericError",
        "InternalError",
        "MessageTypeNotSupported",
        "NotImplemented",
        "NotSupported",
        "OccurrenceConstraintViolation",
        "OccurenceConstraintViolation",  # OCPP 1.6-J spelling
        "PropertyConstraintViolation",
        "ProtocolError",
        "RpcFrameworkError",
        "SecurityError",
        "TypeConstraintViolation",
    }
)


class OcppCallError(Exception):
    """Becomes an OCPP-J CALLERROR with ``code`` and ``description`` (≤ 255 characters on the wire)."""

    def __init__(self, code: str, description: str) -> None:
        if code not in OCPP_ERROR_CODES:
            raise ValueError(f"{code!r} is not an OCPP-J error code")
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
