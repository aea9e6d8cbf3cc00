"""CSMS-root rollover end to end through root reconciliation (M03/M04/M05, M05.FR.09-16).

The station holds the old CSO root; after ``rollover_root`` it is offered the link certificate (the
new root signed by the old one), which counts as the new root while the old root is trusted.
Once the old root is revoked, the station gets the self-signed new root and the old one is deleted.
A station certificate of the new generation verifies against what the station then holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from ocpp_bridge.core import CertificateService, FollowUp
from ocpp_bridge.status import cert_id_of
from pki import PKI
from pki.runtime.views import pem
from tests.conftest import requires_openssl, run_openssl
from tests.ocpp_bridge.conftest import chain_of, station_csr

INVENTORY = FollowUp("GetInstalledCertificateIds", {"certificateType": ["CSMSRootCertificate"]})


def _report(*entries: tuple[x509.Certificate, x509.Certificate]) -> dict[str, object]:
    chain = [
        {"certificateType": "CSMSRootCertificate", "certificateHashData": cert_id_of(certificate, issuer)}
        for certificate, issuer in entries
    ]
    return {"status": "Accepted", "certificateHashDataChain": chain}


@requires_openssl
def test_a_station_follows_a_csms_root_rollover(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str], tmp_path: Path
) -> None:
    identity, serial = station
    old_root = fresh_pki.cas.roots("CSMSRootCertificate")[0]
    new_id = fresh_pki.cas.rollover("cso-root")
    new_root = fresh_pki.cas.chain(new_id)[0]
    link = fresh_pki.cas.root_link(new_id)
    assert link is not None

    # 1. The station holds only the old root: it is offered the new root signed by the old one.
    (install,) = service.record_result("2.0.1", identity, INVENTORY, _report((old_root, old_root)))
    assert install.action == "InstallCertificate" and install.payload["certificate"] == pem(link)
    service.record_result("2.0.1", identity, install, {"status": "Accepted"})

    # 2. With the link installed nothing more is due while the old root is trusted.
    assert service.record_result("2.0.1", identity, INVENTORY, _report((old_root, old_root), (link, old_root))) == ()

    # A certificate of the new generation, as CertificateSigned delivers it, verifies against the old
    # root plus the link the station holds (OpenSSL as a station's TLS stack would).
    signed = service.handle("2.0.1", identity, "SignCertificate", {"csr": station_csr(serial)}).follow_ups[0]
    leaf = tmp_path / "chain.pem"
    leaf.write_text(signed.payload["certificateChain"])
    assert chain_of(signed)[1].issuer == new_root.subject  # issued by cso-sub-2
    (tmp_path / "store.pem").write_text(pem(old_root))
    (tmp_path / "link.pem").write_text(pem(link))
    checked = run_openssl("verify", "-CAfile", str(tmp_path / "store.pem"), "-untrusted", str(tmp_path / "link.pem"),
                          "-untrusted", str(leaf), str(leaf))  # fmt: skip
    assert checked.returncode == 0, checked.stderr

    # 3. The old generation ends: the self-signed new root is installed first, then the old root deleted.
    fresh_pki.revocation.revoke(format(old_root.serial_number, "X"), "superseded", ca_id="cso-root")
    install_new, delete_old = service.record_result(
        "2.0.1", identity, INVENTORY, _report((old_root, old_root), (link, old_root))
    )
    assert install_new.action == "InstallCertificate" and install_new.payload["certificate"] == pem(new_root)
    assert delete_old.action == "DeleteCertificate"
    assert delete_old.payload == {"certificateHashData": cert_id_of(old_root, old_root)}

    # 4. Afterwards the station's store is the new root (and the harmless link): nothing is due.
    assert service.record_result("2.0.1", identity, INVENTORY, _report((new_root, new_root), (link, old_root))) == ()


# -- the other roots: V2G, MO, Manufacturer (2.0.1 and 1.6), OEM (2.1) -------------------------------

# (OCPP version, root use as the station names it, our root) for every non-CSMS root of the default hierarchy.
OTHER_ROOTS = [
    ("2.0.1", "ManufacturerRootCertificate", "mf-root"),
    ("1.6", "ManufacturerRootCertificate", "mf-root"),
    ("2.0.1", "V2GRootCertificate", "v2g-root"),
    ("2.0.1", "MORootCertificate", "mo-root"),
    ("2.1", "OEMRootCertificate", "oem-root"),
]


def _inventory(version: str, use: str) -> FollowUp:
    return FollowUp("GetInstalledCertificateIds", {"certificateType": use if version == "1.6" else [use]})


def _holding(version: str, use: str, *roots: x509.Certificate) -> dict[str, object]:
    """A GetInstalledCertificateIds answer listing self-signed ``roots`` under ``use``."""
    if version == "1.6":
        return {"status": "Accepted", "certificateHashData": [cert_id_of(root, root) for root in roots]}
    chain = [{"certificateType": use, "certificateHashData": cert_id_of(root, root)} for root in roots]
    return {"status": "Accepted", "certificateHashDataChain": chain}


@pytest.mark.parametrize(("version", "use", "root_id"), OTHER_ROOTS)
def test_a_station_gets_the_new_root_before_the_old_one_is_deleted(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str], version: str, use: str, root_id: str
) -> None:
    identity, _ = station
    inventory = _inventory(version, use)
    old_root = fresh_pki.cas.chain(root_id)[0]
    new_root = fresh_pki.cas.chain(fresh_pki.cas.rollover(root_id))[0]

    # 1. Holding the old root, the station is offered the self-signed new one (M05); nothing is deleted.
    #    Only the CSMS root travels as a link certificate (M05.FR.09-16 apply to CSMSRootCertificate).
    (install,) = service.record_result(version, identity, inventory, _holding(version, use, old_root))
    assert install.action == "InstallCertificate"
    assert install.payload == {"certificateType": use, "certificate": pem(new_root)}
    service.record_result(version, identity, install, {"status": "Accepted"})

    # 2. Holding both while both are trusted: nothing is due.
    assert service.record_result(version, identity, inventory, _holding(version, use, old_root, new_root)) == ()

    # 3. The old generation ends: a station that missed step 1 gets the install first, then the delete (M04).
    fresh_pki.revocation.revoke(format(old_root.serial_number, "X"), "superseded", ca_id=root_id)
    install_new, delete_old = service.record_result(version, identity, inventory, _holding(version, use, old_root))
    assert install_new.action == "InstallCertificate" and install_new.payload["certificate"] == pem(new_root)
    assert delete_old.action == "DeleteCertificate"
    assert delete_old.payload == {"certificateHashData": cert_id_of(old_root, old_root)}


@pytest.mark.parametrize(("version", "use", "root_id"), OTHER_ROOTS)
def test_once_the_old_root_is_revoked_a_station_holding_both_only_deletes_it(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str], version: str, use: str, root_id: str
) -> None:
    identity, _ = station
    inventory = _inventory(version, use)
    old_root = fresh_pki.cas.chain(root_id)[0]
    new_root = fresh_pki.cas.chain(fresh_pki.cas.rollover(root_id))[0]
    fresh_pki.revocation.revoke(format(old_root.serial_number, "X"), "superseded", ca_id=root_id)
    (delete_old,) = service.record_result(version, identity, inventory, _holding(version, use, old_root, new_root))
    assert delete_old.action == "DeleteCertificate"
    assert delete_old.payload == {"certificateHashData": cert_id_of(old_root, old_root)}
    assert service.record_result(version, identity, inventory, _holding(version, use, new_root)) == ()


@requires_openssl
def test_firmware_signed_after_the_rollover_verifies_against_the_root_the_station_was_given(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str], tmp_path: Path
) -> None:
    """End to end for mf-root: the ManufacturerRootCertificate reconciliation installs is the root the
    new firmware signer chains to (OCPP L01.FR.12, checked by openssl as a station would)."""
    identity, _ = station
    use = "ManufacturerRootCertificate"
    old_root = fresh_pki.cas.chain("mf-root")[0]
    fresh_pki.cas.rollover("mf-root")
    (install,) = service.record_result("2.0.1", identity, _inventory("2.0.1", use), _holding("2.0.1", use, old_root))
    signed = fresh_pki.firmware.sign([b"firmware image"], location=None, actor="test")
    (tmp_path / "installed.pem").write_text(install.payload["certificate"])
    (tmp_path / "signer.pem").write_text(signed.certificate_pem)
    at = str(int(fresh_pki.clock.now().timestamp()))
    checked = run_openssl(
        "verify", "-attime", at, "-CAfile", str(tmp_path / "installed.pem"), str(tmp_path / "signer.pem")
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
