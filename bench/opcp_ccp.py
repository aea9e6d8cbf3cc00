"""Benchmark: OPCP ``POST /opcp/v1/ccp/signedContractData`` (getSignedContractData) for concurrent CPO clients.

A real ``evpki serve`` process (``--workers``, default 2) on a fresh PKI (SQLite by default,
``--database-url`` for PostgreSQL in a throw-away database) answers ``--clients`` keep-alive
connections (``bench/loadgen.py``: closed loop, each connection sends its next request when the
answer is in) until ``--n`` answers are in, in two modes:

* **signing**: the pool has a contract for each vehicle and our provisioning service builds the
  answer on the spot (the car's OEM signature and chain checked, a contract certificate issued
  and stored, its key encrypted for the car, the CPS signature);
* **stored**: the pool holds CPS-signed contract data for each vehicle (``PUT
  /opcp/v1/ccp/signedContractData``, addSignedContractData, role ``cps``), and answers it with
  the car's SessionID put in after checking the car's request.

There are ``--clients`` CPO clients (``pki.opcp.add_client``), each with its own OAuth2 token
from ``/opcp/oauth/token``; request *i* carries client *i mod clients*'s token. Each mode has its
own vehicles (OEM provisioning certificates from our OEM CA; at least two per connection, so no
two requests in flight are for one contract) and the car's requests (CertificateInstallationReq,
EXI, signed) are made before the clock starts. Every answer must be 200 with an eMAID; a sample
is decoded and must carry ResponseCode OK. Closed loop: with C connections, latency ≈ C / rate
(Little's law), so a p99 of 50 ms at 50 clients needs ~1,000 answers/s.

``--profile K`` also runs K requests of each mode in this process through the ASGI app (httpx
``ASGITransport``, one at a time; the process CPU time per request, every thread's, is printed),
then the route's domain calls (CPU time, this thread) and once more under cProfile, and prints where the
time goes.

    .venv/bin/python bench/opcp_ccp.py [--n 1000] [--clients 50] [--workers 2] [--profile 200]
    .venv/bin/python bench/opcp_ccp.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Runnable as a plain script from any directory: the repository root holds ``pki``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import loadgen
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from rest_issuance import scratch_database

from api.app import run_upkeep
from pki import PKI, RequestIdentity, Settings
from pki.iso15118.ev import installation_request, vehicle_csr
from pki.iso15118.exi import decode_message
from pki.iso15118.messages import ResponseCode

PASSPHRASE = "evpki-bench-passphrase"
HOST = "127.0.0.1"
PATH = "/opcp/v1/ccp/signedContractData"
ISO2 = "urn:iso:15118:2:2013:MsgDef"
AIM_P99_MS = 50.0


def settings_for(home: Path, url: str, port: int) -> Settings:
    return Settings(
        home=home,
        database_url=url,
        key_passphrase=PASSPHRASE,  # type: ignore[arg-type]
        public_url=f"http://{HOST}:{port}",
    )


def make_vehicles(pki: PKI, prefix: str, count: int) -> list[tuple[str, x509.Certificate, ec.EllipticCurvePrivateKey]]:
    vehicles = []
    for i in range(count):
        pcid = f"WMI{prefix}{i:013d}"
        csr, key = vehicle_csr(pcid)
        issued = pki.certificates.issue(
            profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=pcid), actor="bench"
        )
        vehicles.append((pcid, x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode()), key))
    return vehicles


def car_requests(pki: PKI, vehicles: Sequence[tuple[str, x509.Certificate, ec.EllipticCurvePrivateKey]]) -> list[str]:
    roots = pki.cas.roots("V2GRootCertificate")
    return [
        base64.b64encode(installation_request(certificate, key, roots, os.urandom(8))).decode()
        for _, certificate, key in vehicles
    ]


@dataclass(frozen=True)
class Mode:
    pcids: list[str]
    requests: list[str]  # the car's base64 EXI CertificateInstallationReq, one per vehicle


@dataclass(frozen=True)
class Setup:
    modes: dict[str, Mode]
    cpo: list[tuple[str, str]]  # (client id, secret)
    cps: tuple[str, str]
    audience: str


def prepare(home: Path, url: str, port: int, vehicles: int, clients: int) -> Setup:
    """The PKI, the vehicles of both modes with a contract each, the CPO and CPS clients; the car's requests."""
    pki = PKI.open(settings_for(home, url, port))
    try:
        pki.cas.init(organization="Bench CSO GmbH", actor="bench")
        run_upkeep(pki)
        modes: dict[str, Mode] = {}
        for mode, prefix in (("signing", "1"), ("stored", "2")):
            cars = make_vehicles(pki, prefix, vehicles)
            for n, (pcid, _, _) in enumerate(cars):
                pki.contracts.add(emaid=f"DEABC{prefix}{n:08d}", pcid=pcid, actor="bench")
            modes[mode] = Mode([pcid for pcid, _, _ in cars], car_requests(pki, cars))
        cpo = [pki.opcp.add_client(name=f"cpo-{i}", role="cpo") for i in range(clients)]
        cps = pki.opcp.add_client(name="cps", role="cps")
        audience = pki.opcp.audience
    finally:
        pki.close()
    return Setup(modes, [(view.client_id, secret) for view, secret in cpo], (cps[0].client_id, cps[1]), audience)


def start_server(home: Path, url: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVPKI_")}
    env.update(
        EVPKI_HOME=str(home),
        EVPKI_DATABASE_URL=url,
        EVPKI_KEY_PASSPHRASE=PASSPHRASE,
        EVPKI_PUBLIC_URL=f"http://{HOST}:{port}",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    script = Path(sys.executable).with_name("evpki")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]
    argv = [*command, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    return loadgen.spawn(argv, env=env, log=log)


def token(http: httpx.Client, audience: str, client: tuple[str, str]) -> str:
    answer = http.post(
        "/opcp/oauth/token",
        json={
            "client_id": client[0],
            "client_secret": client[1],
            "audience": audience,
            "grant_type": "client_credentials",
        },
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def store_signed_data(http: httpx.Client, cpo: str, cps: str, pcids: Sequence[str], requests: Sequence[str]) -> None:
    """One signing answer per stored-mode vehicle, PUT back as the vehicle's stored signed contract data."""
    for pcid, request in zip(pcids, requests, strict=True):
        answer = http.post(
            PATH,
            json={"certificateInstallationReq": request, "xsdMsgDefNamespace": ISO2},
            headers={"Authorization": f"Bearer {cpo}"},
        )
        answer.raise_for_status()
        (entry,) = answer.json()["CCPResponse"]["emaidContent"]
        stored = http.put(
            PATH,
            json={
                "xsdMsgDefNamespace": ISO2,
                "emaid": entry["messageDef"]["emaid"],
                "pcid": pcid,
                "signedContractDataXML": entry["messageDef"]["certificateInstallationRes"],
            },
            headers={"Authorization": f"Bearer {cps}"},
        )
        if stored.status_code != 201:
            raise SystemExit(f"addSignedContractData: HTTP {stored.status_code} {stored.text}")


def encoded(requests: Sequence[str], tokens: Sequence[str]) -> list[bytes]:
    return [
        loadgen.http_request(
            "POST",
            PATH,
            json.dumps({"certificateInstallationReq": request, "xsdMsgDefNamespace": ISO2}).encode(),
            content_type="application/json",
            headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}", "Accept": "application/json"},
        )
        for i, request in enumerate(requests)
    ]


REFUSALS: list[bytes] = []  # the first answers without an eMAID (a FAILED EXI), to say why


def has_emaid(body: bytes) -> bool:
    if b'"emaid"' in body:
        return True
    if len(REFUSALS) < 3:
        REFUSALS.append(body)
    return False


def check_samples(result: loadgen.LoadResult) -> int:
    """Every sampled answer decodes to a CertificateInstallationRes with ResponseCode OK."""
    for _, body in result.samples:
        (entry,) = json.loads(body)["CCPResponse"]["emaidContent"]
        message = decode_message(base64.b64decode(entry["messageDef"]["certificateInstallationRes"]))
        if getattr(message.body, "response_code", None) is not ResponseCode.OK:
            raise SystemExit(f"{result.label}: an answer is not OK: {message.body}")
    return len(result.samples)


def profile_in_process(home: Path, url: str, port: int, requests: Sequence[str], cpo: tuple[str, str]) -> str:
    """K requests in this process, one at a time: through the ASGI app (timed), then the domain
    calls the route makes (``pki.opcp.authenticate`` and ``pki.opcp.ccp.signed_contract_data``) under
    cProfile -- the route is a threadpool handler, which a profiler of the event loop's thread misses."""
    from api.app import create_app

    pki = PKI.open(settings_for(home, url, port))

    async def through_asgi() -> tuple[float, str]:
        transport = httpx.ASGITransport(app=create_app(pki))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}:{port}") as http:
            answer = await http.post(
                "/opcp/oauth/token",
                json={
                    "client_id": cpo[0],
                    "client_secret": cpo[1],
                    "audience": pki.opcp.audience,
                    "grant_type": "client_credentials",
                },
            )
            access = str(answer.json()["access_token"])
            headers = {"Authorization": f"Bearer {access}"}
            body = {"certificateInstallationReq": requests[0], "xsdMsgDefNamespace": ISO2}
            await http.post(PATH, json=body, headers=headers)  # warm: keys loaded, caches filled
            started = time.perf_counter()
            cpu_started = time.process_time()
            for request in requests[1:]:
                answer = await http.post(
                    PATH, json={"certificateInstallationReq": request, "xsdMsgDefNamespace": ISO2}, headers=headers
                )
                if answer.status_code != 200:
                    raise SystemExit(f"profile: HTTP {answer.status_code} {answer.text}")
            cpu = time.process_time() - cpu_started
            return (time.perf_counter() - started) / max(1, len(requests) - 1), cpu / max(1, len(requests) - 1), access

    try:
        asgi, asgi_cpu, access = asyncio.run(through_asgi())
        started = time.thread_time()  # CPU time: the machine may be busy with other work
        for request in requests[1:]:
            principal = pki.opcp.authenticate(access)
            pki.opcp.ccp.signed_contract_data(principal, request, ISO2)
        domain = (time.thread_time() - started) / max(1, len(requests) - 1)
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        for request in requests[1:]:
            principal = pki.opcp.authenticate(access)
            pki.opcp.ccp.signed_contract_data(principal, request, ISO2)
        profiler.disable()
    finally:
        pki.close()
    for order, count in (("tottime", 22), ("cumulative", 30)):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(count)
        print(out.getvalue())
    return (
        f"in-process, one at a time: {asgi * 1000:.1f} ms per request through the ASGI app "
        f"({asgi_cpu * 1000:.1f} ms CPU of this process, every thread, the httpx client included); "
        f"{domain * 1000:.1f} ms CPU in the domain calls (then again under cProfile, CPU time)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="answers per mode (default 1000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent CPO clients / connections (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of evpki serve (default 2)")
    parser.add_argument("--database-url", help="a PostgreSQL server URL (a scratch database is made on it)")
    parser.add_argument("--profile", type=int, default=0, help="also profile K requests of each mode in-process")
    args = parser.parse_args(argv)
    vehicles = max(2 * args.clients, 20)
    home = Path(tempfile.mkdtemp(prefix="evpki-bench-ccp-"))
    port = loadgen.free_port()
    server: subprocess.Popen[bytes] | None = None
    try:
        with scratch_database(args.database_url) as pg_url:
            url = pg_url or f"sqlite:///{home / 'evpki.db'}"
            started = time.perf_counter()
            setup = prepare(home, url, port, vehicles, args.clients)
            print(
                f"setup: {2 * vehicles} vehicles and contracts, {args.clients} CPO clients in "
                f"{time.perf_counter() - started:.1f} s; database {'PostgreSQL' if pg_url else 'SQLite'}; "
                f"{args.workers} worker(s) on {loadgen.cpu_count()} core(s)"
            )
            server = running = start_server(home, url, port, args.workers, home / "server.log")
            health = loadgen.http_request("GET", "/healthz")
            loadgen.wait_until_serving(HOST, port, health, timeout=60, alive=lambda: running.poll() is None)
            with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60) as http:
                tokens = [token(http, setup.audience, client) for client in setup.cpo]
                cps = token(http, setup.audience, setup.cps)
                stored = setup.modes["stored"]
                store_signed_data(http, tokens[0], cps, stored.pcids, stored.requests)
            results = []
            for mode in ("signing", "stored"):
                pool = setup.modes[mode].requests
                requests = encoded([pool[i % len(pool)] for i in range(args.n)], tokens)
                result = loadgen.run_load(
                    HOST,
                    port,
                    requests,
                    label=f"{mode} ({'SQLite' if pg_url is None else 'PostgreSQL'})",
                    concurrency=args.clients,
                    count=args.n,
                    body_ok=has_emaid,
                    server_pids=lambda: loadgen.children(running.pid),
                    sample_every=37,
                )
                if result.error_count:
                    for body in REFUSALS:
                        (entry,) = json.loads(body)["CCPResponse"]["emaidContent"]
                        exi = base64.b64decode(entry["messageDef"]["certificateInstallationRes"])
                        print(f"{mode}: an answer without eMAID: {decode_message(exi).body}", file=sys.stderr)
                    raise SystemExit(f"{mode}: {result.error_count} errors: {dict(result.errors)}")
                check_samples(result)
                results.append(result)
            print()
            loadgen.print_results(results)
            for result in results:
                verdict = "meets" if result.p99 <= AIM_P99_MS else "misses"
                print(
                    f"{result.label}: p99 {result.p99:.1f} ms {verdict} the {AIM_P99_MS:.0f} ms aim; "
                    f"closed loop: {args.clients} clients / {result.rate:.0f} per s = "
                    f"{args.clients / result.rate * 1000:.0f} ms per answer"
                )
            loadgen.stop(server)
            server: subprocess.Popen[bytes] | None = None
            if args.profile:
                for mode in ("signing", "stored"):
                    pool = setup.modes[mode].requests
                    print(f"\n== profile: {mode}")
                    requests = [pool[i % len(pool)] for i in range(args.profile + 1)]
                    print(profile_in_process(home, url, port, requests, setup.cpo[0]))
    finally:
        loadgen.stop(server)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
