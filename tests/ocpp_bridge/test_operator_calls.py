"""Operator-initiated calls through REST to a real ``ocpp`` station on the bridge (OCPP 1.6, 2.0.1, 2.1).

The operator files a call with ``POST /api/v1/stations/{id}/…``; the bridge (polling the database)
sends it to the connected station in the station's own message names; the station's answer comes
back in the response (``?wait``) and stays with the call (``GET …/calls``). Cases follow OCTT:
TC_M_01-05 (install), TC_M_12-19 (retrieve), TC_M_20 (delete, hash data as reported), TC_A_11
(renewal triggered by the CSMS), 1.6 TC_079 (security log) in one flow per version; each case on its
own, step by step, is in tests/ocpp_bridge/conformance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography import x509

from api.app import create_app
from ocpp_bridge.core import CertificateService
from ocpp_bridge.gateway import Bridge
from ocpp_bridge.status import cert_id_of
from pki import PKI
from pki.operations.tokens import Role
from tests.ocpp_bridge.conformance.octt import OLD_PASSWORD, Api, walk_password_update, walk_profile_upgrade
from tests.ocpp_bridge.gateway_support import Station201, issue_station_credential, wait_until
from tests.ocpp_bridge.operator_stations import connected, operator_bridge_config, register

pytestmark = pytest.mark.asyncio
VERSIONS = ["1.6", "2.0.1", "2.1"]


@pytest.fixture
def live_pki(fresh_pki: PKI) -> PKI:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    return fresh_pki


@pytest.fixture(scope="module")
def server_certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One set of bridge server certificates for the module (every fresh PKI has the same CAs): no RSA
    key generation per test."""
    return tmp_path_factory.mktemp("bridge-certificates")


@pytest_asyncio.fixture
async def bridge(live_pki: PKI, server_certificates: Path) -> AsyncIterator[Bridge]:
    async with Bridge(live_pki, operator_bridge_config(server_certificates)) as running:
        yield running


@pytest_asyncio.fixture
async def api(live_pki: PKI) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The REST API as a process of its own would run it: its own PKI (engine) on the bridge's database."""
    other = PKI.open(live_pki.settings, clock=live_pki.clock, migrate=False)
    token = other.tokens.create(name="operator", role=Role.OPERATOR)[1]
    transport = httpx.ASGITransport(app=create_app(other))
    async with httpx.AsyncClient(transport=transport, base_url="http://evpki.test") as client:
        yield client, {"Authorization": f"Bearer {token}"}
    other.close()


def _slug(version: str) -> str:
    return version.replace(".", "")


async def _post(api: tuple[httpx.AsyncClient, dict[str, str]], path: str, body: dict[str, Any]) -> httpx.Response:
    client, headers = api
    return await client.post(path, json=body, headers=headers)


@pytest.mark.parametrize("version", VERSIONS)
async def test_install_retrieve_delete_trigger_and_security_log(
    bridge: Bridge, api: Any, tmp_path: Path, version: str
) -> None:
    """TC_M_01 / 1.6 TC_075_2, TC_M_12 / TC_M_20, TC_A_11 / 1.6 TC_074, 1.6 TC_079, each step asserted."""
    pki = bridge.pki
    identity, serial = f"CS-OPS-{_slug(version)}", f"SN-OPS-{_slug(version)}"
    credential = register(pki, tmp_path, identity, serial, version)
    pki.station_calls.set_root_sync(identity, mode="off")  # the operator manages roots by hand
    base = f"/api/v1/stations/{identity}"
    csms_type = "CentralSystemRootCertificate" if version == "1.6" else "CSMSRootCertificate"
    root = pki.cas.roots("CSMSRootCertificate")[0]
    async with connected(bridge, version, identity, serial, credential) as station:
        # M05: InstallCertificate of our CSMS root, in the version's own use name.
        answer = await _post(api, f"{base}/install-certificate?wait=20s", {"use": "CSMSRootCertificate"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "accepted" and answer.json()["result"] == {"status": "Accepted"}
        (install,) = station.got("InstallCertificate")
        assert install["certificateType"] == csms_type
        assert x509.load_pem_x509_certificate(install["certificate"].encode()) == root
        assert station.got("GetInstalledCertificateIds") == []  # root sync is off for this station

        # M03: the station reports the root under SHA-384; the answer is stored with the call.
        reported = cert_id_of(root, root, "SHA384")
        station.inventory = [(csms_type, reported)]
        answer = await _post(api, f"{base}/installed-certificates?wait=20s", {"types": [csms_type]})
        assert answer.status_code == 200, answer.text
        stored = answer.json()["result"]
        entries = stored.get("certificateHashData") or [
            e["certificateHashData"] for e in stored["certificateHashDataChain"]
        ]
        assert entries == [reported]
        assert station.got("GetInstalledCertificateIds")[-1] == (
            {"certificateType": csms_type} if version == "1.6" else {"certificateType": [csms_type]}
        )

        # M04.FR.07: DeleteCertificate with exactly the hash data (and algorithm) the station reported.
        answer = await _post(api, f"{base}/delete-certificate?wait=20s", {"caId": "cso-root"})
        assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text
        assert station.got("DeleteCertificate") == [{"certificateHashData": reported}]

        # A02: the operator triggers renewal; the station's CSR is answered and its certificate delivered.
        answer = await _post(api, f"{base}/trigger?wait=20s", {"message": "SignChargingStationCertificate"})
        assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text
        if version == "1.6":
            assert station.got("ExtendedTriggerMessage") == [{"requestedMessage": "SignChargePointCertificate"}]
        else:
            assert station.got("TriggerMessage") == [{"requestedMessage": "SignChargingStationCertificate"}]
        await wait_until(station.signed.is_set)
        assert station.sign_status in ("", "Accepted")

        # N01 / TC_079: GetLog SecurityLog to the operator's URL, requestId = the call's id.
        answer = await _post(api, f"{base}/security-log?wait=20s", {"remoteLocation": "https://logs.example.com/up"})
        assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text
        call_id = answer.json()["id"]
        (get_log,) = station.got("GetLog")
        assert get_log == {
            "logType": "SecurityLog",
            "requestId": call_id,
            "log": {"remoteLocation": "https://logs.example.com/up"},
        }
        await wait_until(station.reported.is_set)
        client, headers = api
        listed = (await client.get(f"{base}/calls/{call_id}", headers=headers)).json()
        assert [n["status"] for n in listed["notifications"]] == ["Uploading", "Uploaded"]

    history = (await client.get(f"{base}/calls", headers=headers)).json()["calls"]
    operator = [c for c in history if c["origin"] == "operator"]
    assert [c["status"] for c in operator] == ["accepted"] * 5
    assert all(c["ocppVersion"] == version and c["requestedBy"] == "token:operator" for c in operator)


async def test_a_2_1_station_takes_a_new_basic_auth_password_only_once_accepted(bridge: Bridge, api: Any) -> None:
    """A01 in 2.1 (1.6 and 2.0.1: the conformance cases, tests/ocpp_bridge/conformance)."""
    await walk_password_update(bridge, Api(*api), "2.1")


async def test_a_call_filed_while_offline_goes_out_on_connect_and_an_expired_one_never(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    pki = bridge.pki
    identity, serial = "CS-OFFLINE", "SN-OFFLINE"
    credential = register(pki, tmp_path, identity, serial, "2.0.1")
    pki.station_calls.set_root_sync(identity, mode="off")
    base = f"/api/v1/stations/{identity}"
    # Nobody answers in time: 202 with the stored call.
    queued = await _post(api, f"{base}/install-certificate?wait=30ms", {"use": "V2GRootCertificate"})
    assert queued.status_code == 202 and queued.json()["status"] == "pending", queued.text
    expiring = await _post(api, f"{base}/trigger?ttl=1h", {"message": "SignV2GCertificate"})
    assert expiring.status_code == 202
    pki.clock.set(pki.clock.now() + dt.timedelta(hours=2))  # type: ignore[attr-defined]
    async with connected(bridge, "2.0.1", identity, serial, credential, boot=False) as station:
        client, headers = api
        waited = await client.get(f"{base}/calls/{queued.json()['id']}?wait=20s", headers=headers)
        assert waited.status_code == 200 and waited.json()["status"] == "accepted", waited.text
        assert [p["certificateType"] for p in station.got("InstallCertificate")] == ["V2GRootCertificate"]
        assert station.got("TriggerMessage") == []
    assert pki.station_calls.get(identity, expiring.json()["id"]).status == "expired"


async def test_a_callerror_is_recorded_and_the_call_is_not_repeated(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    pki = bridge.pki
    identity, serial = "CS-CALLERROR", "SN-CALLERROR"
    credential = register(pki, tmp_path, identity, serial, "2.0.1")
    pki.station_calls.set_root_sync(identity, mode="off")
    # A station without a GetLog handler: the ocpp library answers CALLERROR NotImplemented.
    async with connected(bridge, "2.0.1", identity, serial, credential, station_class=Station201):
        answer = await _post(
            api, f"/api/v1/stations/{identity}/security-log?wait=20s", {"remoteLocation": "https://l.example.com/"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "error"
    assert answer.json()["result"]["errorCode"] == "NotImplemented"
    assert pki.deliveries.pending(identity) == []


async def test_root_reconciliation_after_boot_is_on_by_default_and_switchable(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    pki = bridge.pki
    identity, serial = "CS-ROOTSYNC", "SN-ROOTSYNC"
    credential = register(pki, tmp_path, identity, serial, "2.0.1")
    async with connected(bridge, "2.0.1", identity, serial, credential) as station:
        await wait_until(lambda: bool(station.got("GetInstalledCertificateIds")))
    client, headers = api
    switched = await client.put(f"/api/v1/stations/{identity}/root-sync", json={"mode": "off"}, headers=headers)
    assert switched.status_code == 200 and switched.json() == {
        "stationId": identity,
        "mode": "off",
        "delaySeconds": None,
    }
    async with connected(bridge, "2.0.1", identity, serial, credential) as station:
        # An operator call after the boot answer shows the boot follow-ups are done: none was an inventory.
        answer = await _post(api, f"/api/v1/stations/{identity}/trigger?wait=20s", {"message": "v2g"})
        assert answer.status_code == 200, answer.text
        assert station.got("GetInstalledCertificateIds") == []


@pytest.mark.parametrize("listener", [None, "combined"])
async def test_a_2_1_security_profile_upgrade_takes_effect_when_the_station_reconnects_on_it(
    bridge: Bridge, api: Any, tmp_path: Path, listener: str | None
) -> None:
    """A05 in 2.1 (1.6 TC_083 and 2.0.1 TC_A_19: the conformance cases)."""
    await walk_profile_upgrade(bridge, Api(*api), tmp_path, "2.1", listener)


async def test_a_delayed_root_sync_leaves_the_inventory_out_of_the_boot_follow_ups(fresh_pki: PKI) -> None:
    service = CertificateService(fresh_pki)
    fresh_pki.stations.add(identity="CS-DELAY", serial="SN-DELAY")
    assert [f.action for f in service.on_boot("2.0.1", "CS-DELAY")] == ["GetInstalledCertificateIds"]
    fresh_pki.station_calls.set_root_sync("CS-DELAY", mode=None, delay=30)
    assert service.on_boot("2.0.1", "CS-DELAY") == ()  # the session asks for the inventory 30 s later
    assert service.root_sync("CS-DELAY") == (True, 30.0)
    assert [f.action for f in service.root_inventory("2.0.1", "CS-DELAY")] == ["GetInstalledCertificateIds"]
    fresh_pki.station_calls.set_root_sync("CS-DELAY", mode="off")
    assert service.root_sync("CS-DELAY") == (False, 0.0)


async def test_failed_install_failed_delete_and_nothing_installed_are_recorded_as_answered(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    """TC_M_05 (install Failed), TC_M_21 (delete NotFound / Failed), TC_M_19 (none found)."""
    pki = bridge.pki
    identity, serial = "CS-FAILS", "SN-FAILS"
    credential = register(pki, tmp_path, identity, serial, "2.1")
    pki.station_calls.set_root_sync(identity, mode="off")
    base = f"/api/v1/stations/{identity}"
    async with connected(bridge, "2.1", identity, serial, credential) as station:
        station.answers.update({"InstallCertificate": "Failed", "DeleteCertificate": "NotFound"})
        installed = await _post(api, f"{base}/install-certificate?wait=20s", {"use": "OEMRootCertificate"})
        assert (installed.json()["status"], installed.json()["result"]) == ("failed", {"status": "Failed"})
        assert station.got("InstallCertificate")[0]["certificateType"] == "OEMRootCertificate"
        deleted = await _post(
            api, f"{base}/delete-certificate?wait=20s", {"caId": "oem-root", "hashAlgorithm": "SHA512"}
        )
        assert (deleted.json()["status"], deleted.json()["result"]) == ("answered", {"status": "NotFound"})
        assert station.got("DeleteCertificate")[0]["certificateHashData"]["hashAlgorithm"] == "SHA512"
        listed = await _post(api, f"{base}/installed-certificates?wait=20s", {})
        assert (listed.json()["status"], listed.json()["result"]["status"]) == ("answered", "NotFound")
        assert station.got("GetInstalledCertificateIds") == [{}]  # every type (M03.FR.02)


async def test_a_2x_upgrade_names_its_slot_and_address_or_queues_nothing(
    bridge: Bridge, api: Any, tmp_path: Path
) -> None:
    """A05 (2.x): without the configuration slot and a wss:// profile-3 address the request is refused."""
    pki = bridge.pki
    identity, serial = "CS-A05-NOSLOT", "SN-A05-NOSLOT"
    pki.stations.add(identity=identity, serial=serial, security_profile=2, password=OLD_PASSWORD)
    pki.stations.record_connection(identity, "2.0.1")
    issue_station_credential(pki, tmp_path, identity, serial, validity=dt.timedelta(days=365))
    for body, words in (({}, "configuration slot"), ({"slot": 2, "url": "ws://plain"}, "url")):
        refused = await _post(api, f"/api/v1/stations/{identity}/security-profile", body)
        assert refused.status_code == 400 and words in refused.text, refused.text
    assert pki.station_calls.list(identity) == []


async def test_a_refused_network_profile_goes_no_further(bridge: Bridge, api: Any, tmp_path: Path) -> None:
    """A05 (2.x): a station refusing the new network profile gets no priority change and no Reset, and the
    registry keeps its profile: it stays reachable on the connection it has."""
    pki = bridge.pki
    identity, serial = "CS-A05-REFUSED", "SN-A05-REFUSED"
    pki.stations.add(identity=identity, serial=serial, security_profile=2, password=OLD_PASSWORD)
    pki.stations.record_connection(identity, "2.0.1")
    pki.station_calls.set_root_sync(identity, mode="off")
    issue_station_credential(pki, tmp_path, identity, serial, validity=dt.timedelta(days=365))
    async with connected(bridge, "2.0.1", identity, serial, password=OLD_PASSWORD) as station:
        station.answers["SetNetworkProfile"] = "Rejected"
        body = {"slot": 1, "url": "wss://csms.example.test/ocpp"}
        answer = await _post(api, f"/api/v1/stations/{identity}/security-profile?wait=20s", body)
        assert answer.status_code == 200 and answer.json()["status"] == "rejected", answer.text
        assert [name for name, _ in station.calls] == ["SetNetworkProfile"]
    assert [c.action for c in pki.station_calls.list(identity)] == ["SetNetworkProfile"]
    view = pki.stations.get(identity)
    assert (view.security_profile, view.pending_security_profile) == (2, None)
