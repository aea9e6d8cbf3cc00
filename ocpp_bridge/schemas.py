"""Payload validation against the JSON schemas the ``ocpp`` package ships, per version and direction.

The same Draft-4 validators the ``ocpp`` library uses on its own wire (``ocpp.messages.get_validator``),
with the library's mapping of a schema failure to an OCPP-J error code (OCPP-J §4.2.3; 1.6 keeps its
historical spelling ``FormationViolation``). An action without a schema for the version is
``NotImplemented``.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

from jsonschema.exceptions import ValidationError as SchemaValidationError
from jsonschema.exceptions import best_match
from ocpp.messages import MessageType, get_validator

from ocpp_bridge.errors import OcppCallError

__all__ = ["has_schema", "validate_request", "validate_response"]

Direction = Literal["request", "response"]

# Validation is a pure function of (version, action, direction, payload), and the small payloads
# repeat (``{"status": "Accepted"}`` answers every CertificateSigned): those known valid are
# remembered by their canonical JSON, so that jsonschema walks each one once. A payload larger
# than _MEMO_MAX_CHARS (a CSR, a certificate chain) is rarely seen twice and is always validated.
_MEMO_MAX_CHARS = 512
_MEMO_SIZE = 4096


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
    try:
        # sort_keys: one text per payload whatever its member order; 1, 1.0 and true stay distinct.
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        text = None  # not plain JSON: jsonschema decides, nothing is remembered
    if text is not None and len(text) <= _MEMO_MAX_CHARS:
        _valid_text(version, action, direction, text)
    else:
        _check(version, action, payload, direction)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _valid_text(version: str, action: str, direction: Direction, text: str) -> None:
    """:func:`_check` of a payload's canonical JSON; only a valid one is remembered (a refusal raises)."""
    _check(version, action, json.loads(text), direction)


def _check(version: str, action: str, payload: dict[str, Any], direction: Direction) -> None:
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
