"""Benchmark: one contract provisioning call, in-process on one core, with a per-phase breakdown.

For ISO 15118-20 (P-521 cars with ECDH P-521, Ed448 cars with ECDH X448) and, as the no-regression
check, ISO 15118-2: ``--n`` vehicles per kind, each with its own OEM provisioning certificate and
contract, send one signed CertificateInstallationReq (built before the clock starts: the car's
work), answered by :meth:`pki.PKI.contracts.provision` one after another, the process pinned to
CPU 0 (``os.sched_setaffinity``). Per call it records, with ``time.perf_counter_ns``:

* the wall time of the whole call, and the thread's CPU time (``time.thread_time_ns``): on a shared
  machine the wall time also holds the time other processes had the core (preemption), which the
  CPU time does not;
* the phases, each the time spent in it *less* the phases nested inside it: ``decode`` (base64 → EXI
  → message), ``verify`` (the car's signature, its chain and revocation), ``choose`` (OEM seed check,
  CA directory, contract lookup and ranking, CPS chain: the read transaction), ``issue`` (contract
  key, CSR, issuance checks, certificate building and signing), ``encrypt`` (the key wrap), ``sign``
  (the CPS signature), ``encode`` (response → EXI), ``persist`` (the write transaction: certificate
  row, audit record, contract link), ``other`` (the rest of the call);
* the garbage collector's pauses inside the call (``gc.callbacks``) and involuntary context switches.

``--repeat`` runs the whole measurement that many times (new vehicles each time) and prints every
run; the summary is the best run (lowest wall p99), since on a shared machine the slow runs say more
about the neighbours than about the code. ``--gc default`` leaves the collector as Python starts it,
``--gc server`` applies what ``evpki serve`` does after start-up (:func:`pki.runtime.settle_gc`),
after the warm-up calls, as a server would have by the time it answers cars.

    PYTHONPATH=. .venv/bin/python bench/provisioning_phases.py [--n 300] [--repeat 3] [--gc server]
        [--kinds p521,ed448,iso2]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import gc
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import contract_provisioning as base  # the vehicles and requests of the provisioning bench

from pki import PKI, Settings
from pki.ca import ISO15118_20_HIERARCHY, issuance
from pki.iso15118 import cps, ev, exi20, provisioning, provisioning20
from pki.iso15118.messages import MSG_DEF_NAMESPACE
from pki.iso15118.messages20 import COMMON_MESSAGES_NAMESPACE as ISO20_NAMESPACE
from pki.runtime import settle_gc

PHASES = ("decode", "verify", "choose", "issue", "encrypt", "sign", "encode", "persist", "other")
KINDS = {"p521": "-20 P-521 (ECDH P-521)", "ed448": "-20 Ed448 (ECDH X448)", "iso2": "-2 P-256 (ECDH P-256)"}
WARM_UP = 5


class PhaseClock:
    """Self time per phase: a phase's time less the phases that ran inside it."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(PHASES, 0)
        self._stack: list[list[int]] = []  # [start, time of nested phases]

    def reset(self) -> None:
        self.totals = dict.fromkeys(PHASES, 0)

    def wrap(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [time.perf_counter_ns(), 0]
            self._stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter_ns() - frame[0]
                self._stack.pop()
                self.totals[phase] += elapsed - frame[1]
                if self._stack:
                    self._stack[-1][1] += elapsed

        return timed


@contextmanager
def instrumented(clock: PhaseClock) -> Iterator[None]:
    """Wrap the pipeline's stages where the pipeline looks them up (module attributes), then restore them."""
    targets = [
        (provisioning20, "_decode", "decode"),
        (provisioning20, "_verified_car", "verify"),
        (provisioning20, "_provision", "choose"),
        (provisioning20, "_issue", "issue"),
        (provisioning20, "encrypt_contract_key", "encrypt"),
        (provisioning20, "sign_fragment", "sign"),
        (exi20, "encode_message", "encode"),
        (provisioning, "decode_request", "decode"),
        (provisioning, "verify_installation", "verify"),
        (provisioning, "_provision", "choose"),
        (provisioning, "issue", "issue"),
        (provisioning, "contract_csr", "issue"),
        (cps, "encrypt_contract_key", "encrypt"),
        (cps, "sign_elements", "sign"),
        (cps, "encode_message", "encode"),
        (issuance, "_store", "persist"),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in targets]
    for module, name, phase in targets:
        setattr(module, name, clock.wrap(phase, getattr(module, name)))
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


class GcWatch:
    def __init__(self) -> None:
        self.paused_ns = 0
        self.full = 0
        self._start = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
        else:
            self.paused_ns += time.perf_counter_ns() - self._start
            self.full += info["generation"] == 2


@dataclass
class Run:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    gc: list[float] = field(default_factory=list)
    preempted: list[int] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    full_collections: int = 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _requests(pki: PKI, kind: str, count: int, tag: str) -> list[str]:
    if kind == "iso2":
        roots = pki.cas.roots("V2GRootCertificate")
        requests = []
        for index in range(count):
            pcid = f"WMI{tag}{index:011d}"
            certificate, key = base._vehicle(pki, pcid)
            pki.contracts.add(emaid=f"DE{tag}{index:010d}", pcid=pcid, actor="bench")
            requests.append(base64.b64encode(ev.installation_request(certificate, key, roots, os.urandom(8))).decode())
        return requests
    root = pki.cas.chain("v2g20-root")[-1]
    requests = []
    for index in range(count):
        pcid = f"WTW{tag}{index:011d}"
        certificate, key = base._vehicle20(pki, pcid, kind)
        pki.contracts.add(emaid=f"DE{tag}{index:010d}", pcid=pcid, actor="bench")
        requests.append(base._request20(certificate, key, root))
    return requests


def measure(pki: PKI, kind: str, n: int, run_index: int, gc_mode: str, watch: GcWatch) -> Run:
    tag = f"{kind[:2].upper()}{run_index}"
    print(f"  preparing {n + WARM_UP} {KINDS[kind]} vehicles …", flush=True)
    requests = _requests(pki, kind, n + WARM_UP, tag)
    namespace = MSG_DEF_NAMESPACE if kind == "iso2" else ISO20_NAMESPACE

    def call(request: str) -> None:
        result = pki.contracts.provision(
            iso15118_schema_version=namespace, action="Install", exi_request=request, ocpp_version="2.1"
        )
        if result.status != "Accepted" or result.response_code is None or not result.response_code.ok:
            raise SystemExit(f"{kind} provisioning failed: {result.reason}")

    for request in requests[:WARM_UP]:
        call(request)
    if gc_mode == "server":
        settle_gc()
    clock = PhaseClock()
    run = Run()
    full_before = watch.full
    with instrumented(clock):
        for request in requests[WARM_UP:]:
            clock.reset()
            paused = watch.paused_ns
            switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
            start, cpu = time.perf_counter_ns(), time.thread_time_ns()
            call(request)
            cpu_ns, wall_ns = time.thread_time_ns() - cpu, time.perf_counter_ns() - start
            run.preempted.append(resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw - switches)
            run.wall.append(wall_ns / 1e6)
            run.cpu.append(cpu_ns / 1e6)
            run.gc.append((watch.paused_ns - paused) / 1e6)
            clock.totals["other"] = wall_ns - sum(v for p, v in clock.totals.items() if p != "other")
            for phase in PHASES:
                run.phases[phase].append(clock.totals[phase] / 1e6)
    run.full_collections = watch.full - full_before
    if gc_mode == "server":
        gc.unfreeze()  # the next run's warm-up freezes again
    return run


def _line(run: Run) -> str:
    return (
        f"wall p50 {percentile(run.wall, 0.5):6.2f}  p99 {percentile(run.wall, 0.99):6.2f}  "
        f"max {max(run.wall):7.2f} | cpu p50 {percentile(run.cpu, 0.5):6.2f}  p99 {percentile(run.cpu, 0.99):6.2f} | "
        f"gc {sum(run.gc):6.1f} ms in {sum(1 for g in run.gc if g > 0)} calls, {run.full_collections} full | "
        f"preempted {sum(1 for p in run.preempted if p)} calls"
    )


def report(kind: str, runs: list[Run]) -> None:
    best = min(runs, key=lambda r: percentile(r.wall, 0.99))
    print(f"\n{KINDS[kind]}: {len(best.wall)} calls per run, {len(runs)} runs (ms)")
    for index, run in enumerate(runs):
        print(f"  run {index + 1}: {_line(run)}{'   <- best' if run is best and len(runs) > 1 else ''}")
    print(f"  best run, per phase:  {'p50':>7} {'p99':>7} {'mean':>7}")
    for phase in PHASES:
        values = best.phases[phase]
        print(
            f"    {phase:<18} {percentile(values, 0.5):7.3f} {percentile(values, 0.99):7.3f} "
            f"{statistics.mean(values):7.3f}"
        )
    for label, values in (("whole call (wall)", best.wall), ("whole call (cpu)", best.cpu), ("of which gc", best.gc)):
        print(
            f"    {label:<18} {percentile(values, 0.5):7.3f} {percentile(values, 0.99):7.3f} "
            f"{statistics.mean(values):7.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="timed provisioning calls per kind and run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per kind; the best (lowest wall p99) is detailed")
    parser.add_argument("--gc", choices=("default", "server"), default="server", help="collector as started, or tuned")
    parser.add_argument("--kinds", default="p521,ed448,iso2", help=f"comma-separated, of {', '.join(KINDS)}")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    watch = GcWatch()
    results: dict[str, list[Run]] = {kind: [] for kind in kinds}
    with contextlib.ExitStack() as stack:
        pkis: dict[str, PKI] = {}
        for kind in kinds:  # one PKI per edition, as deployed: the -2 default hierarchy, the shipped -20 one
            edition = "iso2" if kind == "iso2" else "iso20"
            if edition not in pkis:
                home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="evpki-bench-phases-")))
                pki = PKI.open(Settings(home=home, key_passphrase=base.PASSPHRASE))  # type: ignore[arg-type]
                stack.callback(pki.close)
                config = {} if edition == "iso2" else {"config": ISO15118_20_HIERARCHY}
                pki.cas.init(organization=base.ORGANIZATION, actor="bench", **config)
                pkis[edition] = pki
        for run_index in range(args.repeat):
            for kind in kinds:
                print(f"run {run_index + 1}/{args.repeat}, {KINDS[kind]}", flush=True)
                pki = pkis["iso2" if kind == "iso2" else "iso20"]
                results[kind].append(measure(pki, kind, args.n, run_index, args.gc, watch))
    print(f"\none core (CPU 0), SQLite, gc {args.gc}")
    for kind in kinds:
        report(kind, results[kind])


if __name__ == "__main__":
    main()
