"""Root reconciliation with the trust store: a foreign root is offered to stations after our own, and
a removed (retired) one is deleted from a station only once another root of its use is installed."""

from __future__ import annotations

import pytest
from cryptography import x509

from ocpp_bridge.core import CertificateService, FollowUp
from ocpp_bridge.status import cert_id_of
from pki import PKI
from pki.runtime.views import pem
from tests.foreign_roots import foreign_root, pem_of

USES = [
    ("2.0.1", "V2GRootCertificate"),
    ("2.0.1", "MORootCertificate"),
    ("2.0.1", "CSMSRootCertificate"),
    ("1.6", "ManufacturerRootCertificate"),
    ("2.1", "OEMRootCertificate"),
]


def _inventory(version: str, use: str) -> FollowUp:
    return FollowUp("GetInstalledCertificateIds", {"certificateType": use if version == "1.6" else [use]})


def _holding(version: str, use: str, *roots: x509.Certificate) -> dict[str, object]:
    if version == "1.6":
        return {"status": "Accepted", "certificateHashData": [cert_id_of(root, root) for root in roots]}
    chain = [{"certificateType": use, "certificateHashData": cert_id_of(root, root)} for root in roots]
    return {"status": "Accepted", "certificateHashDataChain": chain}


@pytest.mark.parametrize(("version", "use"), USES)
def test_a_trusted_foreign_root_is_installed_and_a_removed_one_deleted_after_its_replacement(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str], version: str, use: str
) -> None:
    identity, _ = station
    inventory = _inventory(version, use)
    (ours,) = fresh_pki.cas.roots(use)
    old = foreign_root("Foreign Old").certificate
    fresh_pki.trust.add(pem_of(old), use=use, label="foreign-old")

    # 1. A station holding our root is offered the foreign one too.
    (install,) = service.record_result(version, identity, inventory, _holding(version, use, ours))
    assert install.action == "InstallCertificate"
    assert install.payload == {"certificateType": use, "certificate": pem(old)}
    service.record_result(version, identity, install, {"status": "Accepted"})
    assert service.record_result(version, identity, inventory, _holding(version, use, ours, old)) == ()

    # 2. Removed from the store while it is the station's only root of the use: our root is installed,
    #    and the removed one stays until the station reports the replacement (never left without a root).
    fresh_pki.trust.remove("foreign-old")
    (replacement,) = service.record_result(version, identity, inventory, _holding(version, use, old))
    assert replacement.action == "InstallCertificate" and replacement.payload["certificate"] == pem(ours)
    service.record_result(version, identity, replacement, {"status": "Accepted"})

    # 3. Once a trusted root of the use is installed, the removed one is deleted (M04, hash data as reported).
    (delete,) = service.record_result(version, identity, inventory, _holding(version, use, old, ours))
    assert delete.action == "DeleteCertificate"
    assert delete.payload == {"certificateHashData": cert_id_of(old, old)}


def test_a_replacement_foreign_root_comes_before_the_removed_one_goes(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, _ = station
    use, inventory = "V2GRootCertificate", _inventory("2.0.1", "V2GRootCertificate")
    (ours,) = fresh_pki.cas.roots(use)
    old, new = foreign_root("Ecosystem G1").certificate, foreign_root("Ecosystem G2").certificate
    fresh_pki.trust.add(pem_of(old), use=use, label="g1")
    fresh_pki.trust.add(pem_of(new), use=use, label="g2")
    fresh_pki.trust.remove("g1")
    # The station missed G2 and holds G1 and ours: G2 is installed, and G1 deleted (ours is installed).
    install, delete = service.record_result("2.0.1", identity, inventory, _holding("2.0.1", use, ours, old))
    assert install.action == "InstallCertificate" and install.payload["certificate"] == pem(new)
    assert delete.action == "DeleteCertificate" and delete.payload == {"certificateHashData": cert_id_of(old, old)}


def test_a_root_nobody_trusted_is_left_alone(
    service: CertificateService, fresh_pki: PKI, station: tuple[str, str]
) -> None:
    identity, _ = station
    use, inventory = "V2GRootCertificate", _inventory("2.0.1", "V2GRootCertificate")
    (ours,) = fresh_pki.cas.roots(use)
    stranger = foreign_root("Not in the store").certificate
    assert service.record_result("2.0.1", identity, inventory, _holding("2.0.1", use, ours, stranger)) == ()
