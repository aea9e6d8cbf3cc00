"""CRL publishing: full and delta CRLs (RFC 5280 §5.2.4, §5.2.6), one number sequence, staleness.

Each test gets its own ``fresh_pki`` with a fixed clock, so CRL numbers and the audit log start
from the same state every time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import uuid

import pytest
from cryptography import x509
from sqlalchemy import text

from pki import PKI, NotFound, RequestIdentity
from pki.core.clock import FixedClock
from pki.core.errors import Unavailable
from pki.runtime.views import CertificateView
from tests.conftest import make_csr

CA = "cso-sub"
PUBLIC_URL = "http://127.0.0.1:8080"


def _clock(pki: PKI) -> FixedClock:
    clock = pki.clock
    assert isinstance(clock, FixedClock)
    return clock


def _issue(pki: PKI) -> CertificateView:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    return pki.certificates.issue(
        profile="station", csr=csr, identity=RequestIdentity(station_id=station_id)
    ).certificate


def _entries(der: bytes) -> dict[str, x509.ReasonFlags | None]:
    """Serial (hex, as stored) -> reason code of every entry (None: no reason code)."""
    entries = {}
    for entry in x509.load_der_x509_crl(der):
        try:
            reason: x509.ReasonFlags | None = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        entries[format(entry.serial_number, "X")] = reason
    return entries


def _crl_count(pki: PKI, ca_id: str = CA) -> int:
    with pki._ctx.database.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM crl WHERE ca_id = :ca"), {"ca": ca_id}).scalar_one()


def _extension(der: bytes, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return x509.load_der_x509_crl(der).extensions.get_extension_for_class(kind)


# -- publishing after a status change --------------------------------------------------------------


def test_revoke_regenerates_the_full_crl_with_the_entry_and_a_higher_number(fresh_pki: PKI) -> None:
    before = fresh_pki.crls.generate(CA)
    issued = _issue(fresh_pki)
    _clock(fresh_pki).advance(dt.timedelta(minutes=1))
    fresh_pki.revocation.revoke(issued.serial, "keyCompromise", ca_id=CA)
    latest = fresh_pki.crls.latest(CA)
    assert latest.number > before.number
    assert _entries(latest.der) == {issued.serial: x509.ReasonFlags.key_compromise}


def test_a_revocation_in_the_same_second_as_the_crl_is_still_published(fresh_pki: PKI) -> None:
    # Times have whole seconds: the CRL made a moment before has the revocation's timestamp.
    issued = _issue(fresh_pki)
    before = fresh_pki.crls.generate(CA)
    fresh_pki.revocation.revoke(issued.serial, "keyCompromise", ca_id=CA)
    current = fresh_pki.crls.current(CA)
    assert current.number > before.number
    assert issued.serial in _entries(current.der)
    assert fresh_pki.crls.current(CA).number == current.number  # and it is not made again


def test_revoke_publishes_a_delta_crl_too(fresh_pki: PKI) -> None:
    issued = _issue(fresh_pki)
    fresh_pki.revocation.revoke(issued.serial, "certificateHold", ca_id=CA)
    full, delta = fresh_pki.crls.latest(CA), fresh_pki.crls.current(CA, delta=True)
    assert delta.base_number == full.number
    assert _entries(delta.der) == {issued.serial: x509.ReasonFlags.certificate_hold}


def test_release_is_published_as_remove_from_crl_in_the_delta(fresh_pki: PKI) -> None:
    issued = _issue(fresh_pki)
    fresh_pki.revocation.revoke(issued.serial, "certificateHold", ca_id=CA)
    _clock(fresh_pki).advance(dt.timedelta(hours=1))
    fresh_pki.revocation.release_hold(issued.serial, ca_id=CA)
    assert issued.serial not in _entries(fresh_pki.crls.latest(CA).der)
    delta = fresh_pki.crls.current(CA, delta=True)
    assert _entries(delta.der) == {issued.serial: x509.ReasonFlags.remove_from_crl}


def test_revoke_without_publishing_leaves_the_crls_alone(fresh_pki: PKI) -> None:
    issued = _issue(fresh_pki)
    fresh_pki.revocation.revoke(issued.serial, "keyCompromise", ca_id=CA, publish_crls=False)
    assert _crl_count(fresh_pki) == 0
    assert issued.serial in _entries(fresh_pki.crls.current(CA).der)  # made on first request


def test_a_publishing_failure_does_not_fail_the_revocation(
    fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unavailable(*_args: object) -> None:
        raise Unavailable("no key passphrase")

    monkeypatch.setattr("pki.revocation.crl_publishing.publish_after_change", unavailable)
    issued = _issue(fresh_pki)
    with caplog.at_level(logging.WARNING, logger="evpki.crl"):
        view = fresh_pki.revocation.revoke(issued.serial, "keyCompromise", ca_id=CA)
    assert view.status == "revoked"
    assert fresh_pki.certificates.get(issued.serial, CA).status == "revoked"
    assert any("no key passphrase" in record.getMessage() for record in caplog.records)
    monkeypatch.undo()
    assert issued.serial in _entries(fresh_pki.crls.current(CA).der)


# -- delta CRLs --------------------------------------------------------------------------------


def test_delta_lists_exactly_the_changes_since_its_base(fresh_pki: PKI) -> None:
    clock = _clock(fresh_pki)
    old, held_before, revoked_after, held_after = (_issue(fresh_pki) for _ in range(4))
    fresh_pki.revocation.revoke(old.serial, "keyCompromise", ca_id=CA, publish_crls=False)
    fresh_pki.revocation.revoke(held_before.serial, "certificateHold", ca_id=CA, publish_crls=False)
    clock.advance(dt.timedelta(hours=1))
    base = fresh_pki.crls.generate(CA)
    clock.advance(dt.timedelta(hours=1))
    fresh_pki.revocation.revoke(revoked_after.serial, "affiliationChanged", ca_id=CA, publish_crls=False)
    fresh_pki.revocation.revoke(held_after.serial, "certificateHold", ca_id=CA, publish_crls=False)
    fresh_pki.revocation.release_hold(held_before.serial, ca_id=CA, publish_crls=False)

    delta = fresh_pki.crls.generate(CA, delta=True)

    assert (delta.kind, delta.base_number) == ("delta", base.number)
    assert _entries(delta.der) == {
        revoked_after.serial: x509.ReasonFlags.affiliation_changed,
        held_after.serial: x509.ReasonFlags.certificate_hold,
        held_before.serial: x509.ReasonFlags.remove_from_crl,
    }
    released = x509.load_der_x509_crl(delta.der).get_revoked_certificate_by_serial_number(int(held_before.serial, 16))
    assert released is not None
    assert released.revocation_date_utc == clock.now()  # the time of the release


def test_delta_carries_a_critical_delta_crl_indicator_naming_its_base(fresh_pki: PKI) -> None:
    base = fresh_pki.crls.generate(CA)
    delta = fresh_pki.crls.generate(CA, delta=True)
    indicator = _extension(delta.der, x509.DeltaCRLIndicator)
    assert indicator.critical
    assert indicator.value.crl_number == base.number  # type: ignore[attr-defined]
    with pytest.raises(x509.ExtensionNotFound):  # RFC 5280 §5.2.6: never in a delta CRL
        _extension(delta.der, x509.FreshestCRL)


def test_full_and_delta_crls_share_one_number_sequence(fresh_pki: PKI) -> None:
    full = fresh_pki.crls.generate(CA)
    delta = fresh_pki.crls.generate(CA, delta=True)
    next_full = fresh_pki.crls.generate(CA)
    assert [full.number, delta.number, next_full.number] == [full.number, full.number + 1, full.number + 2]
    assert _extension(delta.der, x509.CRLNumber).value.crl_number == delta.number  # type: ignore[attr-defined]
    assert fresh_pki.cas.get(CA).crl_number == next_full.number


def test_a_delta_without_a_full_crl_makes_the_full_one_first(fresh_pki: PKI) -> None:
    delta = fresh_pki.crls.generate("oem-sub1", delta=True)
    full = fresh_pki.crls.latest("oem-sub1")
    assert delta.base_number == full.number
    assert delta.number == full.number + 1


def test_a_delta_on_an_older_base_is_made_again(fresh_pki: PKI) -> None:
    first = fresh_pki.crls.current(CA, delta=True)
    full = fresh_pki.crls.generate(CA)
    again = fresh_pki.crls.current(CA, delta=True)
    assert first.base_number != full.number
    assert (again.base_number, again.number) == (full.number, full.number + 1)


def test_full_crl_points_at_the_delta_crl(fresh_pki: PKI) -> None:
    freshest = _extension(fresh_pki.crls.generate(CA).der, x509.FreshestCRL)
    assert not freshest.critical  # RFC 5280 §5.2.6
    names = [name.value for point in freshest.value for name in point.full_name or []]  # type: ignore[attr-defined]
    assert names == [f"{PUBLIC_URL}/crl/{CA}-delta.crl"]


def test_delta_crl_is_audited_with_its_base(fresh_pki: PKI) -> None:
    delta = fresh_pki.crls.generate(CA, delta=True)
    with fresh_pki._ctx.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT action, details FROM audit_record WHERE ca_id = :ca ORDER BY seq"), {"ca": CA}
        ).all()
    details = [(action, json.loads(raw)) for action, raw in rows if action in ("crl", "delta-crl")]
    assert [(action, d["number"], d.get("base_number")) for action, d in details] == [
        ("crl", delta.base_number, None),
        ("delta-crl", delta.number, delta.base_number),
    ]
    assert fresh_pki.audit.verify().ok


# -- staleness -------------------------------------------------------------------------------------


def test_full_crl_is_kept_until_the_refresh_margin(fresh_pki: PKI) -> None:
    clock = _clock(fresh_pki)
    first = fresh_pki.crls.current(CA)
    refresh_at = first.next_update - fresh_pki.settings.duration("crl_refresh_before")
    clock.set(refresh_at - dt.timedelta(seconds=1))
    assert fresh_pki.crls.current(CA).number == first.number
    clock.set(refresh_at)
    renewed = fresh_pki.crls.current(CA)
    assert renewed.number > first.number
    assert renewed.this_update == refresh_at


def test_delta_crl_is_kept_until_a_quarter_of_its_validity_is_left(fresh_pki: PKI) -> None:
    clock = _clock(fresh_pki)
    first = fresh_pki.crls.current(CA, delta=True)
    refresh_at = first.next_update - fresh_pki.settings.duration("delta_crl_validity") / 4
    clock.set(refresh_at - dt.timedelta(seconds=1))
    assert fresh_pki.crls.current(CA, delta=True).number == first.number
    clock.set(refresh_at)
    assert fresh_pki.crls.current(CA, delta=True).number > first.number


def test_nothing_is_regenerated_when_nothing_changed(fresh_pki: PKI) -> None:
    first = fresh_pki.crls.current(CA)
    first_delta = fresh_pki.crls.current(CA, delta=True)
    count, audit = _crl_count(fresh_pki), fresh_pki.audit.count()
    _clock(fresh_pki).advance(dt.timedelta(hours=1))
    _issue(fresh_pki)  # issuance changes no revocation status
    audit += 1
    assert fresh_pki.crls.current(CA) == first
    assert fresh_pki.crls.current(CA, delta=True) == first_delta
    assert (_crl_count(fresh_pki), fresh_pki.audit.count()) == (count, audit)


def test_a_status_change_after_the_crl_makes_it_stale(fresh_pki: PKI) -> None:
    first = fresh_pki.crls.current(CA)
    issued = _issue(fresh_pki)
    _clock(fresh_pki).advance(dt.timedelta(seconds=1))
    fresh_pki.revocation.revoke(issued.serial, "superseded", ca_id=CA, publish_crls=False)
    current = fresh_pki.crls.current(CA)
    assert current.number > first.number
    assert _entries(current.der) == {issued.serial: x509.ReasonFlags.superseded}


def test_a_revocation_stamped_before_the_crl_but_committed_after_it_makes_it_stale(fresh_pki: PKI) -> None:
    # A revocation's transaction takes its time before the CRL is built and commits after it: its
    # status_changed_at is older than the CRL's thisUpdate, yet the CRL cannot list it.
    issued = _issue(fresh_pki)
    clock = _clock(fresh_pki)
    clock.advance(dt.timedelta(seconds=10))
    built = fresh_pki.crls.current(CA)
    clock.advance(dt.timedelta(seconds=-5))
    fresh_pki.revocation.revoke(issued.serial, "keyCompromise", ca_id=CA, publish_crls=False)
    clock.advance(dt.timedelta(seconds=5))
    current = fresh_pki.crls.current(CA)
    assert current.number > built.number
    assert _entries(current.der) == {issued.serial: x509.ReasonFlags.key_compromise}
    assert fresh_pki.crls.current(CA, delta=True).base_number == current.number  # the base lists it
    with fresh_pki._ctx.database.engine.connect() as connection:
        seqs = connection.execute(
            text("SELECT c.status_seq, f.seq FROM crl c JOIN status_feed f ON f.ca_id = c.ca_id WHERE c.number = :n"),
            {"n": current.number},
        ).one()
    assert seqs[0] == seqs[1]  # the feed's number it was built from


def test_a_change_of_another_ca_leaves_the_crl_current(fresh_pki: PKI) -> None:
    first = fresh_pki.crls.current("cso-root")
    issued = _issue(fresh_pki)
    _clock(fresh_pki).advance(dt.timedelta(seconds=1))
    fresh_pki.revocation.revoke(issued.serial, "superseded", ca_id=CA)
    assert fresh_pki.crls.current("cso-root").number == first.number


def test_concurrent_callers_regenerate_once(fresh_pki: PKI) -> None:
    fresh_pki.crls.current(CA)
    _clock(fresh_pki).advance(dt.timedelta(days=6))
    count = _crl_count(fresh_pki)
    barrier = threading.Barrier(4)
    numbers: list[int] = []

    def fetch() -> None:
        barrier.wait()
        numbers.append(fresh_pki.crls.current(CA).number)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(numbers)) == 1
    assert _crl_count(fresh_pki) == count + 1


# -- views and errors --------------------------------------------------------------------------


def test_crl_view_names_its_kind_and_has_an_etag(fresh_pki: PKI) -> None:
    delta = fresh_pki.crls.generate(CA, delta=True)
    assert delta.etag == f'"{hashlib.sha256(delta.der).hexdigest()}"'
    assert delta.to_json()["kind"] == "delta"
    assert delta.to_json()["base_number"] == delta.base_number
    assert fresh_pki.crls.latest(CA).to_json()["kind"] == "full"


@pytest.mark.parametrize("delta", [False, True])
def test_an_unknown_ca_is_not_found(fresh_pki: PKI, delta: bool) -> None:
    with pytest.raises(NotFound):
        fresh_pki.crls.current("no-such-ca", delta=delta)
    with pytest.raises(NotFound):
        fresh_pki.crls.generate("no-such-ca", delta=delta)
    with pytest.raises(NotFound):
        fresh_pki.crls.latest("no-such-ca")
