"""The contract registry: PCID ↔ eMAID, one contract per vehicle at a time, revocation with its certificates."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from cryptography import x509

from pki import PKI, RequestIdentity
from pki.core.clock import FixedClock
from pki.core.errors import Conflict, InvalidInput, NotFound
from pki.iso15118.contract_input import normalise_emaid
from pki.iso15118.contract_registry import find_active_for_pcid, find_for_emaid, record_contract_certificate
from pki.iso15118.contract_views import CertificateRef
from tests.conftest import FRESH_EPOCH, make_csr

EMAID = "DEABCC123ABC56"
PCID = "WMIV2G0000000001A"
OTHER_PCID = "WMIV2G00000000022B"
DAY = dt.timedelta(days=1)


def _clock(pki: PKI) -> FixedClock:
    clock = pki.clock
    assert isinstance(clock, FixedClock)
    return clock


def _issue_contract_certificate(pki: PKI, emaid: str = EMAID) -> tuple[str, str]:
    csr, _ = make_csr(emaid, dc="MO")
    issued = pki.certificates.issue(profile="contract", csr=csr, identity=RequestIdentity(emaid=emaid))
    return issued.certificate.issuer_id, issued.certificate.serial


def _record(pki: PKI, emaid: str, issuer_id: str, serial: str) -> None:
    with pki._ctx.database.write() as session:
        record_contract_certificate(session, emaid, issuer_id, serial)


# -- identifiers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("DE-ABC-C123ABC56", "DEABCC123ABC56"),
        ("de-abc-c123abc56-7", "DEABCC123ABC567"),
        (" DEABCC123ABC56 ", "DEABCC123ABC56"),
    ],
)
def test_emaid_is_normalised(text: str, normalised: str) -> None:
    assert normalise_emaid(text) == normalised


@pytest.mark.parametrize(
    "text", ["", "DEABC123", "DEABCC123ABC5678", "1EABCC123ABC56", "DE_ABC_C123ABC56", "DEÄBCC123ABC56"]
)
def test_malformed_emaid_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="not an eMAID"):
        normalise_emaid(text)


# -- add ---------------------------------------------------------------------------------------


def test_add_normalises_defaults_and_audits(fresh_pki: PKI) -> None:
    before = fresh_pki.audit.count()
    view = fresh_pki.contracts.add(emaid="de-abc-c123abc56", pcid=PCID, note="customer 4711", actor="test")
    assert (view.emaid, view.pcid, view.status, view.note) == (EMAID, PCID, "active", "customer 4711")
    assert view.valid_from == view.created_at == view.updated_at == FRESH_EPOCH
    assert view.valid_until is None and view.revoked_at is None and view.current_certificate is None
    assert fresh_pki.contracts.get("DE-ABC-C123ABC56") == view
    [record] = fresh_pki.audit.records(after=before)
    assert record.action == "contract-add" and EMAID in record.details and PCID in record.details
    assert "4711" not in record.details  # notes (customer references) stay out of the append-only log
    assert fresh_pki.audit.verify().ok


def test_validity_and_valid_until_set_the_end(fresh_pki: PKI) -> None:
    by_duration = fresh_pki.contracts.add(emaid="DEABCC000000001", pcid=PCID, validity=dt.timedelta(days=365))
    assert by_duration.valid_until == FRESH_EPOCH + dt.timedelta(days=365)
    end = dt.datetime(2030, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    start = by_duration.valid_until
    assert start is not None
    later = fresh_pki.contracts.add(emaid="DEABCC000000002", pcid=PCID, valid_from=start, valid_until=end)
    assert later.valid_until == dt.datetime(2030, 1, 1, tzinfo=dt.UTC) and later.status == "pending"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emaid": "DE-ABC-1"}, "not an eMAID"),
        ({"pcid": "WMI-V2G-0000000001"}, "not a PCID"),
        ({"pcid": "SHORT"}, "not a PCID"),
        ({"valid_until": dt.datetime(2027, 1, 1)}, "timezone-aware"),
        ({"valid_until": FRESH_EPOCH - DAY}, "after valid_from|in the past"),
        ({"valid_from": FRESH_EPOCH - 10 * DAY, "valid_until": FRESH_EPOCH - DAY}, "in the past"),
        ({"valid_until": FRESH_EPOCH + DAY, "validity": DAY}, "not both"),
        ({"validity": -DAY}, "positive"),
        ({"note": "x" * 201}, "at most 200"),
        ({"note": "line\nbreak"}, "control characters"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(fresh_pki: PKI, kwargs: dict[str, object], message: str) -> None:
    before = fresh_pki.audit.count()
    arguments: dict[str, object] = {"emaid": EMAID, "pcid": PCID, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        fresh_pki.contracts.add(**arguments)  # type: ignore[arg-type]
    assert fresh_pki.contracts.list() == []
    assert fresh_pki.audit.count() == before


def test_an_emaid_is_registered_once_for_ever(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    with pytest.raises(Conflict, match="already registered"):
        fresh_pki.contracts.add(emaid="DE-ABC-C123ABC56", pcid=OTHER_PCID)
    fresh_pki.contracts.revoke(EMAID)
    with pytest.raises(Conflict, match="already registered"):
        fresh_pki.contracts.add(emaid=EMAID, pcid=OTHER_PCID)


def test_a_vehicle_holds_one_active_contract(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    before = fresh_pki.audit.count()
    with pytest.raises(Conflict, match=f"PCID {PCID} already holds contract {EMAID}"):
        fresh_pki.contracts.add(emaid="DEABCC999999999", pcid=PCID)
    assert fresh_pki.audit.count() == before
    # Another vehicle is not affected.
    fresh_pki.contracts.add(emaid="DEABCC999999998", pcid=OTHER_PCID)


def test_a_revoked_contract_makes_room(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    fresh_pki.contracts.revoke(EMAID)
    assert fresh_pki.contracts.add(emaid="DEABCC999999999", pcid=PCID).status == "active"


def test_an_expired_contract_makes_room(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID, validity=30 * DAY)
    _clock(fresh_pki).advance(30 * DAY)
    assert fresh_pki.contracts.get(EMAID).status == "expired"
    assert fresh_pki.contracts.add(emaid="DEABCC999999999", pcid=PCID).status == "active"


def test_a_successor_may_be_scheduled_but_not_overlap(fresh_pki: PKI) -> None:
    current = fresh_pki.contracts.add(emaid=EMAID, pcid=PCID, validity=30 * DAY)
    assert current.valid_until is not None
    with pytest.raises(Conflict, match="one contract at a time"):
        fresh_pki.contracts.add(emaid="DEABCC999999999", pcid=PCID, valid_from=current.valid_until - DAY)
    successor = fresh_pki.contracts.add(emaid="DEABCC999999999", pcid=PCID, valid_from=current.valid_until)
    assert successor.status == "pending"
    # Before a scheduled contract, an open-ended one overlaps it; one that ends in time does not.
    scheduled_start = FRESH_EPOCH + 10 * DAY
    fresh_pki.contracts.add(emaid="DEABCC999999997", pcid=OTHER_PCID, valid_from=scheduled_start)
    with pytest.raises(Conflict, match="DEABCC999999997"):
        fresh_pki.contracts.add(emaid="DEABCC999999996", pcid=OTHER_PCID)
    fresh_pki.contracts.add(emaid="DEABCC999999996", pcid=OTHER_PCID, valid_until=scheduled_start)

    ctx, now = fresh_pki._ctx, fresh_pki.clock.now()
    assert find_active_for_pcid(ctx, PCID, now).emaid == EMAID  # type: ignore[union-attr]
    assert find_active_for_pcid(ctx, PCID, current.valid_until).emaid == successor.emaid  # type: ignore[union-attr]


def test_concurrent_adds_for_one_vehicle_leave_one_contract(fresh_pki: PKI) -> None:
    workers = 6
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []

    def add(index: int) -> None:
        barrier.wait()
        try:
            fresh_pki.contracts.add(emaid=f"DEABCC00000010{index}", pcid=PCID)
            outcomes.append("added")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["added"] + ["conflict"] * (workers - 1)
    assert len(fresh_pki.contracts.list(pcid=PCID, status="active")) == 1


# -- lookups -----------------------------------------------------------------------------------


def test_list_filters_and_pages(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid="DEABCC000000001", pcid=PCID, validity=10 * DAY)
    fresh_pki.contracts.add(emaid="DEABCC000000002", pcid=OTHER_PCID)
    fresh_pki.contracts.add(emaid="DEABCC000000003", pcid="WMIV2G0000000003C", valid_from=FRESH_EPOCH + 5 * DAY)
    fresh_pki.contracts.add(emaid="DEABCC000000004", pcid="WMIV2G0000000004D")
    fresh_pki.contracts.revoke("DEABCC000000004")
    _clock(fresh_pki).advance(10 * DAY)
    # After ten days: 1 expired, 2 active, 3 active (started on day 5), 4 revoked.
    statuses = {view.emaid[-1]: view.status for view in fresh_pki.contracts.list()}
    assert statuses == {"1": "expired", "2": "active", "3": "active", "4": "revoked"}
    assert [v.emaid for v in fresh_pki.contracts.list(status="active")] == ["DEABCC000000002", "DEABCC000000003"]
    assert [v.emaid for v in fresh_pki.contracts.list(status="expired")] == ["DEABCC000000001"]
    assert [v.emaid for v in fresh_pki.contracts.list(status="revoked")] == ["DEABCC000000004"]
    assert [v.emaid for v in fresh_pki.contracts.list(pcid=OTHER_PCID)] == ["DEABCC000000002"]
    assert [v.emaid for v in fresh_pki.contracts.list(limit=2, offset=1)] == ["DEABCC000000002", "DEABCC000000003"]
    _clock(fresh_pki).set(FRESH_EPOCH)
    assert [v.emaid for v in fresh_pki.contracts.list(status="pending")] == ["DEABCC000000003"]
    for kwargs in ({"status": "valid"}, {"pcid": "nope"}, {"limit": 0}, {"offset": -1}):
        with pytest.raises(InvalidInput):
            fresh_pki.contracts.list(**kwargs)  # type: ignore[arg-type]


def test_unknown_contract_is_not_found(fresh_pki: PKI) -> None:
    with pytest.raises(NotFound, match=EMAID):
        fresh_pki.contracts.get("DE-ABC-C123ABC56")
    with pytest.raises(NotFound):
        fresh_pki.contracts.revoke(EMAID)
    assert find_for_emaid(fresh_pki._ctx, EMAID, FRESH_EPOCH) is None
    assert find_active_for_pcid(fresh_pki._ctx, PCID, FRESH_EPOCH) is None


def test_finders_take_a_session_and_return_views(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    fresh_pki.contracts.revoke(EMAID, note="moved away")
    with fresh_pki._ctx.database.read() as session:
        found = find_for_emaid(session, "de-abc-c123abc56", FRESH_EPOCH)
        assert find_active_for_pcid(session, PCID, FRESH_EPOCH) is None
    assert found is not None and not found.is_active
    assert (found.status, found.revocation_note) == ("revoked", "moved away")
    with pytest.raises(AttributeError):
        found.status = "active"  # type: ignore[misc]  # frozen: edges never get the ORM row


# -- contract certificates and revocation ------------------------------------------------------


def test_record_contract_certificate_sets_the_current_one(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    first = _issue_contract_certificate(fresh_pki)
    _record(fresh_pki, EMAID, *first)
    second = _issue_contract_certificate(fresh_pki)
    with fresh_pki._ctx.database.transaction() as connection:  # a Core connection works too
        view = record_contract_certificate(connection, fresh_pki.contracts.get(EMAID), *second, actor="provisioning")
    assert view.current_certificate == CertificateRef(*second)
    assert fresh_pki.contracts.get(EMAID).current_certificate == CertificateRef(*second)
    record = fresh_pki.audit.records(action="contract-certificate")[-1]
    assert (record.actor, record.ca_id, record.serial) == ("provisioning", *second)
    assert f"{first[0]}/{first[1]}" in record.details


def test_record_refuses_a_certificate_that_is_not_this_contracts(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    other = _issue_contract_certificate(fresh_pki, "DEABCC999999999")
    with pytest.raises(InvalidInput, match="not DEABCC123ABC56"):
        _record(fresh_pki, EMAID, *other)
    with pytest.raises(NotFound):
        _record(fresh_pki, EMAID, other[0], "7FFF0001")
    with pytest.raises(InvalidInput, match="hex serial"):
        _record(fresh_pki, EMAID, other[0], "xyz")
    station_csr, _ = make_csr("CP-CONTRACT-TEST")
    station = fresh_pki.certificates.issue(
        profile="station", csr=station_csr, identity=RequestIdentity(station_id="CP-CONTRACT-TEST")
    )
    with pytest.raises(InvalidInput, match="station certificate"):
        _record(fresh_pki, EMAID, station.certificate.issuer_id, station.certificate.serial)
    assert fresh_pki.contracts.get(EMAID).current_certificate is None


def test_a_revoked_contract_takes_no_certificate_and_rolls_the_issuance_back(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    certificate = _issue_contract_certificate(fresh_pki)
    fresh_pki.contracts.revoke(EMAID)
    marker = fresh_pki.audit.count()
    with pytest.raises(Conflict, match="revoked"), fresh_pki._ctx.database.write() as session:
        from pki.operations import audit

        audit.append(session, at=FRESH_EPOCH, actor="test", action="issue-stand-in")
        record_contract_certificate(session, EMAID, *certificate)
    assert fresh_pki.audit.count() == marker


def test_revoke_revokes_the_usable_certificates(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    older = _issue_contract_certificate(fresh_pki)  # replaced by an update, still unexpired
    current = _issue_contract_certificate(fresh_pki)
    _record(fresh_pki, EMAID, *current)
    unrelated = _issue_contract_certificate(fresh_pki, "DEABCC999999999")
    _clock(fresh_pki).advance(DAY)

    result = fresh_pki.contracts.revoke("DE-ABC-C123ABC56", note="terminated", actor="test")
    assert result.contract.status == "revoked"
    assert result.contract.revoked_at == FRESH_EPOCH + DAY
    assert result.contract.revocation_note == "terminated"
    assert set(result.revoked_certificates) == {CertificateRef(*older), CertificateRef(*current)}
    for issuer_id, serial in (older, current):
        view = fresh_pki.certificates.get(serial, issuer_id)
        assert (view.status, view.revocation_reason) == ("revoked", "cessationOfOperation")
    assert fresh_pki.certificates.get(unrelated[1], unrelated[0]).status == "valid"

    # The CRL was republished after the commit.
    crl = x509.load_der_x509_crl(fresh_pki.crls.latest(current[0]).der)
    assert crl.get_revoked_certificate_by_serial_number(int(current[1], 16)) is not None
    records = fresh_pki.audit.records(after=0, limit=10_000)
    actions = [r.action for r in records if r.action in ("revoke", "contract-revoke")]
    assert actions == ["revoke", "revoke", "contract-revoke"]
    assert fresh_pki.audit.verify().ok

    before = fresh_pki.audit.count()
    with pytest.raises(Conflict, match="already revoked"):
        fresh_pki.contracts.revoke(EMAID)
    assert fresh_pki.audit.count() == before


def test_revoke_leaves_revoked_and_expired_certificates_alone(fresh_pki: PKI) -> None:
    fresh_pki.contracts.add(emaid=EMAID, pcid=PCID)
    revoked = _issue_contract_certificate(fresh_pki)
    fresh_pki.revocation.revoke(revoked[1], "keyCompromise", ca_id=revoked[0])
    result = fresh_pki.contracts.revoke(EMAID)
    assert result.revoked_certificates == ()
    assert fresh_pki.certificates.get(revoked[1], revoked[0]).revocation_reason == "keyCompromise"
