"""Root rollover: the new generation issues, and chains validate against the new root and, through the
link certificate, against the old one (checked by ``openssl verify``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki import PKI, InvalidInput, RequestIdentity
from pki.ca.hierarchy import load_hierarchy
from pki.ca.rollover import LINK_LABEL_PREFIX
from pki.iso15118.ev import vehicle_csr
from pki.runtime.views import CaView
from pki.store.repository import CertificateFilter
from tests.conftest import make_csr, requires_openssl, run_openssl


def _pem(path: Path, *certificates: x509.Certificate) -> str:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    return str(path)


@requires_openssl
def test_the_new_generation_issues_and_chains_to_both_roots(fresh_pki: PKI, tmp_path: Path) -> None:
    old_root = fresh_pki.cas.chain("cso-root")[0]
    new_id = fresh_pki.cas.rollover("cso-root")
    assert new_id == "cso-root-2"
    cas = {ca.id: ca for ca in fresh_pki.cas.list()}
    assert cas["cso-sub-2"].parent_id == "cso-root-2"
    assert set(cas["cso-sub-2"].issues) == {"station", "csms-server"} and cas["cso-sub"].issues == ()
    new_root = fresh_pki.cas.chain(new_id)[0]
    assert new_root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value.endswith(" G2")
    link = fresh_pki.cas.root_link(new_id)
    assert link is not None and link.issuer == old_root.subject and link.public_key() == new_root.public_key()
    assert fresh_pki.cas.roots("CSMSRootCertificate")[0] == new_root  # newest first

    csr, _ = make_csr("SN-ROLL")
    issued = fresh_pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id="CP", station_serial="SN-ROLL")
    )
    assert issued.certificate.issuer_id == "cso-sub-2"
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(issued.chain_pem)
    new = run_openssl("verify", "-CAfile", _pem(tmp_path / "new.pem", new_root), "-untrusted", str(leaf), str(leaf))
    assert new.returncode == 0, new.stderr
    # A station that only has the old root, plus the link it was given, accepts the new chain too.
    old = run_openssl("verify", "-CAfile", _pem(tmp_path / "old.pem", old_root), "-untrusted",
                      _pem(tmp_path / "link.pem", link), "-untrusted", str(leaf), str(leaf))  # fmt: skip
    assert old.returncode == 0, old.stderr
    assert fresh_pki.cas.rollover(new_id) == "cso-root-3"


def test_only_roots_roll_over(fresh_pki: PKI) -> None:
    with pytest.raises(InvalidInput, match="not a root"):
        fresh_pki.cas.rollover("cso-sub")


# -- every root of the default hierarchy -----------------------------------------------------------

ROOTS = tuple(ca.id for ca in load_hierarchy().cas if ca.is_root)
SECC_ID = "DE*ABC*S*EVSE0001CONTROLLER00000000000000009"
EMAID = "DEABCC123ABC99"


def test_the_default_hierarchy_has_the_five_roots_this_module_covers() -> None:
    assert set(ROOTS) == {"cso-root", "mf-root", "v2g-root", "mo-root", "oem-root"}


def _subtree(pki: PKI, root_id: str) -> list[CaView]:
    """``root_id`` and every CA below it, in creation order."""
    cas = pki.cas.list()
    members = {root_id}
    for ca in cas:  # parents are created before their children
        if ca.parent_id in members:
            members.add(ca.id)
    return [ca for ca in cas if ca.id in members]


def _request(profile: str) -> tuple[str | bytes, RequestIdentity] | None:
    """A CSR and identity for a leaf of ``profile``, or None for one only evpki holds keys of."""
    if profile == "station":
        return make_csr("SN-ROLL")[0], RequestIdentity(station_id="CP-ROLL", station_serial="SN-ROLL")
    if profile == "csms-server":
        return make_csr("csms.example.com", dns=("csms.example.com",))[0], RequestIdentity(fqdn="csms.example.com")
    if profile == "secc":
        return make_csr(SECC_ID, country="DE", dc="CPO")[0], RequestIdentity(secc_id=SECC_ID)
    if profile == "contract":
        return make_csr(EMAID, dc="MO")[0], RequestIdentity(emaid=EMAID)
    if profile == "oem-provisioning":
        return vehicle_csr("WMI00000000000099")[0], RequestIdentity(pcid="WMI00000000000099")
    return None  # firmware-signer, cps-leaf: managed leaves, checked through their successors


def _verify_against(pki: PKI, tmp_path: Path, root: x509.Certificate, chain_pem: str, name: str) -> None:
    """``openssl verify`` at the PKI's (test) time with ``root`` as the only trust anchor (no link, no old root)."""
    chain = tmp_path / f"{name}.pem"
    chain.write_text(chain_pem)
    anchor = _pem(tmp_path / f"{name}-anchor.pem", root)
    at = str(int(pki.clock.now().timestamp()))
    checked = run_openssl("verify", "-attime", at, "-CAfile", anchor, "-untrusted", str(chain), str(chain))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("root_id", ROOTS)
def test_rollover_copies_the_subtree_and_moves_every_issued_profile(fresh_pki: PKI, root_id: str) -> None:
    before = _subtree(fresh_pki, root_id)
    issued_before = {profile: ca.id for ca in before for profile in ca.issues}
    new_id = fresh_pki.cas.rollover(root_id)
    after = _subtree(fresh_pki, new_id)

    # Same shape: one copy of each CA, with the same path length, under the new root.
    assert len(after) == len(before)
    assert [ca.id.rsplit("-", 1)[0] if ca.id.endswith("-2") else ca.id for ca in after] == [ca.id for ca in before]
    for old, new in zip(before, after, strict=True):
        old_certificate = x509.load_pem_x509_certificate(old.certificate_pem.encode())
        new_certificate = x509.load_pem_x509_certificate(new.certificate_pem.encode())
        assert new_certificate.extensions.get_extension_for_class(x509.BasicConstraints).value == (
            old_certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        )
        assert new_certificate.public_key() != old_certificate.public_key()
    # Every profile the old generation issued -- also what the root issued itself -- now comes from
    # the matching CA of the new generation and from no other CA.
    cas = {ca.id: ca for ca in fresh_pki.cas.list()}
    assert all(cas[ca.id].issues == () for ca in before)
    issued_after = {profile: ca.id for ca in after for profile in ca.issues}
    assert issued_after == {profile: f"{ca_id}-2" for profile, ca_id in issued_before.items()}
    for profile in issued_before:
        assert [ca.id for ca in cas.values() if profile in ca.issues] == [issued_after[profile]]
    # One audit record per move, each naming where the profiles went.
    moves = fresh_pki.audit.records(action="ca-issues-moved", limit=1000)
    assert {(r.ca_id, json.loads(r.details)["to"]) for r in moves} == {
        (ca_id, f"{ca_id}-2") for ca_id in set(issued_before.values())
    }
    assert fresh_pki.audit.verify().ok


@requires_openssl
@pytest.mark.parametrize("root_id", ROOTS)
def test_the_new_generation_issues_after_the_old_root_is_revoked(fresh_pki: PKI, root_id: str, tmp_path: Path) -> None:
    profiles = [profile for ca in _subtree(fresh_pki, root_id) for profile in ca.issues]
    old_root = fresh_pki.cas.get(root_id)
    new_id = fresh_pki.cas.rollover(root_id)
    new_root = fresh_pki.cas.chain(new_id)[0]
    fresh_pki.revocation.revoke(old_root.serial, "superseded", ca_id=root_id)
    if "contract" in profiles:
        fresh_pki.contracts.add(emaid=EMAID, pcid="WMI00000000000098")
    issued_any = False
    for profile in profiles:
        request = _request(profile)
        if request is None:
            continue
        csr, identity = request
        issued = fresh_pki.certificates.issue(profile=profile, csr=csr, identity=identity)
        assert fresh_pki.cas.chain(issued.certificate.issuer_id)[-1] == new_root
        _verify_against(fresh_pki, tmp_path, new_root, issued.chain_pem, profile)
        issued_any = True
    assert issued_any or root_id == "mf-root"  # mf-root issues firmware signers only (see test_firmware_rollover)


@requires_openssl
@pytest.mark.parametrize("root_id", ROOTS)
def test_managed_leaves_get_successors_in_the_new_generation(fresh_pki: PKI, root_id: str, tmp_path: Path) -> None:
    old_ids = {ca.id for ca in _subtree(fresh_pki, root_id)}
    old_leaves = [
        view
        for ca_id in old_ids
        for view in fresh_pki.certificates.list(CertificateFilter(ca_id=ca_id))
        if view.label is not None and not view.label.startswith(LINK_LABEL_PREFIX) and view.profile != "sub-ca"
        and view.profile != "ocsp-responder"
    ]  # fmt: skip
    new_id = fresh_pki.cas.rollover(root_id)
    new_root = fresh_pki.cas.chain(new_id)[0]
    new_ids = {ca.id for ca in _subtree(fresh_pki, new_id)}
    expected = {"cso-root": {"csms-server"}, "mf-root": {"firmware-signer"}, "v2g-root": {"cps-leaf"}}
    assert {view.label for view in old_leaves} == expected.get(root_id, set())
    for old in old_leaves:
        (new,) = [
            view
            for ca_id in new_ids
            for view in fresh_pki.certificates.list(CertificateFilter(ca_id=ca_id))
            if view.label == old.label
        ]
        assert new.issuer_id == f"{old.issuer_id}-2" and new.profile == old.profile and new.subject == old.subject
        old_certificate = x509.load_pem_x509_certificate(old.certificate_pem.encode())
        new_certificate = x509.load_pem_x509_certificate(new.certificate_pem.encode())
        assert new_certificate.public_key() != old_certificate.public_key()
        assert fresh_pki.certificates.get(old.serial, old.issuer_id).status == "valid"  # stations in the field
        chain = new.certificate_pem + "".join(
            certificate.public_bytes(serialization.Encoding.PEM).decode()
            for certificate in fresh_pki.cas.chain(new.issuer_id)
        )
        _verify_against(fresh_pki, tmp_path, new_root, chain, str(new.label))
