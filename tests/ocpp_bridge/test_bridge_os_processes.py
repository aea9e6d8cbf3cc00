"""Several bridge processes on one database behave as one -- real OS processes this time.

Two ``evpki bridge`` processes and one ``evpki serve`` API process run on one database (PostgreSQL
with ``EVPKI_TEST_DATABASE_URL``, else one SQLite file), configured by ``EVPKI_*`` environment
variables and sharing nothing but the database and the key directory. Test stations are the
``ocpp`` library's ChargePoint over mutual TLS (or Basic auth, profile 2). Proved here:

* an operator call filed by REST on the API process reaches the station on the bridge process
  that holds its connection (PostgreSQL: NOTIFY; SQLite: within the poll interval);
* a station reconnecting to the other bridge process gets its pending calls there;
* refused logins counted on one bridge process hold on the other (HTTP 429);
* a renewal trigger sent by one bridge process is not repeated by the other within the cool-down.

Nothing waits for a fixed time: every wait ends on an event, with a generous bound only for failures
(the latency a call actually takes is measured by bench/operator_calls.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from ocpp.routing import after, on
from websockets.exceptions import InvalidStatus

from pki import PKI
from tests.conftest import TEST_PASSPHRASE, _copy_database, drop_database, make_settings
from tests.ocpp_bridge.gateway_support import (
    SUBPROTOCOL,
    WAIT,
    Credential,
    basic_auth,
    client_context,
    issue_station_credential,
    wait_until,
)
from tests.ocpp_bridge.operator_stations import Operator201

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT_S = 90  # only a bound for a process that never comes up
_LOGIN_BUDGET = 2  # refused attempts per address and minute, across the bridge processes
PASSWORD = "right-password-0123456"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: dict[str, int]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        for port in self.ports.values():
            while True:
                if self.process.poll() is not None:
                    pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self._tail()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{self.name} did not listen on {port}:\n{self._tail()}")
                    time.sleep(0.1)

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass
class Cluster:
    pki: PKI  # this test's own view of the shared database (as a fourth process would have)
    api: str
    bridges: tuple[dict[str, int], dict[str, int]]  # each bridge process's ports: mtls, basic
    token: str


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, _fresh_template: tuple[Path, str | None]) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("bridge-processes")
    url, name = _copy_database(_fresh_template, home)
    pki = PKI.open(make_settings(home, url))  # the real clock: the processes use it too
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EVPKI_HOME": str(home),
        "EVPKI_DATABASE_URL": url,
        "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE,
        "EVPKI_OCPP_ROOT_SYNC": "false",  # no reconciliation calls: the stations see only what a test sends
    }
    workdir = home / "cwd"  # no stray evpki.toml from the repository
    workdir.mkdir()
    processes: list[_Process] = []

    def spawn(name: str, arguments: list[str], ports: dict[str, int]) -> _Process:
        log = home / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *arguments],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        spawned = _Process(name, process, log, ports)
        processes.append(spawned)
        return spawned

    try:
        api_port = _free_port()
        spawn("api", ["serve", "--host", "127.0.0.1", "--port", str(api_port), "--log-level", "warning"], {})
        bridges = []
        for index in (1, 2):
            ports = {"mtls": _free_port(), "basic": _free_port()}
            arguments = ["bridge", "--host", "127.0.0.1", "--port", str(ports["mtls"])]
            arguments += ["--basic-port", str(ports["basic"]), "--server-cert-dir", str(home / f"bridge-{index}")]
            arguments += ["--renewal-interval", "0.2", "--call-poll-interval", "0.5", "--call-timeout", str(WAIT)]
            arguments += ["--login-failures-per-minute", str(_LOGIN_BUDGET), "--log-level", "info"]
            spawn(f"bridge-{index}", arguments, ports)
            bridges.append(ports)
        api = processes[0]
        api.ports = {"http": api_port}
        for process in processes:
            process.wait_until_listening()
        token = pki.tokens.create(name=f"processes-{uuid.uuid4().hex[:8]}", role="admin")[1]
        yield Cluster(pki, f"http://127.0.0.1:{api_port}", (bridges[0], bridges[1]), token)
    finally:
        for process in processes:
            process.stop()
        pki.close()
        drop_database(name)


class TriggerRefusingStation(Operator201):
    """Answers a renewal trigger with Rejected, so the renewal stays due and only the cool-down holds it back."""

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, **kwargs: Any) -> Any:
        return self._result.TriggerMessage(status="Rejected")

    @after("TriggerMessage")
    def after_trigger(self, **kwargs: Any) -> None:
        return None


@contextlib.asynccontextmanager
async def station_on(
    cluster: Cluster,
    ports: dict[str, int],
    identity: str,
    credential: Credential | None = None,
    *,
    password: str | None = None,
    station_class: type[Operator201] = Operator201,
    local_address: str | None = None,
) -> AsyncIterator[Operator201]:
    """A 2.0.1 test station connected to one bridge process (mutual TLS, or Basic auth with ``password``)."""
    port = ports["mtls" if password is None else "basic"]
    extra: dict[str, Any] = {"local_addr": (local_address, 0)} if local_address else {}
    async with websockets.connect(
        f"wss://127.0.0.1:{port}/ocpp/{identity}",
        subprotocols=[SUBPROTOCOL["2.0.1"]],  # type: ignore[list-item]
        ssl=client_context(cluster.pki, credential),
        server_hostname="localhost",
        additional_headers=basic_auth(identity, password) if password is not None else None,
        open_timeout=WAIT,
        **extra,
    ) as connection:
        root = cluster.pki.cas.roots("CSMSRootCertificate")[0]
        station = station_class(identity, connection, serial=f"SN-{identity}", root=root)
        task = asyncio.create_task(station.start())
        try:
            assert (await station.boot()).status == "Accepted"
            yield station
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def register(cluster: Cluster, tmp_path: Path, identity: str, *, validity: dt.timedelta) -> Credential:
    cluster.pki.stations.add(identity=identity, serial=f"SN-{identity}", security_profile=3)
    credential = issue_station_credential(
        cluster.pki, tmp_path, identity, f"SN-{identity}", validity=validity, name=identity
    )
    cluster.pki.stations.record_connection(identity, "2.0.1")  # the version the REST calls are built for
    return credential


async def file_install(cluster: Cluster, identity: str, use: str) -> int:
    """File an InstallCertificate through the API process; the call's id."""
    async with httpx.AsyncClient(base_url=cluster.api, timeout=WAIT) as http:
        response = await http.post(
            f"/api/v1/stations/{identity}/install-certificate",
            json={"use": use},
            headers={"Authorization": f"Bearer {cluster.token}"},
        )
    assert response.status_code in (200, 202), response.text
    return int(response.json()["id"])


async def call_status(cluster: Cluster, identity: str, call_id: int) -> str:
    async with httpx.AsyncClient(base_url=cluster.api, timeout=WAIT) as http:
        response = await http.get(
            f"/api/v1/stations/{identity}/calls/{call_id}", headers={"Authorization": f"Bearer {cluster.token}"}
        )
    assert response.status_code in (200, 202), response.text  # 202: still pending
    return str(response.json()["status"])


def _installed(station: Operator201) -> list[str]:
    return [payload["certificateType"] for payload in station.got("InstallCertificate")]


async def test_a_call_filed_through_the_api_process_reaches_the_station_on_either_bridge_process(
    cluster: Cluster, tmp_path: Path
) -> None:
    identity = "CS-OS-CALL"
    credential = register(cluster, tmp_path, identity, validity=dt.timedelta(days=365))
    for ports in cluster.bridges:
        async with station_on(cluster, ports, identity, credential) as station:
            call_id = await file_install(cluster, identity, "MORootCertificate")
            await wait_until(lambda station=station: _installed(station) == ["MORootCertificate"])

            async def answered(call_id: int = call_id) -> bool:
                return await call_status(cluster, identity, call_id) == "accepted"

            await wait_until(answered)


async def test_a_station_reconnecting_to_the_other_bridge_process_gets_its_pending_calls_there(
    cluster: Cluster, tmp_path: Path
) -> None:
    identity = "CS-OS-MOVE"
    credential = register(cluster, tmp_path, identity, validity=dt.timedelta(days=365))
    first, second = cluster.bridges
    async with station_on(cluster, first, identity, credential) as station:
        pass  # connected once to the first process, then gone
    call_id = await file_install(cluster, identity, "V2GRootCertificate")  # filed while it is offline
    assert await call_status(cluster, identity, call_id) == "pending"
    async with station_on(cluster, second, identity, credential) as station:
        await wait_until(lambda: _installed(station) == ["V2GRootCertificate"])

        async def answered() -> bool:
            return await call_status(cluster, identity, call_id) == "accepted"

        await wait_until(answered)


async def _login_status(cluster: Cluster, ports: dict[str, int], identity: str, password: str, address: str) -> int:
    """The HTTP status of a profile-2 login from ``address`` (101: let in)."""
    try:
        async with station_on(cluster, ports, identity, password=password, local_address=address):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def _minute() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


async def test_refused_logins_on_one_bridge_process_hold_on_the_other(cluster: Cluster) -> None:
    identity = "CS-OS-LOGIN"
    cluster.pki.stations.add(identity=identity, serial="SN-OS-LOGIN", security_profile=2, password=PASSWORD)
    cluster.pki.stations.record_connection(identity, "2.0.1")
    first, second = cluster.bridges
    # The budget counts per remote address and calendar minute: a sequence that straddles a minute
    # proves nothing, and is made again from a fresh address (the other tests connect from .1).
    for attempt in range(3):
        address, started = f"127.0.0.{2 + attempt}", _minute()
        wrong = [
            await _login_status(cluster, first, identity, "wrong-password-000000", address)
            for _ in range(_LOGIN_BUDGET)
        ]
        # The budget of 2 was spent on the first process; the second refuses even the right password, unchecked.
        last = await _login_status(cluster, second, identity, PASSWORD, address)
        if _minute() == started:
            break
    assert (wrong, last) == ([401] * _LOGIN_BUDGET, 429)
    # The same password from another address is still checked, and let in: it is the budget that refused.
    assert await _login_status(cluster, second, identity, PASSWORD, "127.0.0.1") == 101


async def test_a_renewal_trigger_sent_by_one_bridge_process_is_not_repeated_by_the_other(
    cluster: Cluster, tmp_path: Path
) -> None:
    renew = "SignChargingStationCertificate"
    soon = dt.timedelta(days=10)  # within ocpp_renew_before_station (30 days): renewal is due
    moving, control = "CS-OS-RENEW", "CS-OS-RENEW-CONTROL"
    credentials = {identity: register(cluster, tmp_path, identity, validity=soon) for identity in (moving, control)}
    first, second = cluster.bridges

    def triggers(station: Operator201) -> list[str]:
        return [payload["requestedMessage"] for payload in station.got("TriggerMessage")]

    async with station_on(cluster, first, moving, credentials[moving], station_class=TriggerRefusingStation) as one:
        await wait_until(lambda: triggers(one) == [renew])  # the first process's renewal check, cool-down claimed
    async with (
        station_on(cluster, second, moving, credentials[moving], station_class=TriggerRefusingStation) as again,
        station_on(cluster, second, control, credentials[control], station_class=TriggerRefusingStation) as other,
    ):
        # The control station connected after the moving one: the renewal pass that triggered it went over
        # both (a pass takes the connected stations in the order they came).
        await wait_until(lambda: triggers(other) == [renew])
        # Whatever that pass queued for the moving station goes out before a call filed now.
        await file_install(cluster, moving, "MORootCertificate")
        await wait_until(lambda: _installed(again) == ["MORootCertificate"])
        assert triggers(again) == []
