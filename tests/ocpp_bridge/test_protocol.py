"""Schema validation both ways (the ``ocpp`` package's schemas) and 1.6 Plug & Charge in DataTransfer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocpp_bridge.core import PNC_VENDOR_ID, CertificateService, FollowUp, Handled, OcppCallError
from pki import PKI
from tests.ocpp_bridge.conftest import SECC_ID, chain_of, secc_csr, station_csr

_HASH = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "00" * 32,
    "issuerKeyHash": "00" * 32,
    "serialNumber": "1",
    "responderURL": "http://127.0.0.1/",
}


@pytest.mark.parametrize(
    ("version", "action", "payload", "code"),
    [
        ("2.0.1", "SignCertificate", {}, "ProtocolError"),
        ("2.0.1", "SignCertificate", {"csr": 5}, "TypeConstraintViolation"),
        ("2.0.1", "SignCertificate", {"csr": "x" * 5501}, "TypeConstraintViolation"),
        ("2.0.1", "SignCertificate", {"csr": "x", "extra": 1}, "FormatViolation"),
        ("2.0.1", "SignCertificate", {"csr": "x", "requestId": 1}, "FormatViolation"),  # 2.1 only
        ("1.6", "SignCertificate", {"csr": "x", "certificateType": "V2GCertificate"}, "FormationViolation"),
        ("2.0.1", "SignCertificate", {"csr": "x", "certificateType": "V2G20Certificate"}, "FormatViolation"),
        ("2.0.1", "GetCertificateStatus", {"ocspRequestData": {"hashAlgorithm": "SHA256"}}, "ProtocolError"),
        ("2.1", "GetCertificateStatus", {"ocspRequestData": {**_HASH, "hashAlgorithm": "sha256"}}, "FormatViolation"),
        ("2.0.1", "Heartbeat", {}, "NotSupported"),  # OCPP-J: recognised, not supported here
        ("2.0.1", "GetCertificateChainStatus", {}, "NotImplemented"),  # 2.1 only: not known in 2.0.1
        ("1.6", "Get15118EVCertificate", {}, "NotImplemented"),
        ("3.0", "SignCertificate", {"csr": "x"}, "NotSupported"),
    ],
)
def test_schema_violations_are_call_errors(
    service: CertificateService, version: str, action: str, payload: dict[str, Any], code: str
) -> None:
    with pytest.raises(OcppCallError) as raised:
        service.handle(version, "CS-X", action, payload)
    assert raised.value.code == code


def test_a_response_of_ours_that_breaks_the_schema_is_an_internal_error(
    service: CertificateService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(service._handlers, "SignCertificate", lambda v, s, p: Handled({"status": "Maybe"}))
    with pytest.raises(OcppCallError) as raised:
        service.handle("2.0.1", "CS-X", "SignCertificate", {"csr": "x"})
    assert raised.value.code == "InternalError"


def test_a_station_answer_that_breaks_the_schema_is_refused_and_the_delivery_stays_pending(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, serial = station
    (follow_up,) = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups
    with pytest.raises(OcppCallError) as raised:
        service.record_result("2.0.1", identity, follow_up, {"status": "Maybe"})
    assert raised.value.code == "FormatViolation"
    assert fresh_pki.deliveries.get(follow_up.delivery_id).status == "pending"  # type: ignore[arg-type]


def test_owns_exactly_the_certificate_messages(service: CertificateService) -> None:
    assert service.owns("2.0.1", "SignCertificate") and service.owns("2.1", "GetCertificateChainStatus")
    assert not service.owns("2.0.1", "GetCertificateChainStatus") and not service.owns("1.6", "GetCertificateStatus")
    assert not service.owns("2.0.1", "BootNotification")
    assert service.owns("1.6", "DataTransfer", {"vendorId": PNC_VENDOR_ID, "messageId": "SignCertificate"})
    assert not service.owns("1.6", "DataTransfer", {"vendorId": "com.example", "messageId": "SignCertificate"})
    assert not service.owns("1.6", "DataTransfer") and not service.owns(
        "2.0.1", "DataTransfer", {"vendorId": PNC_VENDOR_ID}
    )


def _pnc(message_id: str, inner: dict[str, Any] | None) -> dict[str, Any]:
    payload = {"vendorId": PNC_VENDOR_ID, "messageId": message_id}
    if inner is not None:
        payload["data"] = json.dumps(inner)
    return payload


def test_1_6_plug_and_charge_sign_certificate_round_trip(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, _ = station
    request = _pnc("SignCertificate", {"csr": secc_csr(), "certificateType": "V2GCertificate"})
    handled = service.handle("1.6", identity, "DataTransfer", request)
    assert handled.response["status"] == "Accepted"
    assert isinstance(handled.response["data"], str)  # pitfall P-15: a JSON *string*
    assert json.loads(handled.response["data"]) == {"status": "Accepted"}
    (follow_up,) = handled.follow_ups
    assert follow_up.action == "DataTransfer" and follow_up.payload["messageId"] == "CertificateSigned"
    inner = json.loads(follow_up.payload["data"])
    assert inner["certificateType"] == "V2GCertificate"
    leaf = chain_of(FollowUp("CertificateSigned", inner))[0]
    assert SECC_ID in leaf.subject.rfc4514_string()
    # Reconnect before answering: the pending delivery is re-sent wrapped again.
    (pending,) = service.pending(identity, version="1.6")
    assert pending == follow_up
    answer = {"status": "Accepted", "data": json.dumps({"status": "Accepted"})}
    assert service.record_result("1.6", identity, follow_up, answer) == ()
    assert fresh_pki.deliveries.get(follow_up.delivery_id).status == "accepted"  # type: ignore[arg-type]


def test_1_6_plug_and_charge_other_messages(service: CertificateService, station: tuple[str, str]) -> None:
    identity, _ = station
    status = service.handle(
        "1.6",
        identity,
        "DataTransfer",
        _pnc(
            "GetCertificateStatus",
            {
                "ocspRequestData": {
                    "hashAlgorithm": "SHA256",
                    "issuerNameHash": "00" * 32,
                    "issuerKeyHash": "00" * 32,
                    "serialNumber": "1",
                    "responderURL": "ftp://nowhere/",
                }
            },
        ),
    ).response
    assert status["status"] == "Accepted" and json.loads(status["data"])["status"] == "Failed"
    for message_id in ("Authorize", "Whatever"):
        answer = service.handle("1.6", identity, "DataTransfer", _pnc(message_id, {})).response
        assert answer == {"status": "UnknownMessageId"}
    with pytest.raises(OcppCallError) as raised:
        service.handle("1.6", identity, "DataTransfer", {**_pnc("SignCertificate", None), "data": "{not json"})
    assert raised.value.code == "FormationViolation"
    with pytest.raises(OcppCallError) as raised:
        service.handle("1.6", identity, "DataTransfer", _pnc("SignCertificate", {"csr": 1}))
    assert raised.value.code == "TypeConstraintViolation"
    assert (
        service.handle("1.6", identity, "DataTransfer", _pnc("SignCertificate", {"csr": secc_csr()[:5]})).response[
            "status"
        ]
        == "Accepted"
    )  # the DataTransfer is; the wrapped SignCertificate is Rejected
