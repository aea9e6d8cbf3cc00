"""Group commit and bulk issuance: many issuances in one transaction, each with its own outcome.

The batches are made deterministic rather than hoped for: a :class:`GroupCommit` whose leader
waits (without a deadline that matters) for every caller counted by ``prepare`` gathers exactly
the callers of the test into one batch. Every test ends with the audit chain verified.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import Connection, func, select

from pki import PKI, RequestIdentity
from pki.ca import CertificateRequest, group_commit
from pki.ca.batch_store import Signed, store_batch
from pki.ca.group_commit import GroupCommit
from pki.ca.issuance import IssueRequest, _approve, _sign
from pki.core import Conflict, InvalidInput, PolicyViolation
from pki.operations import audit
from pki.store.models import AuditHead, AuditRecord, CertificateRow
from tests.conftest import ORG, _copy_database, drop_database, make_csr, make_settings


@pytest.fixture(scope="module")
def batch_pki(tmp_path_factory: pytest.TempPathFactory, _fresh_template: tuple[Path, str | None]) -> Iterator[PKI]:
    """A PKI of this module's own (a copy of the session template); tests use identities of their own."""
    home = tmp_path_factory.mktemp("batch")
    url, name = _copy_database(_fresh_template, home)
    instance = PKI.open(make_settings(home, url))
    yield instance
    instance.close()
    drop_database(name)


def _station() -> str:
    return f"CP-B{uuid.uuid4().hex[:10].upper()}"


def _request(station: str, **kwargs: object) -> IssueRequest:
    return IssueRequest(
        "station", make_csr(station, organization=ORG)[0], RequestIdentity(station_id=station), **kwargs
    )  # type: ignore[arg-type]


def _signed(pki: PKI, request: IssueRequest) -> Signed:
    ctx = pki._ctx
    return _sign(ctx, _approve(ctx, request), request, "test")


def _counts(pki: PKI) -> tuple[int, int]:
    with pki._ctx.database.read() as session:
        certificates = session.execute(select(func.count()).select_from(CertificateRow)).scalar_one()
        records = session.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
    return int(certificates), int(records)


def _audited(pki: PKI, serial: str) -> list[str]:
    with pki._ctx.database.read() as session:
        rows = session.execute(select(AuditRecord.action).where(AuditRecord.serial == serial)).scalars()  # type: ignore[arg-type]
        return list(rows)


def test_append_many_chains_like_single_appends(batch_pki: PKI) -> None:
    at = batch_pki.clock.now()
    records = [audit.PendingRecord(at=at, actor="test", action="test-batch", details={"n": i}) for i in range(3)]
    with batch_pki._ctx.database.transaction() as connection:
        entries = audit.append_many_on(connection, records)
        head = connection.execute(select(AuditHead.seq, AuditHead.hash)).one()  # type: ignore[call-overload]
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + 3))
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    assert tuple(head) == (entries[-1].seq, entries[-1].hash)
    assert batch_pki.audit.verify().ok


def test_a_batch_stores_each_certificate_and_keeps_each_refusal_its_own(batch_pki: PKI) -> None:
    good = [_station() for _ in range(3)]
    same_key, hooked = _station(), _station()
    csr, key = make_csr(same_key, organization=ORG)
    batch_pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=same_key))
    hook_calls: list[int] = []

    def refuse(_connection: Connection, row_id: int) -> None:
        hook_calls.append(row_id)
        raise Conflict("the caller's record refuses this one")

    same_key_csr = make_csr(same_key, organization=ORG, key=key)[0]
    renewal = IssueRequest("station", same_key_csr, RequestIdentity(station_id=same_key), renew=True)
    batch = [
        _signed(batch_pki, _request(good[0])),
        _signed(batch_pki, renewal),  # renews with the key it has: refused inside the transaction
        _signed(batch_pki, _request(good[1])),
        _signed(batch_pki, _request(hooked, in_transaction=refuse)),
        _signed(batch_pki, _request(good[2])),
    ]
    before = _counts(batch_pki)
    outcomes = store_batch(batch_pki._ctx, batch)
    assert outcomes[0] is None and outcomes[2] is None and outcomes[4] is None
    assert isinstance(outcomes[1], Conflict) and "new key pair" in outcomes[1].message
    assert isinstance(outcomes[3], Conflict) and hook_calls  # the hook ran, and its refusal rolled back its issuance
    assert _counts(batch_pki) == (before[0] + 3, before[1] + 3)
    for signed in (batch[0], batch[2], batch[4]):
        assert batch_pki.certificates.get(signed.serial, "cso-sub").status == "valid"
        assert _audited(batch_pki, signed.serial) == ["issue"]
    for signed in (batch[1], batch[3]):
        assert _audited(batch_pki, signed.serial) == []
    assert batch_pki.audit.verify().ok


def test_concurrent_callers_share_one_transaction_and_get_their_own_certificates(
    batch_pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = GroupCommit(max_gather_s=120.0)  # the leader waits for every caller counted below
    monkeypatch.setattr(group_commit, "for_database", lambda _database: committer)
    batches: list[int] = []
    real_store_batch = group_commit.store_batch

    def counting_store_batch(ctx: object, batch: list[Signed]) -> list[BaseException | None]:
        batches.append(len(batch))
        return real_store_batch(ctx, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(group_commit, "store_batch", counting_store_batch)
    stations = [_station() for _ in range(4)]
    bad_csr = make_csr("not-the-serial", organization=ORG)[0]
    results: dict[str, object] = {}
    for _ in range(len(stations) + 1):
        committer.prepare()  # counted before any thread runs: the first to store leads and waits for all

    def caller(station: str, csr: str | None) -> None:
        request = (
            _request(station) if csr is None else IssueRequest("station", csr, RequestIdentity(station_id=station))
        )
        try:
            signed = _sign(batch_pki._ctx, _approve(batch_pki._ctx, request), request, "test")
        except PolicyViolation as refusal:
            committer.abandon()
            results[station] = refusal
            return
        committer.store(signed, prepared=True)
        results[station] = signed

    threads = [threading.Thread(target=caller, args=(station, None)) for station in stations]
    threads.append(threading.Thread(target=caller, args=("CP-BREFUSED", bad_csr)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert batches == [len(stations)]  # one transaction for all four
    assert isinstance(results["CP-BREFUSED"], PolicyViolation)
    for station in stations:
        signed = results[station]
        assert isinstance(signed, Signed)
        stored = batch_pki.certificates.get(signed.serial, "cso-sub")
        assert stored.identity == station and stored.status == "valid"
    assert batch_pki.audit.verify().ok


def test_threads_issuing_through_the_facade_each_get_their_own_certificate(batch_pki: PKI) -> None:
    stations = [_station() for _ in range(6)]
    issued: dict[str, str] = {}

    def caller(station: str) -> None:
        csr = make_csr(station, organization=ORG)[0]
        result = batch_pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station))
        issued[station] = result.certificate.certificate_pem

    threads = [threading.Thread(target=caller, args=(station,)) for station in stations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(issued) == set(stations)
    for station, pem in issued.items():
        common_name = x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()
        assert common_name.startswith(f"CN={station}")
    assert batch_pki.audit.verify().ok


def test_issue_batch_answers_each_request_in_order(batch_pki: PKI) -> None:
    stations = [_station() for _ in range(3)]
    requests = [
        CertificateRequest(
            "station", make_csr(stations[0], organization=ORG)[0], RequestIdentity(station_id=stations[0])
        ),
        CertificateRequest("station", "not a CSR", RequestIdentity(station_id=stations[1])),
        CertificateRequest(
            "station", make_csr("other-cn", organization=ORG)[0], RequestIdentity(station_id=stations[1])
        ),
        CertificateRequest(
            "station", make_csr(stations[2], organization=ORG)[0], RequestIdentity(station_id=stations[2]), "no-such-ca"
        ),
        CertificateRequest(
            "station", make_csr(stations[2], organization=ORG)[0], RequestIdentity(station_id=stations[2])
        ),
    ]
    before = _counts(batch_pki)
    outcomes = batch_pki.certificates.issue_batch(requests, actor="test")
    assert [type(o).__name__ for o in outcomes] == [
        "IssuedCertificate",
        "InvalidInput",
        "PolicyViolation",
        "NotFound",
        "IssuedCertificate",
    ]
    assert isinstance(outcomes[1], InvalidInput)
    assert isinstance(outcomes[2], PolicyViolation) and outcomes[2].rule == "station.cn-serial"
    assert _counts(batch_pki) == (before[0] + 2, before[1] + 2)
    assert batch_pki.audit.verify().ok


def test_issue_batch_refuses_more_than_its_limit(batch_pki: PKI) -> None:
    request = CertificateRequest("station", "x", RequestIdentity(station_id="CP-X"))
    with pytest.raises(InvalidInput, match="at most"):
        batch_pki.certificates.issue_batch([request] * 1001)


def test_a_resumed_batch_returns_what_was_stored_instead_of_issuing_again(batch_pki: PKI) -> None:
    since = batch_pki.clock.now()
    stations = [_station() for _ in range(2)]
    requests = [
        CertificateRequest("station", make_csr(s, organization=ORG)[0], RequestIdentity(station_id=s)) for s in stations
    ]
    first = batch_pki.certificates.issue_batch(requests[:1], actor="test")
    before = _counts(batch_pki)
    again = batch_pki.certificates.issue_batch(requests, actor="test", resume_since=since)
    assert not isinstance(first[0], Exception) and not isinstance(again[0], Exception)
    assert not isinstance(again[1], Exception)
    assert again[0].certificate.serial == first[0].certificate.serial  # the stored one, not a second
    assert again[0].chain_pem == first[0].chain_pem
    assert _counts(batch_pki) == (before[0] + 1, before[1] + 1)  # only the second request was issued
    assert batch_pki.audit.verify().ok


def test_a_batch_whose_insert_fails_stores_each_request_alone(batch_pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two certificates of one batch drew the same serial: the multi-row insert fails, nothing of it is
    stored, and each request is then issued alone (the second with a fresh serial)."""
    from pki.ca import issuance

    real = issuance.new_serial
    drawn = iter([0x7E57_0000_0000_0001, 0x7E57_0000_0000_0001])
    monkeypatch.setattr(issuance, "new_serial", lambda: next(drawn, None) or real())
    stations = [_station() for _ in range(3)]
    requests = [
        CertificateRequest("station", make_csr(s, organization=ORG)[0], RequestIdentity(station_id=s)) for s in stations
    ]
    before = _counts(batch_pki)
    outcomes = batch_pki.certificates.issue_batch(requests, actor="test")
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    serials = {o.certificate.serial for o in outcomes if not isinstance(o, Exception)}
    assert len(serials) == 3
    assert _counts(batch_pki) == (before[0] + 3, before[1] + 3)
    assert batch_pki.audit.verify().ok


def test_a_renewal_in_a_batch_keeps_its_certificate_for_the_hook_and_the_database(batch_pki: PKI) -> None:
    """A renewal's ORM session joins the batch's SAVEPOINT: closing it must not roll back the row stored
    meanwhile (the hook of ISO 15118 contract provisioning looks the new certificate up)."""
    renewed, plain = _station(), _station()
    old = batch_pki.certificates.issue(
        profile="station", csr=make_csr(renewed, organization=ORG)[0], identity=RequestIdentity(station_id=renewed)
    )
    seen: list[int] = []

    def look_up(connection: Connection, row_id: int) -> None:
        found = connection.execute(select(CertificateRow.id).where(CertificateRow.id == row_id)).scalar_one_or_none()
        seen.append(found or 0)

    renewal = IssueRequest(
        "station",
        make_csr(renewed, organization=ORG)[0],
        RequestIdentity(station_id=renewed),
        renew=True,
        in_transaction=look_up,
    )
    batch = [_signed(batch_pki, renewal), _signed(batch_pki, _request(plain))]
    assert store_batch(batch_pki._ctx, batch) == [None, None]
    assert seen and seen[0] != 0
    assert batch_pki.certificates.get(batch[0].serial, "cso-sub").status == "valid"
    assert batch_pki.certificates.get(old.certificate.serial, "cso-sub").status == "superseded"
    assert _audited(batch_pki, batch[0].serial) == ["renew"]
    assert batch_pki.audit.verify().ok


# -- callers on an event loop (the REST API: pki.certificates.issue_async) ------------------------


def test_event_loop_callers_and_threads_share_one_batch_led_by_the_commit_thread(
    batch_pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = GroupCommit(max_gather_s=120.0)  # waits for every caller counted below
    monkeypatch.setattr(group_commit, "for_database", lambda _database: committer)
    batches: list[int] = []
    leaders: list[str] = []
    real_store_batch = group_commit.store_batch

    def counting_store_batch(ctx: object, batch: list[Signed]) -> list[BaseException | None]:
        batches.append(len(batch))
        leaders.append(threading.current_thread().name)
        return real_store_batch(ctx, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(group_commit, "store_batch", counting_store_batch)
    loop_stations = [_station() for _ in range(3)]
    thread_station = _station()
    for _ in range(len(loop_stations) + 1):
        committer.prepare()
    loop_thread = threading.get_ident()
    stored: dict[str, Signed] = {}

    async def on_the_loop(station: str) -> None:
        signed = _signed(batch_pki, _request(station))
        await committer.store_async(signed, prepared=True)
        assert threading.get_ident() == loop_thread  # woken on its own loop
        stored[station] = signed

    def in_a_thread() -> None:
        signed = _signed(batch_pki, _request(thread_station))
        committer.store(signed, prepared=True)
        stored[thread_station] = signed

    async def main() -> None:
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        await asyncio.gather(*(on_the_loop(station) for station in loop_stations))
        await asyncio.to_thread(thread.join, 60)

    asyncio.run(main())
    assert batches == [4]
    assert set(stored) == {*loop_stations, thread_station}
    for station, signed in stored.items():
        assert batch_pki.certificates.get(signed.serial, "cso-sub").identity == station
    assert batch_pki.audit.verify().ok


def test_issue_async_gives_each_caller_its_certificate_or_its_own_refusal(batch_pki: PKI) -> None:
    stations = [_station() for _ in range(6)]
    bad_csr = make_csr("not-the-serial", organization=ORG)[0]

    async def issue(station: str, csr: str) -> object:
        return await batch_pki.certificates.issue_async(
            profile="station", csr=csr, identity=RequestIdentity(station_id=station)
        )

    async def main() -> list[object]:
        calls = [issue(station, make_csr(station, organization=ORG)[0]) for station in stations]
        calls.insert(3, issue("CP-BREFUSED2", bad_csr))
        return await asyncio.gather(*calls, return_exceptions=True)

    before = _counts(batch_pki)
    outcomes = asyncio.run(main())
    refused = outcomes.pop(3)
    assert isinstance(refused, PolicyViolation)
    for station, outcome in zip(stations, outcomes, strict=True):
        assert not isinstance(outcome, BaseException), outcome
        pem = outcome.certificate.certificate_pem  # type: ignore[attr-defined]
        assert x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string().startswith(f"CN={station}")
        assert batch_pki.certificates.get(outcome.certificate.serial, "cso-sub").status == "valid"  # type: ignore[attr-defined]
    assert _counts(batch_pki) == (before[0] + 6, before[1] + 6)
    assert batch_pki.audit.verify().ok


def test_issue_async_stores_alone_when_the_shared_transaction_fails(
    batch_pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(_ctx: object, _batch: list[Signed]) -> list[BaseException | None]:
        raise InvalidInput("the batch's statements failed")

    monkeypatch.setattr(group_commit, "store_batch", failing)
    monkeypatch.setattr(group_commit, "for_database", lambda _database: GroupCommit(max_gather_s=0.0, linger_s=0.05))
    stations = [_station() for _ in range(3)]

    async def main() -> list[object]:
        return await asyncio.gather(
            *(
                batch_pki.certificates.issue_async(
                    profile="station", csr=make_csr(station, organization=ORG)[0],
                    identity=RequestIdentity(station_id=station),
                )
                for station in stations
            )
        )  # fmt: skip

    for station, outcome in zip(stations, asyncio.run(main()), strict=True):
        assert batch_pki.certificates.get(outcome.certificate.serial, "cso-sub").identity == station  # type: ignore[attr-defined]
    assert batch_pki.audit.verify().ok


def test_issue_async_takes_plain_requests_only(batch_pki: PKI) -> None:
    from pki.ca.issuance import issue_async

    with pytest.raises(InvalidInput, match="renewals and hooks"):
        asyncio.run(issue_async(batch_pki._ctx, _request(_station(), renew=True), "test"))


def test_a_thread_that_leads_while_loop_callers_wait_stores_its_own_certificate_first(
    batch_pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = GroupCommit(max_batch=2, max_gather_s=0.0, linger_s=0.0)
    monkeypatch.setattr(group_commit, "for_database", lambda _database: committer)
    loop_stations = [_station() for _ in range(3)]
    thread_station = _station()
    stored: dict[str, Signed] = {}

    async def main() -> None:
        loop_signed = [_signed(batch_pki, _request(station)) for station in loop_stations]
        waiting = [asyncio.ensure_future(committer.store_async(signed)) for signed in loop_signed]
        await asyncio.sleep(0)  # the three slots wait; their flush is queued behind this coroutine
        assert committer._flushing  # nobody leads yet
        signed = _signed(batch_pki, _request(thread_station))
        # A thread arriving now leads (nobody does): its own slot must be in its batch of two.
        await asyncio.to_thread(committer.store, signed)
        stored[thread_station] = signed
        await asyncio.gather(*waiting)
        stored.update(zip(loop_stations, loop_signed, strict=True))

    asyncio.run(main())
    for station, signed in stored.items():
        assert batch_pki.certificates.get(signed.serial, "cso-sub").identity == station
    assert _counts(batch_pki)[0] >= 4 and batch_pki.audit.verify().ok
