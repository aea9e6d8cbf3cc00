"""``/api/v1/stations/{id}/…`` without a bridge: what is stored for each version, what is refused, who may call."""

from __future__ import annotations

import json

import httpx
import pytest

from pki import PKI
from pki.operations.tokens import Role
from tests.api.conftest import bearer

pytestmark = pytest.mark.asyncio
PASSWORD = "a-new-password-0123456789"


def _station(pki: PKI, identity: str, version: str | None, profile: int = 3) -> None:
    password = "old-password-0123456" if profile == 2 else None
    pki.stations.add(identity=identity, serial=f"SN-{identity}", security_profile=profile, password=password)
    if version is not None:
        pki.stations.record_connection(identity, version)


async def test_a_call_is_stored_pending_and_202_when_nobody_answers(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    _station(fresh_pki, "CS-Q1", "2.1")
    answer = await client.post(
        "/api/v1/stations/CS-Q1/install-certificate?wait=20ms&ttl=1h",
        json={"use": "OEMRootCertificate"},
        headers=bearer(tokens[Role.OPERATOR]),
    )
    assert answer.status_code == 202, answer.text
    call = answer.json()
    assert (call["status"], call["action"], call["ocppVersion"], call["origin"]) == (
        "pending",
        "InstallCertificate",
        "2.1",
        "operator",
    )
    assert call["payload"]["certificateType"] == "OEMRootCertificate"
    assert call["expiresAt"] is not None
    listed = await client.get("/api/v1/stations/CS-Q1/calls", headers=bearer(tokens[Role.AUDITOR]))
    assert [c["id"] for c in listed.json()["calls"]] == [call["id"]]
    refused = await client.post(
        "/api/v1/stations/CS-Q1/trigger", json={"message": "v2g"}, headers=bearer(tokens[Role.AUDITOR])
    )
    assert refused.status_code == 403


async def test_each_version_gets_its_own_message_names(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    _station(fresh_pki, "CS-V16", "1.6")
    headers = bearer(tokens[Role.OPERATOR])

    async def post(route: str, body: dict[str, object]) -> dict[str, object]:
        answer = await client.post(f"/api/v1/stations/CS-V16/{route}", json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    v2g = await post("install-certificate", {"use": "V2GRootCertificate"})
    assert v2g["action"] == "DataTransfer"  # 1.6 PnC application note: the 2.0.1 message wrapped
    inner = json.loads(v2g["payload"]["data"])  # type: ignore[index]
    assert v2g["payload"]["messageId"] == "InstallCertificate" and inner["certificateType"] == "V2GRootCertificate"  # type: ignore[index]
    csms = await post("install-certificate", {"use": "CSMSRootCertificate"})
    assert csms["payload"]["certificateType"] == "CentralSystemRootCertificate"  # type: ignore[index]
    trigger = await post("trigger", {"message": "SignChargingStationCertificate"})
    assert (trigger["action"], trigger["payload"]) == (
        "ExtendedTriggerMessage",
        {"requestedMessage": "SignChargePointCertificate"},
    )
    hash_data = {
        "hashAlgorithm": "SHA512",
        "issuerNameHash": "ab" * 64,
        "issuerKeyHash": "cd" * 64,
        "serialNumber": "1F",
    }
    delete = await post("delete-certificate", {"hashData": hash_data})
    assert delete["payload"] == {"certificateHashData": hash_data}
    log = await post("security-log", {"remoteLocation": "ftp://logs.example.com/", "retries": 1})
    assert log["payload"]["requestId"] == log["id"] and log["payload"]["logType"] == "SecurityLog"  # type: ignore[index]
    one_type = await client.post("/api/v1/stations/CS-V16/installed-certificates", json={}, headers=headers)
    assert one_type.status_code == 400 and "exactly one type" in one_type.json()["detail"]


async def test_a_pending_password_is_never_shown(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    _station(fresh_pki, "CS-PW", "2.0.1", profile=2)
    headers = bearer(tokens[Role.OPERATOR])
    answer = await client.post("/api/v1/stations/CS-PW/password", json={"password": PASSWORD}, headers=headers)
    assert answer.status_code == 202 and PASSWORD not in answer.text
    assert answer.json()["payload"]["setVariableData"][0]["attributeValue"] == "********"
    listed = await client.get("/api/v1/stations/CS-PW/calls", headers=headers)
    assert PASSWORD not in listed.text
    # A second request supersedes the first; a random password when none is given.
    again = await client.post("/api/v1/stations/CS-PW/password", json={}, headers=headers)
    assert again.status_code == 202
    statuses = [
        c["status"] for c in (await client.get("/api/v1/stations/CS-PW/calls", headers=headers)).json()["calls"]
    ]
    assert statuses == ["pending", "superseded"]
    assert fresh_pki.stations.check_password("CS-PW", "old-password-0123456") is not None  # nothing accepted yet


@pytest.mark.parametrize(
    ("identity", "route", "body", "status", "words"),
    [
        ("CS-NEVER", "trigger", {"message": "station"}, 400, "never connected"),
        ("CS-R3", "security-profile", {}, 409, "already uses security profile 3"),
        ("CS-R2", "security-profile", {}, 422, "no valid station certificate"),
        ("CS-R3", "install-certificate", {"use": "CSMSRootCertificate", "caId": "cso-sub"}, 422, "sub-CA"),
        ("CS-R3", "install-certificate", {"use": "MORootCertificate", "trusted": "nope"}, 404, "nope"),
        ("CS-R3", "trigger", {"message": "SignV2G20Certificate"}, 400, "no SignV2G20Certificate"),
        ("CS-R3", "delete-certificate", {}, 400, "name the certificate"),
    ],
)
async def test_refused_requests_queue_nothing(
    client: httpx.AsyncClient,
    fresh_pki: PKI,
    tokens: dict[Role, str],
    identity: str,
    route: str,
    body: dict[str, object],
    status: int,
    words: str,
) -> None:
    _station(fresh_pki, "CS-NEVER", None)
    _station(fresh_pki, "CS-R3", "2.0.1")
    _station(fresh_pki, "CS-R2", "2.0.1", profile=2)
    answer = await client.post(f"/api/v1/stations/{identity}/{route}", json=body, headers=bearer(tokens[Role.OPERATOR]))
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert fresh_pki.station_calls.list(identity) == []


async def test_a_never_connected_station_takes_a_call_for_the_version_named(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    _station(fresh_pki, "CS-NEW", None)
    answer = await client.post(
        "/api/v1/stations/CS-NEW/installed-certificates",
        json={"ocppVersion": "2.0.1"},
        headers=bearer(tokens[Role.OPERATOR]),
    )
    assert answer.status_code == 202 and answer.json()["payload"] == {}, answer.text  # 2.x: every type
    missing = await client.get("/api/v1/stations/CS-NEW/calls/999999", headers=bearer(tokens[Role.OPERATOR]))
    assert missing.status_code == 404


async def test_a_csms_over_rest_delivers_operator_calls_with_their_effects(
    client: httpx.AsyncClient, fresh_pki: PKI, tokens: dict[Role, str]
) -> None:
    """A CSMS on the REST handlers gets pending operator calls after boot and reports the answer as for any
    delivery; an accepted password still reaches the registry (A01)."""
    _station(fresh_pki, "CS-REST", "2.0.1", profile=2)
    fresh_pki.station_calls.set_root_sync("CS-REST", mode="off")
    filed = fresh_pki.station_calls.rotate_password("CS-REST", PASSWORD)
    boot = await client.post(
        "/api/v1/ocpp/2.0.1/boot", json={"stationId": "CS-REST"}, headers=bearer(tokens[Role.CSMS])
    )
    (follow_up,) = boot.json()["followUps"]
    assert follow_up["action"] == "SetVariables" and follow_up["deliveryId"] == filed.id
    item = follow_up["payload"]["setVariableData"][0]
    answer = {
        "setVariableResult": [
            {"attributeStatus": "Accepted", "component": item["component"], "variable": item["variable"]}
        ]
    }
    reported = await client.post(
        "/api/v1/ocpp/2.0.1/results",
        json={"stationId": "CS-REST", "followUp": follow_up, "response": answer},
        headers=bearer(tokens[Role.CSMS]),
    )
    assert reported.status_code == 200, reported.text
    assert fresh_pki.station_calls.get("CS-REST", filed.id).status == "accepted"
    assert fresh_pki.stations.check_password("CS-REST", PASSWORD) is not None
