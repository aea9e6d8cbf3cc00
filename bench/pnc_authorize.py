"""Benchmark: Plug & Charge Authorize (OCPP C07) latency through the certificate core, one core.

1. Our own contract, chain in ``certificate``: path to our MO root, our revocation status,
   the contract registry (SQLite in a temporary directory).
2. Our own contract, ``iso15118CertificateHashData`` only: looked up by hash.
3. A foreign contract (its MO root in the trust store) whose OCSP responder is a local HTTP server
   on 127.0.0.1 answering with a pre-signed response from a delegated responder: the first call
   fetches, the rest are answered from the cache (nextUpdate in one hour) but every response is
   verified again (responder authorization, signature, times). The request count at the
   responder is printed.

    .venv/bin/python bench/pnc_authorize.py [--n 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocpp_bridge.core import CertificateService
from pki import PKI, RequestIdentity, Settings

EMAID = "DEABCC123ABC56"
FOREIGN_EMAID = "NLXYZC000000001"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _samples(function: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        function()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _csr(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench MO"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "MO"),
        ]
    )
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def _foreign(now: dt.datetime, url: str) -> tuple[x509.Certificate, x509.Certificate, bytes]:
    """A foreign MO root, a contract certificate under it (AIA → ``url``) and a signed OCSP response."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Foreign MO Root")])
    root = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip

    def leaf(common_name: str, extension: Any) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(subject).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(extension, critical=False).sign(key, hashes.SHA256())
        )  # fmt: skip
        return certificate, leaf_key

    aia = x509.AuthorityInformationAccess(
        [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url))]
    )
    contract, _ = leaf(FOREIGN_EMAID, aia)
    responder, responder_key = leaf("Bench OCSP", x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]))
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            contract, root, hashes.SHA256(), ocsp.OCSPCertStatus.GOOD, now, now + dt.timedelta(hours=1), None, None
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        .certificates([responder])
        .sign(responder_key, hashes.SHA256())
    )
    return root, contract, response.public_bytes(serialization.Encoding.DER)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="Authorize calls per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        pki = PKI.open(Settings(home=Path(home), key_passphrase="evpki-bench-passphrase"))  # type: ignore[arg-type]
        pki.cas.init(organization="Bench CSO GmbH", actor="bench")
        pki.contracts.add(emaid=EMAID, pcid="WMIV2G0000000001A")
        issued = pki.certificates.issue(profile="contract", csr=_csr(EMAID), identity=RequestIdentity(emaid=EMAID))
        chain = issued.chain_pem
        certificates = x509.load_pem_x509_certificates(chain.encode())
        hash_data = []
        for certificate, issuer in itertools.pairwise(certificates):
            request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256()).build()
            hash_data.append(
                {
                    "hashAlgorithm": "SHA256",
                    "issuerNameHash": request.issuer_name_hash.hex(),
                    "issuerKeyHash": request.issuer_key_hash.hex(),
                    "serialNumber": format(request.serial_number, "X"),
                    "responderURL": "http://127.0.0.1:9/",
                }
            )
        requests: list[int] = []
        body: dict[str, bytes] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                requests.append(1)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body["der"])))
                self.end_headers()
                self.wfile.write(body["der"])

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        root, contract, body["der"] = _foreign(pki.clock.now(), url)
        pki.trust.add(root.public_bytes(serialization.Encoding.PEM), use="MORootCertificate", actor="bench")
        service = CertificateService(pki)
        token = {"idToken": EMAID, "type": "eMAID"}
        cases = {
            "own contract, chain": {"idToken": token, "certificate": chain},
            "own contract, hash data": {"idToken": token, "iso15118CertificateHashData": hash_data},
            "foreign contract, OCSP (cached)": {
                "idToken": {"idToken": FOREIGN_EMAID, "type": "eMAID"},
                "certificate": contract.public_bytes(serialization.Encoding.PEM).decode(),
            },
        }
        print(f"{'case':34} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}  status")
        for label, payload in cases.items():
            first = service.handle("2.0.1", "CS-BENCH", "Authorize", payload).response
            samples = _samples(lambda p=payload: service.handle("2.0.1", "CS-BENCH", "Authorize", p), args.n)
            print(
                f"{label:34} {args.n:>5} {statistics.median(samples):8.2f} {_percentile(samples, 0.9):8.2f} "
                f"{_percentile(samples, 0.99):8.2f} {max(samples):8.2f}  {first['certificateStatus']}"
            )
        print(f"requests at the foreign OCSP responder: {len(requests)} for {args.n + 1} Authorize calls")
        server.shutdown()
        pki.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
