"""``pki.trust.sync`` on listings handed to it (no network), and the OEM seed of
``EVPKI_ISO15118_OEM_ROOTS`` that contract provisioning applies. Roots made with plain ``cryptography``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pki import PKI
from pki.ca import RootUse
from pki.core import InvalidInput
from pki.iso15118 import ev
from pki.iso15118.messages import ResponseCode
from tests.foreign_roots import foreign_root, pem_of, rcp_entry, sha256_of
from tests.pki.iso15118.vehicles import foreign_certificate, new_emaid, new_pcid

ISO2 = "urn:iso:15118:2:2013:MsgDef"
POOL_A, POOL_B = "https://rcp-a.example.com", "https://rcp-b.example.com"


def _listing(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"RootCertificateCollection": {"rootCertificates": list(entries)}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a JSON object"),
        ({"RootCertificateCollection": {}}, "no rootCertificates array"),
        (_listing("text"), "entry #1 is not a root certificate object"),
        (_listing({"rootType": "V2G"}), "entry #1 has no caCertificate"),
        (_listing({"rootType": "V2G", "caCertificate": "!!"}), "not a Base64 DER X.509 certificate"),
        (_listing({"rootType": "V2G", "caCertificate": "A" * 30_000}), "over 16384 bytes"),
        (_listing(*([{"rootType": "PE", "caCertificate": ""}] * 10_001)), "at most 10000 are read"),
    ],
)
def test_an_unreadable_listing_is_invalid_and_changes_nothing(pki: PKI, document: Any, message: str) -> None:
    before = (pki.audit.count(), pki.trust.list(include_retired=True))
    with pytest.raises(InvalidInput, match=message):
        pki.trust.sync(document, pool="https://rcp-unreadable.example.com")
    assert (pki.audit.count(), pki.trust.list(include_retired=True)) == before


def test_a_sync_retires_only_the_roots_of_its_own_pool(fresh_pki: PKI) -> None:
    a, b, shared = (foreign_root(name).certificate for name in ("Only in A", "Only in B", "In both"))
    fresh_pki.trust.sync(_listing(rcp_entry(a, "V2G", "a"), rcp_entry(shared, "V2G", "s")), pool=POOL_A)
    report = fresh_pki.trust.sync(_listing(rcp_entry(b, "MO", "b"), rcp_entry(shared, "V2G", "s2")), pool=POOL_B)
    assert [c.sha256 for c in report.added] == [sha256_of(b)]
    assert [c.sha256 for c in report.unchanged] == [sha256_of(shared)]  # pool A's row, left as it is
    assert report.retired == []  # pool A's root is not pool B's to retire

    emptied = fresh_pki.trust.sync(_listing(), pool=POOL_B)
    assert [c.sha256 for c in emptied.retired] == [sha256_of(b)]
    assert {view.sha256 for view in fresh_pki.trust.list()} == {sha256_of(a), sha256_of(shared)}


def test_a_root_listed_twice_counts_once_and_a_taken_label_is_dropped(fresh_pki: PKI) -> None:
    root = foreign_root("Listed twice").certificate
    fresh_pki.trust.add(pem_of(foreign_root().certificate), use="V2GRootCertificate", label="rcp:dup")
    report = fresh_pki.trust.sync(_listing(rcp_entry(root, "V2G", "dup"), rcp_entry(root, "V2G", "dup")), pool=POOL_A)
    assert len(report.added) == 1 and report.added[0].label is None


def test_a_listing_is_checked_at_the_instant_of_the_sync(fresh_pki: PKI) -> None:
    """The clock is injected: a root the pool still lists is retired the day it expires."""
    start = fresh_pki.clock.now()
    root = foreign_root("Short lived", not_before=start - dt.timedelta(days=1), not_after=start + dt.timedelta(days=2))
    listing = _listing(rcp_entry(root.certificate, "OEM", "short"))
    assert len(fresh_pki.trust.sync(listing, pool=POOL_A).added) == 1
    fresh_pki.clock.set(start + dt.timedelta(days=3))  # type: ignore[attr-defined]
    report = fresh_pki.trust.sync(listing, pool=POOL_A)
    assert [c.reason for c in report.retired] == [f"refused: {report.refused[0].reason}"]
    assert "[rule trust.expired]" in report.refused[0].reason


# -- the OEM seed -------------------------------------------------------------------------------


def _oem_pki(pki: PKI, tmp_path: Path, name: str) -> tuple[Path, Any, bytes]:
    """An external OEM (root and sub-CA in a PEM file) and an installation request of one of its cars."""
    root_key, sub_key, car_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = foreign_certificate(f"{name} Root", root_key, None, 1)
    sub = foreign_certificate(f"{name} Sub", sub_key, (root.subject, root_key), 0)
    pcid = new_pcid()
    car = foreign_certificate(pcid, car_key, (sub.subject, sub_key), None)
    bundle = tmp_path / f"{name}.pem"
    bundle.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (root, sub)))
    pki.contracts.add(emaid=new_emaid(), pcid=pcid)
    return bundle, root, ev.installation_request(car, car_key, pki.cas.roots("V2GRootCertificate"), b"\x01")


def _provision(pki: PKI, request: bytes) -> ResponseCode | None:
    exi = base64.b64encode(request).decode()
    return pki.contracts.provision(iso15118_schema_version=ISO2, action="Install", exi_request=exi).response_code


def test_the_oem_setting_seeds_the_trust_store_once_audited(fresh_pki: PKI, tmp_path: Path) -> None:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    bundle, root, request = _oem_pki(fresh_pki, tmp_path, "Seeded OEM")
    fresh_pki.settings.iso15118_oem_roots = f"oem-root, {bundle}"

    assert _provision(fresh_pki, request) is ResponseCode.OK
    seeded = fresh_pki.trust.list(use=RootUse.OEM)
    assert [(view.sha256, view.source, view.origin) for view in seeded] == [
        (sha256_of(root), "seed", "EVPKI_ISO15118_OEM_ROOTS")
    ]  # the root only: the sub-CA is an intermediate read from the file
    added = fresh_pki.audit.records(action="trust-add")
    assert [json.loads(record.details)["source"] for record in added] == ["seed"]
    head = fresh_pki.audit.count()
    assert _provision(fresh_pki, request) is ResponseCode.OK
    assert fresh_pki.audit.count() > head  # the contract certificate is audited, but no second trust-add
    assert len(fresh_pki.audit.records(action="trust-add")) == 1

    fresh_pki.settings.iso15118_oem_roots = "oem-root"  # the setting no longer names the file
    assert _provision(fresh_pki, request) is ResponseCode.FAILED_CERT_CHAIN_ERROR
    retired = fresh_pki.trust.get(sha256_of(root))
    assert retired.retired and retired.removed_reason == "no longer named by EVPKI_ISO15118_OEM_ROOTS"


def test_a_seeded_root_removed_by_hand_stays_removed(fresh_pki: PKI, tmp_path: Path) -> None:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    bundle, root, request = _oem_pki(fresh_pki, tmp_path, "Distrusted OEM")
    fresh_pki.settings.iso15118_oem_roots = f"oem-root, {bundle}"
    assert _provision(fresh_pki, request) is ResponseCode.OK

    fresh_pki.trust.remove(sha256_of(root))  # the operator distrusts it; the file still holds it
    assert _provision(fresh_pki, request) is ResponseCode.FAILED_CERT_CHAIN_ERROR
    bundle.touch()  # even a changed file does not bring it back
    assert _provision(fresh_pki, request) is ResponseCode.FAILED_CERT_CHAIN_ERROR
    assert [view.sha256 for view in fresh_pki.trust.list(use=RootUse.OEM)] == []
    fresh_pki.trust.add(pem_of(root), use=RootUse.OEM)  # trusting it by hand does
    assert _provision(fresh_pki, request) is ResponseCode.OK


def test_a_seed_root_that_fails_the_checks_is_not_an_anchor(fresh_pki: PKI, tmp_path: Path) -> None:
    """Before the seed, a PEM file's root was an anchor unchecked; now it passes the trust store's checks."""
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    weak_key = ec.generate_private_key(ec.SECP192R1())
    weak = foreign_certificate("Weak OEM Root", weak_key, None, 1)  # type: ignore[arg-type]
    bundle = tmp_path / "weak.pem"
    bundle.write_bytes(weak.public_bytes(serialization.Encoding.PEM))
    fresh_pki.settings.iso15118_oem_roots = f"oem-root, {bundle}"
    from pki.iso15118.trust_anchors import seed_oem_roots

    report = seed_oem_roots(fresh_pki._ctx)  # what provisioning calls
    assert report is not None and report.added == [] and "[rule key." in report.refused[0].reason
    assert seed_oem_roots(fresh_pki._ctx) is None  # applied already for this setting
