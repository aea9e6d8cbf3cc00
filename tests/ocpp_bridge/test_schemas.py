"""Payload validation against the ``ocpp`` package's schemas, and the memo of small valid payloads."""

from __future__ import annotations

from typing import Any

import pytest

from ocpp_bridge import schemas
from ocpp_bridge.errors import OcppCallError


@pytest.fixture(autouse=True)
def _empty_memo() -> None:
    schemas._valid_text.cache_clear()


def _count_walks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Count how often jsonschema is asked to walk a payload."""
    walks: list[Any] = []
    original = schemas._validator

    def counting(version: str, action: str, direction: schemas.Direction) -> Any:
        validator = original(version, action, direction)

        class Counting:
            def iter_errors(self, payload: Any) -> Any:
                walks.append(payload)
                return validator.iter_errors(payload)

        return Counting()

    monkeypatch.setattr(schemas, "_validator", counting)
    return walks


def test_a_small_valid_payload_is_walked_once_whatever_its_member_order(monkeypatch: pytest.MonkeyPatch) -> None:
    walks = _count_walks(monkeypatch)
    for _ in range(3):
        schemas.validate_response("2.0.1", "CertificateSigned", {"status": "Accepted"})
    schemas.validate_response("2.0.1", "CertificateSigned", {"statusInfo": {"reasonCode": "X"}, "status": "Rejected"})
    schemas.validate_response("2.0.1", "CertificateSigned", {"status": "Rejected", "statusInfo": {"reasonCode": "X"}})
    assert len(walks) == 2


def test_an_invalid_payload_is_refused_every_time_even_next_to_a_remembered_valid_one() -> None:
    schemas.validate_response("2.0.1", "CertificateSigned", {"status": "Accepted"})
    for _ in range(2):
        with pytest.raises(OcppCallError) as refused:
            schemas.validate_response("2.0.1", "CertificateSigned", {"status": "Maybe"})
        assert refused.value.code == "FormatViolation"
    with pytest.raises(OcppCallError) as wrong_type:
        schemas.validate_response("2.0.1", "CertificateSigned", {"status": 1})
    assert wrong_type.value.code == "TypeConstraintViolation"


def test_the_memo_keeps_version_action_and_direction_apart() -> None:
    schemas.validate_response("2.0.1", "CertificateSigned", {"status": "Accepted"})
    with pytest.raises(OcppCallError):  # the same payload is not a valid CertificateSigned *request*
        schemas.validate_request("2.0.1", "CertificateSigned", {"status": "Accepted"})
    with pytest.raises(OcppCallError) as refused:  # nor a 1.6 DataTransfer.conf with an unknown status
        schemas.validate_response("1.6", "DataTransfer", {"status": "Maybe"})
    assert refused.value.code == "FormationViolation"


def test_large_payloads_are_always_walked_and_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    walks = _count_walks(monkeypatch)
    chain = "-----BEGIN CERTIFICATE-----\n" + "A" * 1000 + "\n-----END CERTIFICATE-----\n"
    for _ in range(2):
        schemas.validate_request("2.0.1", "CertificateSigned", {"certificateChain": chain})
    assert len(walks) == 2
    for index in range(schemas._MEMO_SIZE + 50):
        payload = {"status": "Accepted", "customData": {"vendorId": f"v{index}"}}
        schemas.validate_response("2.0.1", "CertificateSigned", payload)
    assert schemas._valid_text.cache_info().currsize == schemas._MEMO_SIZE
