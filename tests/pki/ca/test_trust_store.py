"""The trust store (``pki.trust``): every refusal with its rule, retiring, idempotent import, and the
places that read it (``pki.cas.roots``, the OEM anchors of contract provisioning, the CPS chain choice).

The foreign roots are made with plain ``cryptography`` (:mod:`tests.foreign_roots`), and the first is
checked by ``openssl verify`` as self-signed before evpki sees it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pki import PKI
from pki.ca import RootUse
from pki.core import Conflict, InvalidInput, NotFound, PolicyViolation
from pki.iso15118 import ev
from pki.iso15118.messages import ResponseCode
from tests.conftest import FRESH_EPOCH, requires_openssl, run_openssl
from tests.foreign_roots import foreign_root, pem_of, rcp_entry, sha256_of
from tests.pki.iso15118.vehicles import foreign_certificate, make_car, new_emaid, new_pcid

V2G = RootUse.V2G.value
ISO2 = "urn:iso:15118:2:2013:MsgDef"


def _audit_head(pki: PKI) -> int:
    records = pki.audit.records(after=0, limit=100000)
    return records[-1].seq if records else 0


@requires_openssl
def test_a_self_signed_root_made_without_evpki_is_trusted(fresh_pki: PKI, tmp_path: Path) -> None:
    root = foreign_root("Hubject-like V2G Root CA").certificate
    path = tmp_path / "root.pem"
    path.write_text(pem_of(root))
    verified = run_openssl("verify", "-check_ss_sig", "-CAfile", str(path), str(path))
    assert verified.returncode == 0 and f"{path}: OK" in verified.stdout, verified.stderr
    before = _audit_head(fresh_pki)

    view = fresh_pki.trust.add(path.read_bytes(), use=V2G, label="hubject-g2", actor="test")

    assert view.use is RootUse.V2G and view.sha256 == sha256_of(root) and view.source == "manual"
    assert view.subject == root.subject.rfc4514_string() and view.removed_at is None
    assert fresh_pki.trust.get("hubject-g2") == view == fresh_pki.trust.get(view.sha256.upper())
    assert [v.sha256 for v in fresh_pki.trust.list(use=V2G)] == [view.sha256]
    assert fresh_pki.trust.list(use=RootUse.MO) == []
    (record,) = [r for r in fresh_pki.audit.records(after=before, limit=10)]
    assert record.action == "trust-add" and json.loads(record.details)["sha256"] == view.sha256


def test_der_is_accepted_too(fresh_pki: PKI) -> None:
    root = foreign_root().certificate
    view = fresh_pki.trust.add(root.public_bytes(serialization.Encoding.DER), use=RootUse.MO)
    assert view.use is RootUse.MO


def _refused(pki: PKI, certificate: bytes | str, use: str = V2G, label: str | None = None) -> Exception:
    before = (_audit_head(pki), pki.trust.list(include_retired=True))
    with pytest.raises((PolicyViolation, InvalidInput, Conflict)) as caught:
        pki.trust.add(certificate, use=use, label=label)
    assert (_audit_head(pki), pki.trust.list(include_retired=True)) == before  # a refusal changes nothing
    return caught.value


OTHER = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Someone Else")])


@pytest.mark.parametrize(
    ("variant", "rule"),
    [
        ({"ca": False}, "trust.ca"),
        ({"ca": None}, "trust.ca"),
        ({"issuer": OTHER}, "trust.self-signed"),
        ({"signer": ec.generate_private_key(ec.SECP256R1())}, "trust.self-signed"),
        ({"not_after": FRESH_EPOCH - dt.timedelta(days=1)}, "trust.expired"),
        ({"not_before": FRESH_EPOCH + dt.timedelta(days=1)}, "trust.not-yet-valid"),
        ({"key": rsa.generate_private_key(public_exponent=65537, key_size=1024)}, "key.rsa-min-bits"),
        ({"key": ec.generate_private_key(ec.SECP192R1())}, "key.ec-curve"),
    ],
    ids=["not-a-ca", "no-basic-constraints", "issuer-not-subject", "bad-signature", "expired", "not-yet-valid",
         "rsa-1024", "ec-p192"],
)  # fmt: skip
def test_a_root_that_breaks_a_rule_is_refused_with_the_rule(fresh_pki: PKI, variant: dict, rule: str) -> None:
    certificate = foreign_root(**variant).certificate
    error = _refused(fresh_pki, pem_of(certificate))
    assert isinstance(error, PolicyViolation) and error.rule == rule, error


def test_a_duplicate_is_a_conflict_but_another_use_is_not(fresh_pki: PKI) -> None:
    root = pem_of(foreign_root().certificate)
    fresh_pki.trust.add(root, use=V2G, label="first")
    assert isinstance(_refused(fresh_pki, root), Conflict)
    assert fresh_pki.trust.add(root, use=RootUse.OEM).use is RootUse.OEM
    with pytest.raises(Conflict, match="several uses"):
        fresh_pki.trust.get(sha256_of(x509.load_pem_x509_certificate(root.encode())))
    assert fresh_pki.trust.get(sha256_of(x509.load_pem_x509_certificate(root.encode())), use="OEMRootCertificate")


def test_a_label_in_use_is_a_conflict(fresh_pki: PKI) -> None:
    fresh_pki.trust.add(pem_of(foreign_root().certificate), use=V2G, label="taken")
    assert isinstance(_refused(fresh_pki, pem_of(foreign_root().certificate), label="taken"), Conflict)


@pytest.mark.parametrize(
    ("data", "use", "label", "message"),
    [
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", V2G, None, "malformed"),
        (b"\x30\x03\x02\x01\x01", V2G, None, "malformed"),
        ("not a certificate at all", V2G, None, "malformed"),
        (None, "V2GRoot", None, "unknown root certificate use"),
        (None, V2G, "has spaces", "label"),
        (None, V2G, "a" * 64, "SHA-256"),
    ],
    ids=["bad-pem", "bad-der", "text", "unknown-use", "bad-label", "label-like-a-fingerprint"],
)
def test_malformed_input_is_invalid(
    fresh_pki: PKI, data: str | bytes | None, use: str, label: str | None, message: str
) -> None:
    error = _refused(fresh_pki, data if data is not None else pem_of(foreign_root().certificate), use, label)
    assert isinstance(error, InvalidInput) and message in str(error)


def test_two_certificates_are_refused_by_add(fresh_pki: PKI) -> None:
    bundle = pem_of(foreign_root().certificate) + pem_of(foreign_root().certificate)
    assert "trust import" in str(_refused(fresh_pki, bundle))


def test_remove_retires_and_keeps_the_row(fresh_pki: PKI) -> None:
    root = foreign_root().certificate
    fresh_pki.trust.add(pem_of(root), use=V2G, label="old")
    fresh_pki.clock.advance(dt.timedelta(minutes=1))  # type: ignore[attr-defined]
    retired = fresh_pki.trust.remove("old", actor="test")
    assert retired.removed_at == fresh_pki.clock.now() and retired.removed_by == "test"
    assert fresh_pki.trust.list() == []
    assert fresh_pki.trust.list(include_retired=True) == [retired]
    assert fresh_pki.trust.get("old") == retired
    assert root not in fresh_pki.cas.roots(V2G)
    with pytest.raises(Conflict, match="already removed"):
        fresh_pki.trust.remove("old")
    with pytest.raises(NotFound):
        fresh_pki.trust.remove("never-added")
    again = fresh_pki.trust.add(pem_of(root), use=V2G, label="old")  # trusted anew: a new entry
    assert again.id != retired.id and fresh_pki.trust.get("old") == again


def test_roots_offers_ours_first_then_foreign_newest_first(fresh_pki: PKI) -> None:
    ours = fresh_pki.cas.roots(V2G)
    first, second = foreign_root("First").certificate, foreign_root("Second").certificate
    fresh_pki.trust.add(pem_of(first), use=V2G)
    fresh_pki.clock.advance(dt.timedelta(seconds=1))  # type: ignore[attr-defined]
    fresh_pki.trust.add(pem_of(second), use=V2G)
    assert fresh_pki.cas.roots(V2G) == [*ours, second, first]
    assert first not in fresh_pki.cas.roots(RootUse.MO)
    fresh_pki.clock.advance(dt.timedelta(days=3650))  # type: ignore[attr-defined]
    assert first not in fresh_pki.cas.roots(V2G) and second not in fresh_pki.cas.roots(V2G)  # expired


# -- import ----------------------------------------------------------------------------------------


def test_a_pem_bundle_is_imported_once(fresh_pki: PKI, tmp_path: Path) -> None:
    good = [foreign_root(f"Bundle {n}").certificate for n in range(2)]
    expired = foreign_root("Expired", not_after=FRESH_EPOCH - dt.timedelta(days=1)).certificate
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("".join(pem_of(c) for c in (*good, expired)))

    report = fresh_pki.trust.import_file(bundle, use=RootUse.MO, actor="test")
    assert report.format == "pem"
    assert [v.sha256 for v in report.added] == [sha256_of(c) for c in good]
    assert all(v.source == "import" for v in report.added) and report.unchanged == []
    (refusal,) = report.refused
    assert refusal.entry.startswith("#3 ") and "[rule trust.expired]" in refusal.reason

    head = _audit_head(fresh_pki)
    again = fresh_pki.trust.import_file(bundle, use=RootUse.MO)
    assert again.added == [] and [v.sha256 for v in again.unchanged] == [sha256_of(c) for c in good]
    assert len(again.refused) == 1 and _audit_head(fresh_pki) == head  # the second import changed nothing


def test_a_pem_bundle_needs_a_use_and_certificates(fresh_pki: PKI, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(pem_of(foreign_root().certificate))
    with pytest.raises(InvalidInput, match="--use"):
        fresh_pki.trust.import_file(bundle)
    bundle.write_text("nothing here")
    with pytest.raises(InvalidInput, match="neither"):
        fresh_pki.trust.import_file(bundle, use=V2G)
    with pytest.raises(InvalidInput, match="cannot read"):
        fresh_pki.trust.import_file(tmp_path / "missing.pem", use=V2G)
    assert fresh_pki.trust.list() == []


def _ctl(*entries: dict[str, object]) -> dict[str, object]:
    """An OPCP RCP ``GET /v1/root/ctl`` answer."""
    return {
        "signerCertificate": "",
        "timeStamp": "2026-01-15T12:00:00Z",
        "CTL": {"rootCertificates": list(entries)},
    }


def test_a_certificate_trust_list_is_imported_once(fresh_pki: PKI, tmp_path: Path) -> None:
    v2g, mo, oem = (foreign_root(name).certificate for name in ("CTL V2G", "CTL MO", "CTL OEM"))
    pe = foreign_root("CTL PE").certificate
    wrong = rcp_entry(foreign_root("Wrong Fingerprint").certificate, "V2G", "00000000-0000-0000-0000-000000000005")
    wrong["fingerprint"] = "00" * 32
    entries = [
        rcp_entry(v2g, "V2G", "00000000-0000-0000-0000-000000000001"),
        rcp_entry(mo, "MO", "00000000-0000-0000-0000-000000000002"),
        rcp_entry(oem, "OEM", "00000000-0000-0000-0000-000000000003"),
        rcp_entry(pe, "PE", "00000000-0000-0000-0000-000000000004"),
        wrong,
        {"rootType": "V2G", "caCertificate": "!!not base64!!"},
    ]
    path = tmp_path / "ctl.json"
    path.write_text(json.dumps(_ctl(*entries)))

    report = fresh_pki.trust.import_file(path)
    assert report.format == "ctl"
    assert [(v.use, v.sha256) for v in report.added] == [
        (RootUse.V2G, sha256_of(v2g)),
        (RootUse.MO, sha256_of(mo)),
        (RootUse.OEM, sha256_of(oem)),
    ]
    assert fresh_pki.trust.get("rcp:00000000-0000-0000-0000-000000000001").sha256 == sha256_of(v2g)
    reasons = [r.reason for r in report.refused]
    assert "has no OCPP root use" in reasons[0] and "fingerprint" in reasons[1] and "Base64" in reasons[2]

    again = fresh_pki.trust.import_file(path)
    assert again.added == [] and len(again.unchanged) == 3 and len(again.refused) == 3


def test_a_ctl_import_can_be_limited_to_one_use(fresh_pki: PKI, tmp_path: Path) -> None:
    v2g, mo = foreign_root("Only V2G").certificate, foreign_root("Not MO").certificate
    path = tmp_path / "ctl.json"
    path.write_text(json.dumps(_ctl(rcp_entry(v2g, "V2G", "a"), rcp_entry(mo, "MO", "b"))))
    report = fresh_pki.trust.import_file(path, use=V2G)
    assert [v.sha256 for v in report.added] == [sha256_of(v2g)]
    assert "not the requested V2GRootCertificate" in report.refused[0].reason


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not valid JSON"), ('{"CTL": []}', "not an object"), ('{"CTL": {}}', "rootCertificates")],
)
def test_an_unreadable_ctl_is_invalid_and_changes_nothing(
    fresh_pki: PKI, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "ctl.json"
    path.write_text(text)
    head = _audit_head(fresh_pki)
    with pytest.raises(InvalidInput, match=message):
        fresh_pki.trust.import_file(path)
    assert _audit_head(fresh_pki) == head and fresh_pki.trust.list() == []


def test_the_rcp_root_listing_shape_is_read_too(fresh_pki: PKI) -> None:
    root = foreign_root().certificate
    listing = {"RootCertificateCollection": {"rootCertificates": [rcp_entry(root, "MO", "x")]}}
    report = fresh_pki.trust.import_data(json.dumps(listing).encode())
    assert [v.use for v in report.added] == [RootUse.MO]


# -- the places that read it -----------------------------------------------------------------------


def _provision(pki: PKI, exi: bytes):  # type: ignore[no-untyped-def]
    return pki.contracts.provision(
        iso15118_schema_version=ISO2, action="Install", exi_request=base64.b64encode(exi).decode()
    )


def test_a_trusted_oem_root_is_an_anchor_of_contract_provisioning(fresh_pki: PKI) -> None:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    root_key, car_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = foreign_certificate("Store OEM Root", root_key, None, 0)
    pcid = new_pcid()
    car = foreign_certificate(pcid, car_key, (root.subject, root_key), None)
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=pcid)
    request = ev.installation_request(car, car_key, fresh_pki.cas.roots(V2G), b"\x01")

    assert _provision(fresh_pki, request).response_code is ResponseCode.FAILED_CERT_CHAIN_ERROR
    fresh_pki.trust.add(pem_of(root), use=RootUse.OEM, label="store-oem")
    assert _provision(fresh_pki, request).response_code is ResponseCode.OK
    fresh_pki.trust.remove("store-oem")
    assert _provision(fresh_pki, request).response_code is ResponseCode.FAILED_CERT_CHAIN_ERROR


def test_a_car_listing_a_trusted_foreign_v2g_root_still_gets_our_cps_chain(fresh_pki: PKI) -> None:
    fresh_pki.clock.set(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    foreign = foreign_root("Listed by the car", not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    fresh_pki.trust.add(pem_of(foreign.certificate), use=V2G)
    car = make_car(fresh_pki)
    fresh_pki.contracts.add(emaid=new_emaid(), pcid=car.pcid)
    listed = fresh_pki.cas.roots(V2G)
    assert foreign.certificate in listed  # what a car would be told to trust
    both = ev.installation_request(car.certificate, car.key, [foreign.certificate, *listed], b"\x01")
    assert _provision(fresh_pki, both).response_code is ResponseCode.OK
    # Only the foreign root: we hold no CPS chain under it (yet), which is an ISO answer, not an error.
    only_foreign = ev.installation_request(car.certificate, car.key, [foreign.certificate], b"\x02")
    result = _provision(fresh_pki, only_foreign)
    assert result.status == "Accepted" and result.response_code is not ResponseCode.OK
