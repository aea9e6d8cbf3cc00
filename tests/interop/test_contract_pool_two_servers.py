"""The two halves of OPCP meet: one evpki's bridge is a CPO client of another evpki's contract pool.

The pool is a real ``evpki serve`` process on 127.0.0.1 with its own data directory and database
(PostgreSQL with ``EVPKI_TEST_DATABASE_URL``, else SQLite). It knows a foreign OEM's vehicle through
its Provisioning Certificate Pool (the OEM root trusted by the pool operator over the RCP, the
chain published by the OEM over the PCP), holds two contracts for the vehicle's PCID and has a CPO
client made with ``evpki opcp client add``. The bridge is a second PKI (another data directory and database), whose
:class:`~ocpp_bridge.core.CertificateService` is configured only by ``EVPKI_CONTRACT_POOL_*``
environment variables: it fetches an OAuth2 token from the pool and forwards the station's
Get15118EVCertificate. The independent car (tests/interop/car.py: EXIficient for every EXI byte,
plain ``cryptography`` for the CPS signature, the key agreement and the chains) opens the answer.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ocpp_bridge.core import CertificateService
from pki import PKI
from tests.conftest import TEST_PASSPHRASE, _copy_database, drop_database, make_settings
from tests.interop import car
from tests.interop.exificient import Exificient
from tests.interop.test_two_servers import _EVPKI, _free_port, _stop, _wait_until_up
from tests.opcp_support import OemChain, b64, foreign_oem_chain

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
    pytest.mark.skipif(not _EVPKI.exists(), reason="the evpki console script is not installed in this environment"),
]

ISO2 = "urn:iso:15118:2:2013:MsgDef"
SESSION = bytes.fromhex("5051525354555657")
PCID = "WMI00000000770001"
DEFAULT_EMAID, OTHER_EMAID = "DEABCC000000771", "DEABCC000000772"


@dataclass(frozen=True)
class Pool:
    url: str  # the OPCP base: http://127.0.0.1:<port>/opcp
    client_id: str
    client_secret: str
    vehicle: OemChain
    pki: PKI  # the pool's own PKI, opened in this process too (its roots are what the car trusts)


def _env(pki: PKI, public_url: str) -> dict[str, str]:
    settings = pki.settings
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("EVPKI_")},
        "EVPKI_HOME": str(settings.home),
        "EVPKI_DATABASE_URL": settings.resolved_database_url,
        "EVPKI_KEY_PASSPHRASE": TEST_PASSPHRASE,
        "EVPKI_PUBLIC_URL": public_url,  # the OPCP audience is <public URL>/opcp
    }


def _opcp_client(env: dict[str, str], cwd: Path, role: str, name: str) -> dict[str, str]:
    """``evpki opcp client add --json``: the client's id and its secret (shown this once)."""
    done = subprocess.run(
        [str(_EVPKI), "opcp", "client", "add", "--role", role, "--name", name, "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _token(http: httpx.Client, audience: str, client: dict[str, str]) -> dict[str, str]:
    answer = http.post(
        "/oauth/token",
        json={
            "client_id": client["clientId"],
            "client_secret": client["clientSecret"],
            "audience": audience,
            "grant_type": "client_credentials",
        },
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture
def pool(fresh_pki: PKI, tmp_path: Path) -> Iterator[Pool]:
    """The pool process on the fresh PKI's data and database, set up over its own OPCP API; stopped at teardown."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(fresh_pki, base)
    workdir = tmp_path / "pool-cwd"  # no stray evpki.toml from the repository
    workdir.mkdir()
    vehicle = foreign_oem_chain(PCID, valid_days=3650)
    fresh_pki.contracts.add(emaid=OTHER_EMAID, pcid=PCID, priority=5, concurrent=True)
    fresh_pki.contracts.add(emaid=DEFAULT_EMAID, pcid=PCID, priority=1, concurrent=True)
    cpo = _opcp_client(env, workdir, "cpo", "bridge-cpo")  # as an operator makes it
    admin, oem = (
        {"clientId": view.client_id, "clientSecret": secret}
        for view, secret in (
            fresh_pki.opcp.add_client(name="pool-operator", role="admin"),
            fresh_pki.opcp.add_client(name="foreign-oem", role="oem", wmis=["WMI"]),
        )
    )
    log = tmp_path / "pool.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(_EVPKI), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, base, log)
        audience = f"{base}/opcp"
        with httpx.Client(base_url=audience, timeout=30) as http:
            trusted = http.put(
                "/v1/root/rootCerts",
                json={"caCertificate": b64(vehicle.root), "rootType": "OEM"},
                headers=_token(http, audience, admin),
            )
            assert trusted.status_code == 200, trusted.text
            published = http.put("/v1/oem/provCerts", json=vehicle.body(), headers=_token(http, audience, oem))
            assert published.status_code == 200, published.text
        yield Pool(audience, cpo["clientId"], cpo["clientSecret"], vehicle, fresh_pki)
        assert process.poll() is None, f"the pool exited:\n{log.read_text(errors='replace')}"
    finally:
        _stop(process)


@pytest.fixture
def bridge(
    tmp_path: Path, _fresh_template: tuple[Path, str | None], monkeypatch: pytest.MonkeyPatch, pool: Pool
) -> Iterator[Callable[[str], CertificateService]]:
    """The bridge's own PKI (another data directory and database), configured only by ``EVPKI_CONTRACT_POOL_*``:
    a function from the client secret to a new :class:`CertificateService` over it."""
    home = tmp_path / "bridge"
    home.mkdir()
    url, name = _copy_database(_fresh_template, home)
    monkeypatch.setenv("EVPKI_CONTRACT_POOL_URL", pool.url)  # token URL and audience: their defaults from it
    monkeypatch.setenv("EVPKI_CONTRACT_POOL_CLIENT_ID", pool.client_id)
    opened: list[PKI] = []

    def service(secret: str) -> CertificateService:
        monkeypatch.setenv("EVPKI_CONTRACT_POOL_CLIENT_SECRET", secret)
        opened.append(PKI.open(make_settings(home, url)))  # reads the environment
        return CertificateService(opened[-1])

    yield service
    for instance in opened:
        instance.close()
    drop_database(name)


def _request(exificient: Exificient, pool: Pool) -> dict[str, str]:
    roots = [(r.issuer.rfc4514_string(), r.serial_number) for r in pool.pki.cas.roots("V2GRootCertificate")]
    exi = car.build_installation_request(
        exificient, pool.vehicle.vehicle.public_bytes(Encoding.DER), pool.vehicle.vehicle_key, roots, SESSION
    )
    return {"iso15118SchemaVersion": ISO2, "action": "Install", "exiRequest": base64.b64encode(exi).decode()}


def test_a_station_gets_the_pools_contract_and_the_car_installs_it(
    pool: Pool, bridge: Callable[[str], CertificateService], exificient: Exificient
) -> None:
    payload = _request(exificient, pool)
    service = bridge(pool.client_secret)
    for version in ("2.0.1", "2.1"):
        answer = service.handle(version, "CS-POOL-1", "Get15118EVCertificate", payload).response
        assert answer["status"] == "Accepted", answer
        installed = car.open_response(
            exificient,
            base64.b64decode(answer["exiResponse"]),
            pool.vehicle.vehicle_key,
            SESSION,
            sa_roots=pool.pki.cas.roots("V2GRootCertificate"),
            contract_roots=[pool.pki.cas.chain("mo-sub2")[-1]],
            expected_body="CertificateInstallationRes",
            now=dt.datetime.now(dt.UTC),  # the pool process signs on the real clock
        )
        # the default contract (priority 1 before 5); open_response has checked the decrypted key
        # against the contract certificate and its CN against the eMAID
        assert installed.emaid == DEFAULT_EMAID
        assert installed.response_code.startswith("OK")
    # The pool answered, not the bridge (both PKIs are copies of one template hierarchy): the pool's
    # audit names the CPO client that asked; the bridge's registry has no contract for the vehicle.
    actors = {record.actor for record in pool.pki.audit.records(after=0, limit=10_000)}
    assert "opcp:bridge-cpo" in actors
    assert service.pki.contracts.list(pcid=PCID) == []


def test_a_wrong_client_secret_is_failed_with_the_reason(
    pool: Pool, bridge: Callable[[str], CertificateService], exificient: Exificient
) -> None:
    payload = _request(exificient, pool)
    wrong = "not-" + pool.client_secret
    answer = bridge(wrong).handle("2.0.1", "CS-POOL-2", "Get15118EVCertificate", payload).response
    assert answer["status"] == "Failed" and answer["exiResponse"] == ""
    assert answer["statusInfo"]["reasonCode"] == "PoolAuthFailed"
    assert "token endpoint answered HTTP 401" in answer["statusInfo"]["additionalInfo"]
    assert wrong not in json.dumps(answer)
    # nothing crashed: the pool still answers, and the right secret still works through a new bridge
    assert httpx.get(pool.url.removesuffix("/opcp") + "/healthz", timeout=10).status_code == 200
    again = bridge(pool.client_secret).handle("2.0.1", "CS-POOL-2", "Get15118EVCertificate", payload).response
    assert again["status"] == "Accepted", again
