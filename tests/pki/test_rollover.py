"""Root rollover: the new generation issues, and chains validate against the new root and, through the
link certificate, against the old one (checked by ``openssl verify``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki import PKI, InvalidInput, RequestIdentity
from tests.conftest import make_csr, requires_openssl, run_openssl


def _pem(path: Path, *certificates: x509.Certificate) -> str:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    return str(path)


@requires_openssl
def test_the_new_generation_issues_and_chains_to_both_roots(fresh_pki: PKI, tmp_path: Path) -> None:
    old_root = fresh_pki.ca_chain("cso-root")[0]
    new_id = fresh_pki.rollover_root("cso-root")
    assert new_id == "cso-root-2"
    cas = {ca.id: ca for ca in fresh_pki.list_cas()}
    assert cas["cso-sub-2"].parent_id == "cso-root-2"
    assert set(cas["cso-sub-2"].issues) == {"station", "csms-server"} and cas["cso-sub"].issues == ()
    new_root = fresh_pki.ca_chain(new_id)[0]
    assert new_root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value.endswith(" G2")
    link = fresh_pki.root_link(new_id)
    assert link is not None and link.issuer == old_root.subject and link.public_key() == new_root.public_key()
    assert fresh_pki.roots("CSMSRootCertificate")[0] == new_root  # newest first

    csr, _ = make_csr("SN-ROLL")
    issued = fresh_pki.issue(
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
    assert fresh_pki.rollover_root(new_id) == "cso-root-3"


def test_only_roots_roll_over(fresh_pki: PKI) -> None:
    with pytest.raises(InvalidInput, match="not a root"):
        fresh_pki.rollover_root("cso-sub")
