"""Benchmark: the ISO 15118-20 EXI codec against EXIficient, per call (median), on one core.

Messages of realistic size: a signed CertificateInstallationReq (OEM chain of 3 certificates,
20 root ids, 8 EMAIDs) and CertificateInstallationRes (CPS and contract chains of 4 certificates
of 700 bytes, the SECP521 key). EXIficient is the jar of the ``iso15118`` wheel through py4j,
its JSON front end as Josev uses it (JVM started and JIT warmed first, excluded). Prints a table,
exits 0; without Java or the wheel only our figures are printed.

    .venv/bin/python bench/exi20.py [--runs 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pki.iso15118 import exi20
from pki.iso15118.messages20 import (
    CertificateChain,
    ContractCertificateChain,
    RootCertificateId,
    SignedCertificateChain,
)
from tests.pki.iso15118 import samples20

NS20 = "urn:iso:std:iso:15118:-20:CommonMessages"


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _messages() -> tuple[bytes, bytes]:
    cert = os.urandom(700)
    request = samples20.install_req(
        oem_provisioning_certificate_chain=SignedCertificateChain("id1", cert, (cert, cert)),
        root_certificate_ids=tuple(RootCertificateId(f"CN=V2G Root CA {i},O=Test,C=DE", 2**120 + i) for i in range(20)),
        prioritized_emaids=tuple(f"DE*ABC*C{i:07d}*X" for i in range(8)),
    )
    response = samples20.install_res(
        cps_certificate_chain=CertificateChain(cert, (cert, cert, cert)),
        signed_installation_data=samples20.installation_data(
            contract_certificate_chain=ContractCertificateChain(cert, (cert, cert, cert))
        ),
    )
    return exi20.encode_message(request), exi20.encode_message(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="repetitions of each of our operations")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    request, response = _messages()
    req, res = exi20.decode_message(request), exi20.decode_message(response)
    fragment = res.signed_installation_data  # type: ignore[union-attr]
    ours = [
        (
            f"decode CertificateInstallationReq ({len(request)} B)",
            _median(lambda: exi20.decode_message(request), args.runs),
        ),
        ("encode CertificateInstallationReq", _median(lambda: exi20.encode_message(req), args.runs)),
        (
            f"decode CertificateInstallationRes ({len(response)} B)",
            _median(lambda: exi20.decode_message(response), args.runs),
        ),
        ("encode CertificateInstallationRes", _median(lambda: exi20.encode_message(res), args.runs)),
        ("encode SignedInstallationData fragment", _median(lambda: exi20.encode_fragment(fragment), args.runs)),  # type: ignore[arg-type]
    ]
    theirs: list[float | None] = [None] * len(ours)
    try:
        from tests.interop.exificient import Exificient, ExificientUnavailable

        jar = Exificient()
    except (ImportError, ExificientUnavailable) as exc:  # type: ignore[misc]
        print(f"EXIficient unavailable ({exc}); comparison skipped")
    else:
        try:
            codec = jar.codec
            request_json, response_json = codec.decode(request, NS20), codec.decode(response, NS20)
            for _ in range(30):  # JIT warm-up
                codec.encode(codec.decode(response, NS20), NS20)
            assert bytes(codec.encode(response_json, NS20)) == response, "EXIficient re-encodes differently"
            runs = max(20, args.runs // 5)
            theirs = [
                _median(lambda: codec.decode(request, NS20), runs),
                _median(lambda: codec.encode(request_json, NS20), runs),
                _median(lambda: codec.decode(response, NS20), runs),
                _median(lambda: codec.encode(response_json, NS20), runs),
                None,  # the jar's JSON front end has no SignedInstallationData fragment
            ]
        finally:
            jar.close()
    print(f"\nISO 15118-20 EXI codec, median per call (ours: {args.runs} runs; EXIficient 1.55 via py4j, JVM warm)")
    print(f"  {'operation':<46} {'ours ms':>9} {'EXIficient ms':>14} {'speed-up':>9}")
    for (name, seconds), other in zip(ours, theirs, strict=True):
        jar_ms = f"{other * 1000:14.2f}" if other is not None else f"{'-':>14}"
        ratio = f"{other / seconds:8.0f}×" if other is not None else f"{'-':>9}"
        print(f"  {name:<46} {seconds * 1000:9.3f} {jar_ms} {ratio}")


if __name__ == "__main__":
    main()
