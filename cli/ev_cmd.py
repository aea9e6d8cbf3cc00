"""``evpki ev``: play a vehicle against this PKI's contract provisioning, end to end.

``create-vehicle`` makes a test car (a P-256 key and an OEM provisioning certificate from our OEM
CA; with ``--iso 20`` a P-521 or Ed448 + X448 car from the -20 OEM CA); ``simulate-install`` and
``simulate-update`` build and sign the car's request, send it through the same service a
station's Get15118EVCertificate reaches, and check the answer as an EV does (signature, chains,
the decrypted key against the certificate). An ISO 15118-20 car (``simulate-install --iso 20``)
asks again while ``RemainingContractCertificateChains`` > 0 and checks every answer.
"""

from __future__ import annotations

import base64
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.x509.oid import NameOID

from cli.common import actor, check_output_dir, console, fail, guarded, open_pki, print_json, read_input_file
from pki import PKI, RequestIdentity
from pki.core import InvalidInput, VerificationFailed, write_private
from pki.iso15118 import MSG_DEF_NAMESPACE, ResponseCode, ev, ev20

__all__ = ["app"]

# The command prints each outcome itself; the service's log lines would repeat it on stderr.
logging.getLogger("evpki.iso15118").addHandler(logging.NullHandler())

app = typer.Typer(
    help="Play an electric vehicle: create a test car, install or update its contract through evpki.",
    no_args_is_help=True,
)

OutDir = Annotated[
    Path | None, typer.Option("--out-dir", help="Write the contract chain and key (mode 0600) into this directory.")
]
OcppVersion = Annotated[str, typer.Option("--ocpp-version", help="1.6, 2.0.1 or 2.1 (the exiResponse limit).")]
ISO15118_20_SCHEMA = "urn:iso:std:iso:15118:-20:CommonMessages"
_STANDARDS = {"2": "iso15118-2", "20": "iso15118-20"}


class Iso(StrEnum):
    ISO2 = "2"
    ISO20 = "20"


class Curve(StrEnum):
    P521 = "p521"
    X448 = "x448"


IsoOption = Annotated[Iso, typer.Option("--iso", help="ISO 15118 edition: 2 (P-256) or 20 (P-521 / Ed448 + X448).")]


def _certificates(path: Path, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(read_input_file(str(path)))
    except (ValueError, x509.InvalidVersion):
        raise InvalidInput(f"{path}: no PEM certificate ({what})") from None


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(read_input_file(str(path)), password=None)
    except TypeError:
        raise InvalidInput(f"{path}: the key is encrypted; a simulated car's key is a plain PEM file") from None
    except ValueError:
        raise InvalidInput(f"{path}: not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput(f"{path}: ISO 15118-2 vehicles use P-256 keys")
    return key


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _roots(pki: PKI) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """The V2G roots a car of this PKI trusts, and the MO roots its contract chains end in."""
    v2g = pki.cas.roots("V2GRootCertificate")
    mo = [pki.cas.chain(ca.id)[-1] for ca in pki.cas.list() if "contract" in ca.issues]
    return v2g, mo


def _issuer(pki: PKI, profile: str, iso: Iso) -> str | None:
    """The CA of the edition issuing ``profile``; None lets issuance choose (a PKI without -20 CAs)."""
    cas = [ca.id for ca in pki.cas.list() if profile in ca.issues and ca.standard == _STANDARDS[iso.value]]
    if iso is Iso.ISO20 and len(cas) != 1:
        raise InvalidInput(
            f"this PKI has {len(cas)} ISO 15118-20 CAs issuing {profile}; run `evpki init --iso15118-20`"
        )
    return cas[0] if len(cas) == 1 else None


def _private_pem(key: ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey | x448.X448PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@app.command("create-vehicle")
@guarded
def create_vehicle(
    pcid: Annotated[str, typer.Option("--pcid", help="Provisioning certificate id: 17-18 letters and digits.")],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where oem.pem, oem.key.pem (0600) and for x448 oem-x448.key.pem go.")
    ],
    iso: IsoOption = Iso.ISO2,
    curve: Annotated[
        Curve, typer.Option("--curve", help="-20 only: p521 (one P-521 key) or x448 (Ed448 signing + X448 agreement).")
    ] = Curve.P521,
) -> None:
    """Make a test vehicle: a key and an OEM provisioning certificate (CN = PCID, DC=OEM).

    ISO 15118-2: P-256. ISO 15118-20 (--iso 20): P-521, or Ed448 with an X448 key in the certificate's
    alternate public key ([V2G20-2534]), from the -20 OEM CA.
    """
    check_output_dir(out_dir)  # before the certificate is issued: it is useless without its key file
    pki = open_pki()
    agreement: x448.X448PrivateKey | None = None
    key: ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
    if iso is Iso.ISO20:
        csr, key, agreement = ev20.vehicle_csr(pcid, curve.value)
    else:
        csr, key = ev.vehicle_csr(pcid)
    issued = pki.certificates.issue(
        profile="oem-provisioning",
        csr=csr,
        identity=RequestIdentity(pcid=pcid),
        ca_id=_issuer(pki, "oem-provisioning", iso),
        actor=actor(),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "oem.pem").write_text(issued.chain_pem)
    write_private(out_dir / "oem.key.pem", _private_pem(key))
    keys = f"key {out_dir / 'oem.key.pem'}"
    if agreement is not None:
        write_private(out_dir / "oem-x448.key.pem", _private_pem(agreement))
        keys += f", X448 key {out_dir / 'oem-x448.key.pem'}"
    console.print(f"vehicle {pcid}: {out_dir / 'oem.pem'} (serial {issued.certificate.serial}), {keys}")


def _run(
    pki: PKI,
    action: str,
    exi: bytes,
    own_key: ec.EllipticCurvePrivateKey,
    session_id: bytes,
    ocpp_version: str,
    out_dir: Path | None,
) -> None:
    result = pki.contracts.provision(
        iso15118_schema_version=MSG_DEF_NAMESPACE,
        action=action,
        exi_request=base64.b64encode(exi).decode(),
        ocpp_version=ocpp_version,
        actor=actor(),
    )
    report: dict[str, Any] = {
        "status": result.status,
        "responseCode": result.response_code.value if result.response_code else None,
        "exiRequestChars": len(base64.b64encode(exi)),
        "exiResponseChars": len(result.exi_response),
    }
    if result.reason:
        report["reason"] = result.reason
    if result.status != "Accepted" or result.response_code is None or not result.response_code.ok:
        print_json(report)
        raise fail(f"the vehicle got no contract: {result.reason}", 4 if result.status == "Accepted" else 3)
    v2g, mo = _roots(pki)
    contract = ev.open_response(
        base64.b64decode(result.exi_response),
        own_key,
        v2g_roots=v2g,
        mo_roots=mo,
        session_id=session_id,
        now=pki.clock.now(),
    )  # raises VerificationFailed (exit 9) naming the check that failed
    report.update(
        {
            "eMAID": contract.emaid,
            "contractCertificate": {
                "serial": format(contract.certificate.serial_number, "X"),
                "subject": contract.certificate.subject.rfc4514_string(),
                "notAfter": contract.certificate.not_valid_after_utc.isoformat(),
            },
            "checks": [
                "SessionID echoed",
                "CPS signature over the 4 signed elements",
                "CPS chain to a V2G root the car trusts",
                "contract chain to the MO root",
                "contract key decrypted and matching the certificate",
            ],
        }
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        chain = b"".join(_pem(c) for c in (contract.certificate, *contract.sub_certificates))
        (out_dir / "contract.pem").write_bytes(chain)
        write_private(
            out_dir / "contract.key.pem",
            contract.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        report["written"] = [str(out_dir / "contract.pem"), str(out_dir / "contract.key.pem")]
    print_json(report)


@app.command("simulate-install")
@guarded
def simulate_install(
    oem_cert: Annotated[
        Path, typer.Option("--oem-cert", help="The car's OEM provisioning certificate (PEM; -20: with its sub-CAs).")
    ],
    oem_key: Annotated[Path, typer.Option("--oem-key", help="Its private key (plain PEM: P-256; -20 P-521 or Ed448).")],
    ocpp_version: Annotated[
        str | None,
        typer.Option("--ocpp-version", help="1.6, 2.0.1 or 2.1 (the exiResponse limit; default 2.0.1, -20: 2.1)."),
    ] = None,
    out_dir: OutDir = None,
    iso: IsoOption = Iso.ISO2,
    x448_key: Annotated[
        Path | None,
        typer.Option("--x448-key", help="-20 Ed448 cars: the X448 key (default: oem-x448.key.pem beside it)."),
    ] = None,
    maximum: Annotated[
        int,
        typer.Option("--maximum", min=1, max=255, help="-20: MaximumContractCertificateChains of the first request."),
    ] = 8,
    emaid: Annotated[
        list[str] | None, typer.Option("--emaid", help="-20: a PrioritizedEMAIDs entry (repeatable, up to 8).")
    ] = None,
) -> None:
    """Install a contract as a car would (CertificateInstallationReq), and verify what comes back.

    The contract must exist: evpki contract add --emaid E --pcid <the certificate's CN>.
    With --iso 20 the car asks again while RemainingContractCertificateChains > 0 (one chain fewer
    each time) and checks every answer; --out-dir gets <eMAID>.pem and <eMAID>.key.pem per contract.
    Exit 0 when every check passed, 4 on an ISO FAILED_* / WARNING_* answer, 9 when a check failed.
    """
    check_output_dir(out_dir)  # before the contract certificate is issued
    pki = open_pki()
    if iso is Iso.ISO20:
        agreement_path = x448_key or oem_key.with_name("oem-x448.key.pem")
        _install20(pki, oem_cert, oem_key, agreement_path, ocpp_version or "2.1", maximum, emaid or [], out_dir)
        return
    ocpp_version = ocpp_version or "2.0.1"
    certificate = _certificates(oem_cert, "the OEM provisioning certificate")[0]
    session_id = os.urandom(8)
    v2g, _ = _roots(pki)
    exi = ev.installation_request(certificate, _key(oem_key), v2g, session_id)
    _run(pki, "Install", exi, _key(oem_key), session_id, ocpp_version, out_dir)


@app.command("simulate-update")
@guarded
def simulate_update(
    contract_cert: Annotated[
        Path, typer.Option("--contract-cert", help="The car's contract chain (PEM: leaf first, then sub-CAs).")
    ],
    contract_key: Annotated[Path, typer.Option("--contract-key", help="The contract's private key (plain PEM).")],
    ocpp_version: OcppVersion = "2.0.1",
    out_dir: OutDir = None,
) -> None:
    """Renew a contract certificate as a car would (CertificateUpdateReq), and verify what comes back."""
    check_output_dir(out_dir)  # before the contract certificate is issued
    pki = open_pki()
    chain = _certificates(contract_cert, "the contract certificate")
    key = _key(contract_key)
    names = chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise InvalidInput(f"{contract_cert}: the contract certificate has no CN (the eMAID)")
    held = ev.InstalledContract(
        response_code=ResponseCode.OK,
        emaid=str(names[0].value),
        certificate=chain[0],
        sub_certificates=tuple(chain[1:]),
        private_key=key,
        cps_chain=(),
    )
    session_id = os.urandom(8)
    v2g, _ = _roots(pki)
    _run(pki, "Update", ev.update_request(held, v2g, session_id), key, session_id, ocpp_version, out_dir)


# -- ISO 15118-20 -----------------------------------------------------------------------------------


def _key20(path: Path) -> ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey:
    key = _load_key(path)
    if isinstance(key, ed448.Ed448PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP521R1):
        return key
    raise InvalidInput(f"{path}: ISO 15118-20 vehicles sign with P-521 or Ed448 keys")


def _load_key(path: Path) -> object:
    try:
        return serialization.load_pem_private_key(read_input_file(str(path)), password=None)
    except TypeError:
        raise InvalidInput(f"{path}: the key is encrypted; a simulated car's key is a plain PEM file") from None
    except ValueError:
        raise InvalidInput(f"{path}: not a PEM private key") from None


def _roots20(pki: PKI) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """The -20 V2G roots a -20 car trusts (above our -20 CPS CAs), and the -20 MO roots."""

    def roots_of(profile: str) -> list[x509.Certificate]:
        found: list[x509.Certificate] = []
        for ca in pki.cas.list():
            if profile in ca.issues and ca.standard == _STANDARDS["20"]:
                root = pki.cas.chain(ca.id)[-1]
                if root not in found:
                    found.append(root)
        return found

    v2g, mo = roots_of("cps-leaf"), roots_of("contract")
    if not v2g or not mo:
        raise InvalidInput("this PKI has no ISO 15118-20 CPS or MO CA; run `evpki init --iso15118-20`")
    return v2g, mo


def _install20(
    pki: PKI,
    oem_cert: Path,
    oem_key: Path,
    agreement_path: Path,
    ocpp_version: str,
    maximum: int,
    emaids: list[str],
    out_dir: Path | None,
) -> None:
    chain = [c for c in _certificates(oem_cert, "the OEM provisioning certificate") if c.subject != c.issuer]
    if not chain:
        raise InvalidInput(f"{oem_cert}: only self-signed certificates, no OEM provisioning certificate")
    key = _key20(oem_key)
    agreement: ec.EllipticCurvePrivateKey | x448.X448PrivateKey
    if isinstance(key, ec.EllipticCurvePrivateKey):
        agreement = key  # [V2G20-2534]: a P-521 car agrees with its signing key
    else:
        loaded = _load_key(agreement_path)
        if not isinstance(loaded, x448.X448PrivateKey):
            raise InvalidInput(f"{agreement_path}: an Ed448 car needs its X448 key (--x448-key)")
        agreement = loaded
    names = chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise InvalidInput(f"{oem_cert}: the OEM provisioning certificate has no CN (the PCID)")
    pcid = str(names[0].value)
    v2g, mo = _roots20(pki)
    report: dict[str, Any] = {"pcid": pcid, "contracts": []}
    for _ in range(maximum):  # each answer asks for one chain fewer: at most `maximum` requests
        session_id = os.urandom(8)
        exi = ev20.installation_request(
            chain,
            key,
            v2g,
            session_id=session_id,
            timestamp=int(pki.clock.now().timestamp()),
            maximum=maximum,
            prioritized_emaids=emaids,
        )
        result = pki.contracts.provision(
            iso15118_schema_version=ISO15118_20_SCHEMA,
            action="Install",
            exi_request=base64.b64encode(exi).decode(),
            ocpp_version=ocpp_version,
            actor=actor(),
        )
        step: dict[str, Any] = {
            "status": result.status,
            "responseCode": result.response_code.value if result.response_code else None,
            "exiRequestChars": len(base64.b64encode(exi)),
            "exiResponseChars": len(result.exi_response),
        }
        if result.reason:
            step["reason"] = result.reason
        if result.status != "Accepted" or result.response_code is None or not result.response_code.ok:
            report["contracts"].append(step)
            print_json(report)
            raise fail(f"the vehicle got no contract: {result.reason}", 4 if result.status == "Accepted" else 3)
        contract = ev20.open_response(
            base64.b64decode(result.exi_response),
            agreement,
            pcid=pcid,
            v2g_roots=v2g,
            mo_roots=mo,
            session_id=session_id,
            now=pki.clock.now(),
        )  # raises VerificationFailed (exit 9) naming the check that failed
        if contract.remaining != result.remaining_contracts:
            raise VerificationFailed("RemainingContractCertificateChains differs from OCPP remainingContracts")
        step.update(
            {
                "eMAID": contract.emaid,
                "ecdhCurve": contract.ecdh_curve,
                "remainingContractCertificateChains": contract.remaining,
                "contractCertificate": {
                    "serial": format(contract.certificate.serial_number, "X"),
                    "subject": contract.certificate.subject.rfc4514_string(),
                    "notAfter": contract.certificate.not_valid_after_utc.isoformat(),
                },
            }
        )
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            pem_path, key_path = out_dir / f"{contract.emaid}.pem", out_dir / f"{contract.emaid}.key.pem"
            pem_path.write_bytes(b"".join(_pem(c) for c in (contract.certificate, *contract.sub_certificates)))
            write_private(key_path, _private_pem(contract.private_key))
            step["written"] = [str(pem_path), str(key_path)]
        report["contracts"].append(step)
        if contract.remaining == 0:
            break
        maximum -= 1
    report["checks"] = [
        "SessionID echoed",
        "CPS signature over SignedInstallationData (SHA-512, P-521 / Ed448)",
        "CPS chain to a -20 V2G root the car trusts",
        "contract chain to the -20 MO root",
        "contract key decrypted (ECDH, ConcatKDF SHA-512, AES-GCM with PCID and SKI) and matching the certificate",
        "RemainingContractCertificateChains = OCPP remainingContracts",
    ]
    print_json(report)
