"""Benchmark: issuance/s and OCSP signatures/s with the PKCS#11 (SoftHSM2) backend against the file backend.

Both backends run in the same process on the same machine, each with its own SQLite PKI: the
default hierarchy with its CSO PKI on the algorithm measured. Issuance is :meth:`pki.PKI.issue`
of station certificates (CSRs made before the clock starts); OCSP is :meth:`pki.PKI.ocsp_respond`
with a nonce, so every response is signed on the spot (no pre-signed cache). "raw sign/s" is the
bare signature over 32 bytes with the issuing CA's key. SoftHSM2 runs in a private token directory.

    .venv/bin/python bench/hsm.py [--n 300] [--algorithms ec-p256,ec-p384,rsa-2048]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.issuance import make_csrs
from pki import PKI, RequestIdentity, Settings
from pki.store import repository

ORGANIZATION = "Bench CSO GmbH"
PASSPHRASE = "evpki-bench-passphrase"
PIN = "1234"
MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")


def hierarchy(algorithm: str) -> str:
    toml = (resources.files("pki") / "default_hierarchy.toml").read_text(encoding="utf-8")
    head, _, tail = toml.partition("[pki.cso]")
    return f'{head}[pki.cso]\nstandard = "ocpp"\nalgorithm = "{algorithm}"\n\n[{tail.split(chr(10) + "[", 1)[1]}'


def rate(n: int, work: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(n):
        work(i)
    return n / (time.perf_counter() - started)


def measure(settings: Settings, algorithm: str, n: int, prefix: str) -> tuple[float, float, float]:
    config = settings.home / "hierarchy.toml"
    config.write_text(hierarchy(algorithm), encoding="utf-8")
    pki = PKI.open(settings)
    try:
        pki.cas.init(config=config, organization=ORGANIZATION, actor="bench")
        requests = make_csrs(n, prefix)
        issued: list[x509.Certificate] = []

        def issue(i: int) -> None:
            station, csr = requests[i]
            view = pki.certificates.issue(
                profile="station", csr=csr, identity=RequestIdentity(station_id=station)
            ).certificate
            issued.append(x509.load_pem_x509_certificate(view.certificate_pem.encode()))

        ((warm_station, warm_csr),) = make_csrs(1, prefix + "W")
        # Warm-up: loads the CA key (a PBKDF2 run for the file backend, a token login for PKCS#11).
        pki.certificates.issue(profile="station", csr=warm_csr, identity=RequestIdentity(station_id=warm_station))
        issuance = rate(n, issue)
        issuer = pki.cas.chain("cso-sub")[0]
        ocsp_requests = [
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, issuer, hashes.SHA1())
            .add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
            .build()
            .public_bytes(serialization.Encoding.DER)
            for cert in issued
        ]
        pki.ocsp.respond(ocsp_requests[0])
        signatures = rate(n, lambda i: pki.ocsp.respond(ocsp_requests[i]))
        ctx = pki._ctx  # type: ignore[attr-defined]
        with ctx.database.read() as session:
            key_id = repository.get_ca(session, "cso-sub").key_id
        signer = ctx.keys.load(key_id)
        raw = rate(n, lambda i: signer.sign_bytes(i.to_bytes(32, "big"), rsa_pss=False))
        return issuance, signatures, raw
    finally:
        pki.close()


def softhsm(directory: Path, labels: list[str]) -> str | None:
    """A private SoftHSM2 token dir with ``labels`` initialised before the module loads (it lists tokens once)."""
    module = next((m for m in MODULES if Path(m).exists()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        return None
    (directory / "tokens").mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in labels:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "5678"],
            check=True,
            capture_output=True,
        )
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--algorithms", default="ec-p256,ec-p384,rsa-2048")
    args = parser.parse_args()
    rows: list[tuple[str, str, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="evpki-bench-hsm-") as tmp:
        root = Path(tmp)
        algorithms = args.algorithms.split(",")
        module = softhsm(root / "softhsm", [f"bench-{algorithm}" for algorithm in algorithms])
        if module is None:
            print("SoftHSM2 is not installed (apt-get install softhsm2): only the file backend is measured")
        for algorithm in algorithms:
            home = root / f"file-{algorithm}"
            home.mkdir()
            settings = Settings(home=home, key_passphrase=SecretStr(PASSPHRASE))
            rows.append(("file", algorithm, *measure(settings, algorithm, args.n, "CPF")))
            if module is None:
                continue
            label = f"bench-{algorithm}"
            home = root / f"hsm-{algorithm}"
            home.mkdir()
            settings = Settings(
                home=home,
                keystore="pkcs11",
                pkcs11_module=module,
                pkcs11_token_label=label,
                pkcs11_pin=SecretStr(PIN),
            )
            rows.append(("pkcs11 (SoftHSM2)", algorithm, *measure(settings, algorithm, args.n, "CPH")))
    print(f"\n{'backend':<18} {'CSO key':<9} {'issuance/s':>11} {'OCSP sig/s':>11} {'raw sign/s':>11}   (n={args.n})")
    for backend, algorithm, issuance, signatures, raw in rows:
        print(f"{backend:<18} {algorithm:<9} {issuance:>11.0f} {signatures:>11.0f} {raw:>11.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
