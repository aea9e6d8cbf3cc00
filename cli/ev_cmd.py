"""``evpki ev``: play a vehicle against this PKI's contract provisioning, end to end.

``create-vehicle`` makes a test car (a P-256 key and an OEM provisioning certificate from our OEM
CA); ``simulate-install`` and ``simulate-update`` build and sign the car's request, send it
through the same service a station's Get15118EVCertificate reaches, and check the answer as an
EV does (signature, chains, the decrypted key against the certificate).
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cli.common import actor, check_output_dir, console, fail, guarded, open_pki, print_json, read_input_file
from pki import PKI, RequestIdentity
from pki.core import InvalidInput, write_private
from pki.iso15118 import MSG_DEF_NAMESPACE, ResponseCode, ev

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


@app.command("create-vehicle")
@guarded
def create_vehicle(
    pcid: Annotated[str, typer.Option("--pcid", help="Provisioning certificate id: 17-18 letters and digits.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where oem.pem and oem.key.pem (0600) are written.")],
) -> None:
    """Make a test vehicle: a P-256 key and an OEM provisioning certificate (CN = PCID, DC=OEM)."""
    check_output_dir(out_dir)  # before the certificate is issued: it is useless without its key file
    csr, key = ev.vehicle_csr(pcid)
    issued = open_pki().certificates.issue(
        profile="oem-provisioning", csr=csr, identity=RequestIdentity(pcid=pcid), actor=actor()
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "oem.pem").write_text(issued.chain_pem)
    write_private(
        out_dir / "oem.key.pem",
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    console.print(
        f"vehicle {pcid}: {out_dir / 'oem.pem'} (serial {issued.certificate.serial}), key {out_dir / 'oem.key.pem'}"
    )


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
    oem_cert: Annotated[Path, typer.Option("--oem-cert", help="The car's OEM provisioning certificate (PEM).")],
    oem_key: Annotated[Path, typer.Option("--oem-key", help="Its private key (plain PEM, P-256).")],
    ocpp_version: OcppVersion = "2.0.1",
    out_dir: OutDir = None,
) -> None:
    """Install a contract as a car would (CertificateInstallationReq), and verify what comes back.

    The contract must exist: evpki contract add --emaid E --pcid <the certificate's CN>.
    Exit 0 when every check passed, 4 on an ISO FAILED_* answer, 9 when a check failed.
    """
    check_output_dir(out_dir)  # before the contract certificate is issued
    pki = open_pki()
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
