"""Payload validation against the JSON schemas the ``ocpp`` package ships, per version and direction.

The same Draft-4 validators the ``ocpp`` library uses on its own wire (``ocpp.messages.get_validator``),
with the library's mapping of a schema failure to an OCPP-J error code (OCPP-J §4.2.3; 1.6 keeps its
historical spelling ``FormationViolation``). An action without a schema for the version is
``NotImplemented``.
"""

from __future__ import annotations

from typing import Any, Literal

from jsonschema.exceptions import ValidationError as SchemaValidationError
from jsonschema.exceptions import best_match
from ocpp.messages import MessageType, get_validator

from ocpp_bridge.errors import OcppCallError

__all__ = ["has_schema", "validate_request", "validate_response"]

Direction = Literal["request", "response"]


def _validator(version: str, action: str, direction: Direction) -> Any:
    kind = MessageType.Call if direction == "request" else MessageType.CallResult
    try:
        return get_validator(kind, action, version)
    except (OSError, ValueError):
        raise OcppCallError("NotImplemented", f"OCPP {version} has no {action} {direction}") from None


def has_schema(version: str, action: str) -> bool:
    try:
        _validator(version, action, "request")
    except OcppCallError:
        return False
    return True


def _code(version: str, error: SchemaValidationError) -> str:
    if error.validator in ("type", "maxLength"):
        return "TypeConstraintViolation"
    if error.validator == "required":
        return "ProtocolError"
    # OCPP 1.6-J §4.2.3 spells it "FormationViolation"; 2.x "FormatViolation".
    return "FormationViolation" if version == "1.6" else "FormatViolation"


def _validate(version: str, action: str, payload: Any, direction: Direction) -> None:
    if not isinstance(payload, dict):
        raise OcppCallError("FormationViolation" if version == "1.6" else "FormatViolation", "payload is not an object")
    validator = _validator(version, action, direction)
    error = best_match(validator.iter_errors(payload))  # the error the library itself would raise
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "payload"
        raise OcppCallError(_code(version, error), f"{action} {direction} {where}: {error.message}"[:512])


def validate_request(version: str, action: str, payload: Any) -> None:
    """Raise :class:`OcppCallError` unless ``payload`` is a valid ``action`` CALL payload for ``version``."""
    _validate(version, action, payload, "request")


def validate_response(version: str, action: str, payload: Any) -> None:
    """Raise :class:`OcppCallError` unless ``payload`` is a valid ``action`` CALLRESULT payload for ``version``."""
    _validate(version, action, payload, "response")
