"""Benchmark: ISO 15118-2 contract provisioning latency, and our EXI codec against EXIficient.

1. Provisioning: ``--n`` vehicles (OEM provisioning certificates from our OEM CA, one contract
   each) send a signed CertificateInstallationReq; each is answered through
   :meth:`pki.PKI.provision_contract` (decode → verify signature and chain → contract lookup →
   issue → encrypt the key → CPS signature → encode), one after another on one core (the process
   is pinned to CPU 0). Requests are built before the clock starts: that is the car's work.
   Prints p50 / p90 / p99 / max, and a per-stage breakdown measured separately on one response.
2. ISO 15118-20 provisioning (``--n20`` per curve, 0 to skip): the same on a PKI built from the
   shipped ``iso15118_20_hierarchy.toml``, for P-521 cars (ECDH P-521) and Ed448 cars (ECDH X448 with
   the alternate key): decode → verify the ECDSA-P521/Ed448 signature and the chain → contract →
   issue → AES-GCM-256 key wrap → CPS signature (P-521) → encode, OCPP 2.1 limits.
3. Codec: encode and decode of one of those responses and one request, ours against the
   EXIficient jar of the ``iso15118`` wheel through py4j (JVM started and warmed up first; its
   start is excluded). Skipped with a note when Java / py4j / the wheel is missing.

    .venv/bin/python bench/contract_provisioning.py [--n 1000] [--n20 300] [--codec-runs 200]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pki import PKI, RequestIdentity, Settings
from pki.ca import ISO15118_20_HIERARCHY
from pki.ca.profiles import ALT_PUBLIC_KEY_OID
from pki.iso15118 import ev, exi20
from pki.iso15118.exi import decode_message, encode_fragment, encode_message, encode_signed_info
from pki.iso15118.keywrap import encrypt_contract_key
from pki.iso15118.messages import MSG_DEF_NAMESPACE, CertificateInstallationRes, RootCertificateId
from pki.iso15118.messages20 import (
    COMMON_MESSAGES_NAMESPACE as ISO20_NAMESPACE,
)
from pki.iso15118.messages20 import (
    CertificateInstallationReq,
    MessageHeader,
    SignedCertificateChain,
)
from pki.iso15118.signing import verify_elements
from pki.iso15118.signing20 import sign_fragment

ORGANIZATION = "Bench CSO GmbH"
PASSPHRASE = "evpki-bench-passphrase"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _vehicle(pki: PKI, pcid: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    csr, key = ev.vehicle_csr(pcid)
    issued = pki.certificates.issue(profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=pcid))
    return x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode()), key


def _time_each(function: Callable[[], object], runs: int) -> float:
    """Median seconds per call over ``runs`` calls."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def provisioning(n: int, home: Path) -> tuple[list[float], bytes, bytes]:
    settings = Settings(home=home, key_passphrase=PASSPHRASE)  # type: ignore[arg-type]
    pki = PKI.open(settings)
    pki.cas.init(organization=ORGANIZATION, actor="bench")
    roots = pki.cas.roots("V2GRootCertificate")
    print(f"preparing {n} vehicles, contracts and signed requests …", flush=True)
    requests = []
    for index in range(n):
        pcid = f"WMIBENCH{index:09d}"
        certificate, key = _vehicle(pki, pcid)
        pki.contracts.add(emaid=f"DEBEN{index:09d}", pcid=pcid, actor="bench")
        exi = ev.installation_request(certificate, key, roots, os.urandom(8))
        requests.append(base64.b64encode(exi).decode())
    # One untimed request warms caches (CA directory, decrypted CPS and MO keys), as a running server would be.
    warm_certificate, warm_key = _vehicle(pki, "WMIBENCHWARM00000")
    pki.contracts.add(emaid="DEBENWARM000000", pcid="WMIBENCHWARM00000", actor="bench")
    warm = ev.installation_request(warm_certificate, warm_key, roots, b"\x00")
    pki.contracts.provision(
        iso15118_schema_version=MSG_DEF_NAMESPACE, action="Install", exi_request=base64.b64encode(warm).decode()
    )
    latencies = []
    last = ""
    for request in requests:
        start = time.perf_counter()
        result = pki.contracts.provision(
            iso15118_schema_version=MSG_DEF_NAMESPACE, action="Install", exi_request=request
        )
        latencies.append(time.perf_counter() - start)
        if result.status != "Accepted" or result.response_code is None or not result.response_code.ok:
            raise SystemExit(f"provisioning failed: {result.reason}")
        last = result.exi_response
    pki.close()
    return latencies, base64.b64decode(requests[-1]), base64.b64decode(last)


def stages(request: bytes, response: bytes) -> list[tuple[str, float]]:
    """Costs of the pipeline's pure stages on real messages (database stages are the rest)."""
    message = decode_message(request)
    body = message.body
    res = decode_message(response)
    res_body = res.body
    assert isinstance(res_body, CertificateInstallationRes)
    oem = x509.load_der_x509_certificate(body.oem_provisioning_cert)  # type: ignore[union-attr]
    signature = message.header.signature
    assert signature is not None
    cps_key = ec.generate_private_key(ec.SECP256R1())
    contract_key = ec.generate_private_key(ec.SECP256R1())
    signed = (
        res_body.contract_signature_cert_chain,
        res_body.contract_signature_encrypted_private_key,
        res_body.dh_public_key,
        res_body.emaid,
    )

    def sign_response() -> None:
        for element in signed:
            hashlib.sha256(encode_fragment(element)).digest()
        cps_key.sign(encode_signed_info(res.header.signature.signed_info), ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr]

    runs = 300
    return [
        ("decode request (EXI)", _time_each(lambda: decode_message(request), runs)),
        (
            "verify request signature",
            _time_each(
                lambda: verify_elements(signature, (body,), oem.public_key(), what="bench"),
                runs,  # type: ignore[arg-type]
            ),
        ),
        (
            "contract key generation + wrap",
            _time_each(
                lambda: encrypt_contract_key(ec.generate_private_key(ec.SECP256R1()), oem.public_key()),
                runs,  # type: ignore[arg-type]
            ),
        ),
        ("4 fragment digests + CPS signature", _time_each(sign_response, runs)),
        ("encode response (EXI)", _time_each(lambda: encode_message(res), runs)),
        ("key wrap only", _time_each(lambda: encrypt_contract_key(contract_key, oem.public_key()), runs)),  # type: ignore[arg-type]
    ]


def codec_against_exificient(request: bytes, response: bytes, runs: int) -> list[tuple[str, float, float | None]]:
    ours = [
        ("decode CertificateInstallationReq", _time_each(lambda: decode_message(request), runs)),
        ("encode CertificateInstallationReq", _time_each(lambda: encode_message(decode_message(request)), runs)),
        ("decode CertificateInstallationRes", _time_each(lambda: decode_message(response), runs)),
    ]
    message = decode_message(response)
    ours.append(("encode CertificateInstallationRes", _time_each(lambda: encode_message(message), runs)))
    try:
        from tests.interop.exificient import Exificient, ExificientUnavailable

        jar = Exificient()
    except (ImportError, ExificientUnavailable) as exc:  # type: ignore[misc]
        print(f"EXIficient unavailable ({exc}); codec comparison skipped")
        return [(name, seconds, None) for name, seconds in ours]
    try:
        request_json = jar.decode(request)
        response_json = jar.decode(response)
        for _ in range(30):  # JIT warm-up, excluded like the JVM start
            jar.encode(jar.decode(response))
        jar_runs = max(20, runs // 5)
        theirs = [
            _time_each(lambda: jar.decode(request), jar_runs),
            _time_each(lambda: jar.encode(request_json), jar_runs),
            _time_each(lambda: jar.decode(response), jar_runs),
            _time_each(lambda: jar.encode(response_json), jar_runs),
        ]
        assert jar.encode(response_json) == response, "EXIficient re-encodes our response differently"
    finally:
        jar.close()
    return [(name, seconds, other) for (name, seconds), other in zip(ours, theirs, strict=True)]


def _vehicle20(pki: PKI, pcid: str, curve: str) -> tuple[x509.Certificate, object]:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, pcid), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "OEM")]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    key: ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
    if curve == "p521":
        key = ec.generate_private_key(ec.SECP521R1())
        csr = builder.sign(key, hashes.SHA512())
    else:
        key = ed448.Ed448PrivateKey.generate()
        alternate = x448.X448PrivateKey.generate().public_key()
        spki = alternate.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        csr = builder.add_extension(x509.UnrecognizedExtension(ALT_PUBLIC_KEY_OID, spki), critical=False).sign(
            key, None
        )
    issued = pki.certificates.issue(
        profile="oem-provisioning",
        csr=csr.public_bytes(Encoding.PEM),
        identity=RequestIdentity(pcid=pcid),
        ca_id="oem20-sub2",
    )
    return x509.load_pem_x509_certificate(issued.certificate.certificate_pem.encode()), key


def _request20(certificate: x509.Certificate, key: object, root: x509.Certificate) -> str:
    chain = SignedCertificateChain("c1", certificate.public_bytes(Encoding.DER), ())
    if isinstance(key, ed448.Ed448PrivateKey):
        signature = sign_fragment(chain, key.sign, key.public_key())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = sign_fragment(chain, lambda d: key.sign(d, ec.ECDSA(hashes.SHA512())), key.public_key())
    request = CertificateInstallationReq(
        header=MessageHeader(os.urandom(8), int(time.time()), signature),
        oem_provisioning_certificate_chain=chain,
        root_certificate_ids=(RootCertificateId(root.issuer.rfc4514_string(), root.serial_number),),
        maximum_contract_certificate_chains=1,
    )
    return base64.b64encode(exi20.encode_message(request)).decode()


def provisioning20(n: int, home: Path) -> dict[str, tuple[list[float], int]]:
    """Latencies per curve and the size of the last response."""
    pki = PKI.open(Settings(home=home, key_passphrase=PASSPHRASE))  # type: ignore[arg-type]
    pki.cas.init(config=ISO15118_20_HIERARCHY, organization=ORGANIZATION, actor="bench")
    root = pki.cas.chain("v2g20-root")[-1]
    figures: dict[str, tuple[list[float], int]] = {}
    for curve in ("p521", "ed448"):
        print(f"preparing {n} ISO 15118-20 {curve} vehicles …", flush=True)
        requests = []
        for index in range(n + 1):  # the first one warms caches, untimed
            pcid = f"WTW{curve.upper():0>5}{index:010d}"
            certificate, key = _vehicle20(pki, pcid, curve)
            pki.contracts.add(emaid=f"DE{curve[:3].upper()}{index:09d}", pcid=pcid, actor="bench")
            requests.append(_request20(certificate, key, root))
        latencies, size = [], 0
        for index, request in enumerate(requests):
            start = time.perf_counter()
            result = pki.contracts.provision(
                iso15118_schema_version=ISO20_NAMESPACE, action="Install", exi_request=request, ocpp_version="2.1"
            )
            elapsed = time.perf_counter() - start
            if result.status != "Accepted" or result.response_code is None or not result.response_code.ok:
                raise SystemExit(f"-20 provisioning failed: {result.reason}")
            if index:
                latencies.append(elapsed)
            size = len(result.exi_response)
        figures[curve] = (latencies, size)
    pki.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="provisioning requests to time")
    parser.add_argument("--n20", type=int, default=300, help="ISO 15118-20 requests to time per curve (0: skip)")
    parser.add_argument("--codec-runs", type=int, default=200, help="encode/decode repetitions of our codec")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core, as the aim says
    with tempfile.TemporaryDirectory(prefix="evpki-bench-iso15118-") as directory:
        latencies, request, response = provisioning(args.n, Path(directory))
    ms = [value * 1000 for value in latencies]
    print(
        f"\nprovisioning, {len(ms)} CertificateInstallationReq on one core (SQLite), response "
        f"{len(base64.b64encode(response))} base64 characters"
    )
    print(
        f"  p50 {_percentile(ms, 0.50):6.2f} ms   p90 {_percentile(ms, 0.90):6.2f} ms   "
        f"p99 {_percentile(ms, 0.99):6.2f} ms   max {max(ms):6.2f} ms   mean {statistics.mean(ms):6.2f} ms"
    )
    if args.n20 > 0:
        with tempfile.TemporaryDirectory(prefix="evpki-bench-iso15118-20-") as directory:
            figures = provisioning20(args.n20, Path(directory))
        print(f"\nISO 15118-20 provisioning, {args.n20} CertificateInstallationReq per curve on one core (SQLite):")
        print(f"  {'car':<22} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'exiResponse':>12}")
        for curve, (latencies20, size) in figures.items():
            ms20 = [value * 1000 for value in latencies20]
            label = "P-521 (ECDH P-521)" if curve == "p521" else "Ed448 (ECDH X448)"
            print(
                f"  {label:<22} {_percentile(ms20, 0.5):8.2f} {_percentile(ms20, 0.9):8.2f} "
                f"{_percentile(ms20, 0.99):8.2f} {max(ms20):8.2f} {size:>12}"
            )
    print("\nstage costs (median, measured apart on the same messages):")
    for name, seconds in stages(request, response):
        print(f"  {name:<38} {seconds * 1000:7.3f} ms")
    print(f"\nEXI codec, median per call (ours: {args.codec_runs} runs; EXIficient 1.55 via py4j, JVM warm):")
    print(f"  {'operation':<36} {'ours ms':>9} {'EXIficient ms':>14} {'speed-up':>9}")
    for name, seconds, other in codec_against_exificient(request, response, args.codec_runs):
        jar = f"{other * 1000:14.2f}" if other is not None else f"{'-':>14}"
        ratio = f"{other / seconds:8.0f}×" if other is not None else f"{'-':>9}"
        print(f"  {name:<36} {seconds * 1000:9.3f} {jar} {ratio}")


if __name__ == "__main__":
    main()
