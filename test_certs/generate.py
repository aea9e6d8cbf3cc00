"""Regenerate ``test_certs/``: a reference PKI made by evpki's own ``pki`` API, plus named CSR vectors.

Run ``.venv/bin/python test_certs/generate.py`` from the repository root. The script builds the
default hierarchy in a throw-away ``EVPKI_HOME``, issues one leaf per profile from a CSR, revokes
one extra station certificate, signs a CRL per CA and writes named positive/negative CSRs made
by ``openssl req`` (an independent tool). ``MANIFEST.json`` says what each file is and, for every
CSR, the outcome the policy must give. Keys are fresh on every run; the file layout is not.

Everything here is test material: the keys are encrypted with a published passphrase.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from asn1crypto import csr as asn1_csr
from asn1crypto import pem as asn1_pem
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OUT = Path(__file__).resolve().parent
REPO = OUT.parent
if str(REPO) not in sys.path:
    # Run as a script, the repository root (where ``pki`` lives) is not on sys.path by itself.
    sys.path.insert(0, str(REPO))

from pki import PKI, RequestIdentity, Settings  # noqa: E402
from pki.core.clock import FixedClock  # noqa: E402
from pki.revocation.reasons import RevocationReason  # noqa: E402
from pki.store.repository import CertificateFilter  # noqa: E402

TEST_PASSPHRASE = "evpki-test-passphrase"  # published on purpose: nothing here protects anything
# The same organisation as tests/conftest.py ORG, so a fresh test PKI accepts the csr/ vectors.
ORGANIZATION = "Test CSO GmbH"
OUTPUT_DIRS = ("cas", "leaves", "crl", "csr")

CA_IDS = (
    "cso-root",
    "cso-sub",
    "mf-root",
    "v2g-root",
    "cpo-sub1",
    "cpo-sub2",
    "cps-sub1",
    "cps-sub2",
    "mo-root",
    "mo-sub1",
    "mo-sub2",
    "oem-root",
    "oem-sub1",
    "oem-sub2",
)
INIT_LEAF_LABELS = ("cps-leaf", "firmware-signer", "csms-server")

STATION_ID, STATION_SERIAL = "CP-0001", "SN-0001"
SECC_ID = "DE*ABC*E1234567*1"
CSMS_FQDN = "csms.example.test"
EMAID = "DEABCC1234567X9"  # ISO 15118-2 eMAID without separators (15 characters)
PCID = "WMIV1234567890ABC"  # ISO 15118-2 PCID: 17 alphanumerics

_PEM_KEY_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_GENERATED_LINE = re.compile(r"^Generated: .*$", re.MULTILINE)


def _name(pairs: list[tuple[x509.ObjectIdentifier, str]]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


# profile -> (subject, SAN dNSNames, identity the caller vouches for)
LEAF_REQUESTS: dict[str, tuple[x509.Name, tuple[str, ...], RequestIdentity]] = {
    # OCPP A00.FR.511: CN = station serial; A00.FR.509: O = CSO organisation.
    "station": (
        _name([(NameOID.ORGANIZATION_NAME, ORGANIZATION), (NameOID.COMMON_NAME, STATION_SERIAL)]),
        (),
        RequestIdentity(station_id=STATION_ID, station_serial=STATION_SERIAL),
    ),
    "secc": (
        _name(
            [
                (NameOID.COUNTRY_NAME, "DE"),
                (NameOID.ORGANIZATION_NAME, ORGANIZATION),
                (NameOID.COMMON_NAME, SECC_ID),
                (NameOID.DOMAIN_COMPONENT, "CPO"),
            ]
        ),
        (),
        RequestIdentity(secc_id=SECC_ID),
    ),
    # OCPP A00.FR.510: CN = FQDN; the SAN dNSName is what TLS clients match.
    "csms-server": (
        _name([(NameOID.ORGANIZATION_NAME, ORGANIZATION), (NameOID.COMMON_NAME, CSMS_FQDN)]),
        (CSMS_FQDN,),
        RequestIdentity(fqdn=CSMS_FQDN),
    ),
    "contract": (
        _name(
            [
                (NameOID.COUNTRY_NAME, "DE"),
                (NameOID.ORGANIZATION_NAME, "Test MO"),
                (NameOID.COMMON_NAME, EMAID),
                (NameOID.DOMAIN_COMPONENT, "MO"),
            ]
        ),
        (),
        RequestIdentity(emaid=EMAID),
    ),
    # The EV's OEM provisioning certificate: what CertificateInstallationReq is signed with.
    "oem-provisioning": (
        _name(
            [
                (NameOID.COUNTRY_NAME, "DE"),
                (NameOID.ORGANIZATION_NAME, "Test OEM"),
                (NameOID.COMMON_NAME, PCID),
                (NameOID.DOMAIN_COMPONENT, "OEM"),
            ]
        ),
        (),
        RequestIdentity(pcid=PCID),
    ),
    "firmware-signer": (
        _name(
            [
                (NameOID.COUNTRY_NAME, "DE"),
                (NameOID.ORGANIZATION_NAME, f"{ORGANIZATION} Manufacturer"),
                (NameOID.COMMON_NAME, "Reference Firmware Signer"),
            ]
        ),
        (),
        RequestIdentity(),
    ),
    "cps-leaf": (
        _name(
            [
                (NameOID.COUNTRY_NAME, "DE"),
                (NameOID.ORGANIZATION_NAME, ORGANIZATION),
                (NameOID.COMMON_NAME, "Reference CPS"),
                (NameOID.DOMAIN_COMPONENT, "CPS"),
            ]
        ),
        (),
        RequestIdentity(),
    ),
}

_STATION_SUBJECT = f"/O={ORGANIZATION}/CN={STATION_SERIAL}"
_SECC_SUBJECT = f"/C=DE/O={ORGANIZATION}/CN={SECC_ID}"
_STATION_IDENTITY = RequestIdentity(station_id=STATION_ID, station_serial=STATION_SERIAL)
_SECC_IDENTITY = RequestIdentity(secc_id=SECC_ID)

# name -> (openssl -newkey, -subj, profile, identity, expected outcome, what it tests).
# Expected rules are read off pki/policy.py by hand, never computed by running it.
OPENSSL_CSRS: dict[str, tuple[str, str, str, RequestIdentity, str, str]] = {
    "station-ok": ("ec:P-256", _STATION_SUBJECT, "station", _STATION_IDENTITY, "accept", "valid station CSR, P-256"),
    "station-rsa2048": (
        "rsa:2048",
        _STATION_SUBJECT,
        "station",
        _STATION_IDENTITY,
        "accept",
        "valid station CSR, RSA-2048 (OCPP A00.FR.502 minimum)",
    ),
    "secc-ok": ("ec:P-256", f"{_SECC_SUBJECT}/DC=CPO", "secc", _SECC_IDENTITY, "accept", "valid ISO 15118-2 SECC CSR"),
    "rsa1024": (
        "rsa:1024",
        _STATION_SUBJECT,
        "station",
        _STATION_IDENTITY,
        "key.rsa-min-bits",
        "RSA-1024 key, below OCPP A00.FR.502",
    ),
    "secc-wrong-curve": (
        "ec:P-384",
        f"{_SECC_SUBJECT}/DC=CPO",
        "secc",
        _SECC_IDENTITY,
        "key.iso15118-2",
        "SECC key on P-384; ISO 15118-2 allows only P-256",
    ),
    "station-cn-mismatch": (
        "ec:P-256",
        f"/O={ORGANIZATION}/CN=SN-9999",
        "station",
        _STATION_IDENTITY,
        "station.cn-serial",
        "CN is not the station serial (OCPP A00.FR.511)",
    ),
    "station-missing-o": (
        "ec:P-256",
        f"/CN={STATION_SERIAL}",
        "station",
        _STATION_IDENTITY,
        "subject.missing-o",
        "no O in the subject (OCPP A00.FR.509)",
    ),
    # DC is a required SECC attribute, so its absence is caught by the generic subject rule
    # before the profile's DC=CPO check; secc-wrong-dc exercises that check.
    "secc-missing-dc": (
        "ec:P-256",
        _SECC_SUBJECT,
        "secc",
        _SECC_IDENTITY,
        "subject.missing-dc",
        "SECC subject without DC",
    ),
    "secc-wrong-dc": (
        "ec:P-256",
        f"{_SECC_SUBJECT}/DC=MO",
        "secc",
        _SECC_IDENTITY,
        "secc.dc-cpo",
        "SECC subject with DC=MO instead of DC=CPO",
    ),
}

_OPENSSL_CONFIG = """\
# Minimal config so the system openssl.cnf adds no extensions or attributes to the requests.
[req]
distinguished_name = dn
[dn]
"""


def _identity_json(identity: RequestIdentity) -> dict[str, str]:
    return {key: value for key, value in asdict(identity).items() if value is not None}


def _write(relative: str, data: bytes | str) -> None:
    path = OUT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    if b"PRIVATE KEY-----" in raw and not raw.lstrip().startswith(_PEM_KEY_HEADER):
        raise RuntimeError(f"refusing to write an unencrypted private key to {relative}")
    path.write_bytes(raw)


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _encrypted_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(TEST_PASSPHRASE.encode()),
    )


def _make_csr(subject: x509.Name, dns: tuple[str, ...]) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    # P-256 everywhere: the only curve every profile accepts (ISO 15118-2 leaves need it).
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM), key


def _openssl_csr(workdir: Path, name: str, newkey: str, subject: str) -> bytes:
    """A PEM CSR from ``openssl req``; its key stays in ``workdir`` and is thrown away with it."""
    config = workdir / "req.cnf"
    config.write_text(_OPENSSL_CONFIG)
    algorithm, _, parameter = newkey.partition(":")
    key_options = (
        ["-newkey", newkey] if algorithm == "rsa" else ["-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{parameter}"]
    )
    out = workdir / f"{name}.csr.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-config",
            str(config),
            *key_options,
            "-noenc",
            "-keyout",
            str(workdir / f"{name}.key.pem"),
            "-sha256",
            "-subj",
            subject,
            "-out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def _corrupt_signature(pem_csr: bytes) -> bytes:
    """Flip the last bit of the CSR's signature: still well-formed DER, no longer a valid signature."""
    _, _, der = asn1_pem.unarmor(pem_csr)
    request = asn1_csr.CertificationRequest.load(der)
    signature = bytearray(request["signature"].native)
    # The last octet is inside the ECDSA s INTEGER, so the Ecdsa-Sig-Value stays parseable.
    signature[-1] ^= 0x01
    request["signature"] = bytes(signature)
    corrupted = asn1_pem.armor("CERTIFICATE REQUEST", request.dump(force=True))
    parsed = x509.load_pem_x509_csr(corrupted)
    if parsed.is_signature_valid:
        raise RuntimeError("corrupting the signature left it valid")
    return corrupted


def _root_of(pki: PKI, ca_id: str) -> str:
    ca = pki.cas.get(ca_id)
    while ca.parent_id is not None:
        ca = pki.cas.get(ca.parent_id)
    return ca.id


def _leaf_entries(pki: PKI, stem: str, *, certificate_pem: str, chain_pem: str, issuer: str) -> dict[str, Any]:
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    files = {
        f"leaves/{stem}.pem": certificate_pem,
        f"leaves/{stem}.chain.pem": chain_pem,
    }
    for relative, data in files.items():
        _write(relative, data)
    return {
        f"leaves/{stem}.pem": {
            "kind": "leaf-certificate",
            "issuer": issuer,
            "root": _root_of(pki, issuer),
            "serial": format(certificate.serial_number, "X"),
            "subject": certificate.subject.rfc4514_string(),
            "not_before": certificate.not_valid_before_utc.isoformat(),
            "not_after": certificate.not_valid_after_utc.isoformat(),
            "chain": f"leaves/{stem}.chain.pem",
        },
        f"leaves/{stem}.chain.pem": {
            "kind": "leaf-chain",
            "description": "leaf first, then the issuing sub-CAs; the root is left out",
            "certificate": f"leaves/{stem}.pem",
        },
    }


def _generate_leaves(pki: PKI, manifest: dict[str, Any]) -> None:
    for profile, (subject, dns, identity) in LEAF_REQUESTS.items():
        csr_pem, key = _make_csr(subject, dns)
        issued = pki.certificates.issue(profile=profile, csr=csr_pem, identity=identity, actor="test_certs/generate.py")
        entries = _leaf_entries(
            pki,
            profile,
            certificate_pem=issued.certificate.certificate_pem,
            chain_pem=issued.chain_pem,
            issuer=issued.certificate.issuer_id,
        )
        entries[f"leaves/{profile}.pem"].update(
            profile=profile, made_from="CSR", key=f"leaves/{profile}.key.pem", csr=f"leaves/{profile}.csr.pem"
        )
        _write(f"leaves/{profile}.key.pem", _encrypted_key(key))
        _write(f"leaves/{profile}.csr.pem", csr_pem)
        entries[f"leaves/{profile}.key.pem"] = {
            "kind": "leaf-key",
            "description": "PKCS#8, encrypted with the test passphrase (cryptography BestAvailableEncryption)",
            "certificate": f"leaves/{profile}.pem",
        }
        entries[f"leaves/{profile}.csr.pem"] = {
            "kind": "csr",
            "profile": profile,
            "identity": _identity_json(identity),
            "expected": "accept",
            "made_by": "cryptography",
            "description": f"the request leaves/{profile}.pem was issued from",
        }
        manifest.update(entries)


def _copy_init_leaves(pki: PKI, home: Path, manifest: dict[str, Any]) -> None:
    """The leaves ``init`` makes with keys evpki holds; there is no CSR for them."""
    managed = {view.label: view for view in pki.certificates.list(CertificateFilter()) if view.label}
    for label in INIT_LEAF_LABELS:
        view = managed[label]
        stem = f"init-{label}"
        chain = pki.cas.chain(view.issuer_id)[:-1]
        entries = _leaf_entries(
            pki,
            stem,
            certificate_pem=view.certificate_pem,
            chain_pem=view.certificate_pem + "".join(_pem(c) for c in chain),
            issuer=view.issuer_id,
        )
        entries[f"leaves/{stem}.pem"].update(
            profile=view.profile, made_from=f"evpki init (managed leaf {label!r})", key=f"leaves/{stem}.key.pem"
        )
        _write(f"leaves/{stem}.key.pem", (home / "keys" / f"leaf-{label}.key.pem").read_bytes())
        entries[f"leaves/{stem}.key.pem"] = {
            "kind": "leaf-key",
            "description": "copied from the file key store (PKCS#8 PBES2, PBKDF2-SHA256, AES-256-CBC)",
            "certificate": f"leaves/{stem}.pem",
        }
        manifest.update(entries)


def _revoked_station(pki: PKI, manifest: dict[str, Any]) -> str:
    """Issue and revoke (keyCompromise) a second station certificate so cso-sub's CRL is not empty."""
    identity = RequestIdentity(station_id="CP-0002", station_serial="SN-0002")
    csr_pem, _ = _make_csr(_name([(NameOID.ORGANIZATION_NAME, ORGANIZATION), (NameOID.COMMON_NAME, "SN-0002")]), ())
    issued = pki.certificates.issue(profile="station", csr=csr_pem, identity=identity, actor="test_certs/generate.py")
    serial = issued.certificate.serial
    pki.revocation.revoke(serial, RevocationReason.KEY_COMPROMISE, ca_id=issued.certificate.issuer_id)
    entries = _leaf_entries(
        pki,
        "station-revoked",
        certificate_pem=issued.certificate.certificate_pem,
        chain_pem=issued.chain_pem,
        issuer=issued.certificate.issuer_id,
    )
    entries["leaves/station-revoked.pem"].update(
        profile="station",
        made_from="CSR (key discarded)",
        identity=_identity_json(identity),
        revoked="keyCompromise",
        crl=f"crl/{issued.certificate.issuer_id}.crl.pem",
    )
    manifest.update(entries)
    return serial


def _generate(home: Path, workdir: Path, generated_at: dt.datetime) -> dict[str, Any]:
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'evpki.db'}",
        key_passphrase=TEST_PASSPHRASE,  # type: ignore[arg-type]
    )
    # One fixed instant for the whole run, so MANIFEST's generated_at is a moment at which
    # every certificate and CRL here is valid (tests pass it to `openssl verify -attime`).
    pki = PKI.open(settings, clock=FixedClock(generated_at))
    files: dict[str, Any] = {}
    try:
        pki.cas.init(organization=ORGANIZATION, actor="test_certs/generate.py")
        for ca_id in CA_IDS:
            ca = pki.cas.get(ca_id)
            _write(f"cas/{ca_id}.pem", ca.certificate_pem)
            _write(f"cas/{ca_id}.key.pem", (home / "keys" / f"ca-{ca_id}.key.pem").read_bytes())
            files[f"cas/{ca_id}.pem"] = {
                "kind": "ca-certificate",
                "ca_id": ca_id,
                "parent": ca.parent_id,
                "root": _root_of(pki, ca_id),
                "standard": ca.standard,
                "issues": list(ca.issues),
                "serial": ca.serial,
                "subject": ca.subject,
                "not_after": ca.not_after.isoformat(),
                "key": f"cas/{ca_id}.key.pem",
            }
            files[f"cas/{ca_id}.key.pem"] = {
                "kind": "ca-key",
                "description": "copied from the file key store (PKCS#8 PBES2, PBKDF2-SHA256, AES-256-CBC)",
                "certificate": f"cas/{ca_id}.pem",
            }
        _generate_leaves(pki, files)
        _copy_init_leaves(pki, home, files)
        revoked_serial = _revoked_station(pki, files)
        for ca_id in CA_IDS:
            crl = pki.crls.generate(ca_id, actor="test_certs/generate.py")
            parsed = x509.load_der_x509_crl(crl.der)
            _write(f"crl/{ca_id}.crl.pem", parsed.public_bytes(serialization.Encoding.PEM))
            files[f"crl/{ca_id}.crl.pem"] = {
                "kind": "crl",
                "ca_id": ca_id,
                "issuer_certificate": f"cas/{ca_id}.pem",
                "number": crl.number,
                "next_update": crl.next_update.isoformat(),
                "revoked_serials": [format(entry.serial_number, "X") for entry in parsed],
            }
        if revoked_serial not in files["crl/cso-sub.crl.pem"]["revoked_serials"]:
            raise RuntimeError("the revoked station certificate is missing from cso-sub's CRL")
    finally:
        pki.close()

    for name, (newkey, subject, profile, identity, expected, description) in OPENSSL_CSRS.items():
        _write(f"csr/{name}.csr.pem", _openssl_csr(workdir, name, newkey, subject))
        files[f"csr/{name}.csr.pem"] = {
            "kind": "csr",
            "profile": profile,
            "identity": _identity_json(identity),
            "expected": expected,
            "made_by": f"openssl req -newkey {newkey}",
            "description": description,
        }
    corrupted = _corrupt_signature((OUT / "csr" / "station-ok.csr.pem").read_bytes())
    _write("csr/bad-signature.csr.pem", corrupted)
    files["csr/bad-signature.csr.pem"] = {
        "kind": "csr",
        "profile": "station",
        "identity": _identity_json(_STATION_IDENTITY),
        "expected": "csr.proof-of-possession",
        "made_by": "csr/station-ok.csr.pem with the last signature bit flipped (DER edit)",
        "description": "well-formed CSR whose signature does not verify (RFC 2986 §3)",
    }
    return files


def main() -> None:
    generated_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for directory in OUTPUT_DIRS:
        # Start clean so a file dropped from the layout does not linger from an older run.
        shutil.rmtree(OUT / directory, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="evpki-test-certs-") as temp:
        home, workdir = Path(temp) / "home", Path(temp) / "openssl"
        home.mkdir()
        workdir.mkdir()
        files = _generate(home, workdir, generated_at)
    manifest = {
        "generated_at": generated_at.isoformat(),
        "generator": "test_certs/generate.py",
        "passphrase": TEST_PASSPHRASE,
        "organization": ORGANIZATION,
        "warning": "test material only: never trust these roots or use these keys in production",
        "files": dict(sorted(files.items())),
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    readme = OUT / "README.md"
    if readme.exists():
        readme.write_text(_GENERATED_LINE.sub(f"Generated: {generated_at.isoformat()}", readme.read_text(), count=1))
    print(f"wrote {len(files)} files to {OUT} (generated_at {generated_at.isoformat()})")


if __name__ == "__main__":
    main()
