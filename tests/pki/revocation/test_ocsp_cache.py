"""The OCSP answer cache and its status feed: served from memory, never stale once a change is known.

Same process: a revocation committed here is never answered ``good`` once the commit returned.
Another process (a second PKI instance on the same database, with its own engine and feed): the
change is seen once the feed has synced -- which the tests trigger explicitly rather than waiting
(on SQLite every cached answer checks the WAL header first, so no trigger is needed there).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki import PKI, RequestIdentity
from pki.core.clock import FixedClock
from pki.revocation import ocsp_store, status_feed
from tests.conftest import make_csr, make_settings


def _issue(pki: PKI) -> x509.Certificate:
    station_id = f"CP{uuid.uuid4().hex[:10].upper()}"
    csr, _ = make_csr(station_id)
    view = pki.certificates.issue(profile="station", csr=csr, identity=RequestIdentity(station_id=station_id))
    return x509.load_pem_x509_certificate(view.certificate.certificate_pem.encode())


def _request(pki: PKI, certificate: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, pki.cas.chain("cso-sub")[0], hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _status(der: bytes) -> ocsp.OCSPCertStatus:
    return ocsp.load_der_ocsp_response(der).certificate_status


def _serial(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "X")


def _ready(pki: PKI) -> None:
    """Start the instance's feed and sync it, so that the first answer is kept (PostgreSQL's listener
    thread would do the first sync a few milliseconds after the first request)."""
    pki.ocsp._engine._cache_token()
    _sync(pki)


@pytest.fixture(autouse=True)
def _untimed(fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    # Freshness is not a matter of time in these tests: syncs are triggered where the feed would make them.
    monkeypatch.setattr(status_feed, "FRESHNESS_BOUND", 3600.0)
    _ready(fresh_pki)


@pytest.fixture
def other(fresh_pki: PKI) -> Iterator[PKI]:
    """A second PKI on the same database: another process's view (its own engine, pool, cache and feed)."""
    instance = PKI.open(
        make_settings(fresh_pki.settings.home, fresh_pki.settings.resolved_database_url),
        clock=FixedClock(fresh_pki.clock.now()),
        migrate=False,
    )
    _ready(instance)
    yield instance
    instance.close()


def _sync(pki: PKI) -> None:
    """What the feed does by itself (PostgreSQL: on NOTIFY or within POLL_INTERVAL), done now."""
    feed = pki.ocsp._engine.cache.feed
    assert feed is not None
    feed.sync()


def test_second_answer_comes_from_memory_without_the_database(fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    certificate = _issue(fresh_pki)
    request = _request(fresh_pki, certificate)
    first = fresh_pki.ocsp.respond(request)
    monkeypatch.setattr("pki.revocation.ocsp_responder.read_presigned", None)  # a database read would fail
    second = fresh_pki.ocsp.respond(request)
    assert second.from_store and second.der == first.der
    assert _status(second.der) is ocsp.OCSPCertStatus.GOOD


def test_same_process_revocation_is_answered_at_once(fresh_pki: PKI) -> None:
    certificate = _issue(fresh_pki)
    request = _request(fresh_pki, certificate)
    for _ in range(2):
        assert _status(fresh_pki.ocsp.respond(request).der) is ocsp.OCSPCertStatus.GOOD
    fresh_pki.revocation.revoke(_serial(certificate), "keyCompromise", ca_id="cso-sub")
    assert _status(fresh_pki.ocsp.respond(request).der) is ocsp.OCSPCertStatus.REVOKED
    # The nonce path reads the status from the same cache.
    nonced = fresh_pki.ocsp.respond(_request(fresh_pki, certificate, b"n" * 16))
    assert _status(nonced.der) is ocsp.OCSPCertStatus.REVOKED


def test_contract_style_revocation_inside_a_core_transaction_is_seen(fresh_pki: PKI) -> None:
    """A status change made by an ORM session joined to a Core transaction (no Session.commit) counts too."""
    from sqlalchemy.orm import Session

    from pki.revocation.reasons import RevocationReason, revoke_row
    from pki.store import repository

    certificate = _issue(fresh_pki)
    request = _request(fresh_pki, certificate)
    fresh_pki.ocsp.respond(request)
    assert fresh_pki.ocsp.respond(request).from_store
    ctx = fresh_pki._ctx
    with ctx.database.transaction() as connection:
        session = Session(bind=connection)
        row = repository.find_certificate(session, _serial(certificate), "cso-sub")
        revoke_row(session, row, RevocationReason.SUPERSEDED, clock=ctx.clock, actor="test")
        session.flush()
    assert _status(fresh_pki.ocsp.respond(request).der) is ocsp.OCSPCertStatus.REVOKED


def test_other_process_sees_the_revocation_once_its_feed_synced(fresh_pki: PKI, other: PKI) -> None:
    certificate = _issue(fresh_pki)
    request = _request(other, certificate)
    for _ in range(2):
        assert _status(other.ocsp.respond(request).der) is ocsp.OCSPCertStatus.GOOD
    assert other.ocsp.respond(request).from_store
    fresh_pki.revocation.revoke(_serial(certificate), "keyCompromise", ca_id="cso-sub")
    _sync(other)
    assert _status(other.ocsp.respond(request).der) is ocsp.OCSPCertStatus.REVOKED
    held = _issue(fresh_pki)
    held_request = _request(other, held)
    other.ocsp.respond(held_request)
    fresh_pki.revocation.revoke(_serial(held), "certificateHold", ca_id="cso-sub")
    _sync(other)
    assert _status(other.ocsp.respond(held_request).der) is ocsp.OCSPCertStatus.REVOKED
    fresh_pki.revocation.release_hold(_serial(held), ca_id="cso-sub")
    _sync(other)
    assert _status(other.ocsp.respond(held_request).der) is ocsp.OCSPCertStatus.GOOD


def test_sqlite_other_process_needs_no_sync(fresh_pki: PKI, other: PKI) -> None:
    if not fresh_pki._ctx.database.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL learns through LISTEN/NOTIFY, within the documented bound")
    certificate = _issue(fresh_pki)
    request = _request(other, certificate)
    other.ocsp.respond(request)
    assert other.ocsp.respond(request).from_store
    fresh_pki.revocation.revoke(_serial(certificate), "keyCompromise", ca_id="cso-sub")
    assert _status(other.ocsp.respond(request).der) is ocsp.OCSPCertStatus.REVOKED


def test_a_fill_racing_a_revocation_is_not_kept(fresh_pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer read before the revocation committed must not land in the cache after it."""
    certificate = _issue(fresh_pki)
    request = _request(fresh_pki, certificate)
    engine = fresh_pki.ocsp._engine
    read_done, revoked = threading.Event(), threading.Event()
    real_read = ocsp_store.read_presigned

    def slow_read(*args: object, **kwargs: object) -> object:
        row = real_read(*args, **kwargs)  # type: ignore[arg-type]
        read_done.set()
        assert revoked.wait(30)  # the revocation commits after the read, before the fill is kept
        return row

    monkeypatch.setattr("pki.revocation.ocsp_responder.read_presigned", slow_read)
    answers: list[bytes] = []
    filler = threading.Thread(target=lambda: answers.append(fresh_pki.ocsp.respond(request).der))
    filler.start()
    assert read_done.wait(30)
    fresh_pki.revocation.revoke(_serial(certificate), "keyCompromise", ca_id="cso-sub", publish_crls=False)
    revoked.set()
    filler.join(30)
    monkeypatch.setattr("pki.revocation.ocsp_responder.read_presigned", real_read)
    assert _status(answers[0]) is ocsp.OCSPCertStatus.GOOD  # read before the commit: right then
    assert len(engine.cache) == 0  # ... but not kept
    assert _status(fresh_pki.ocsp.respond(request).der) is ocsp.OCSPCertStatus.REVOKED


def test_revoked_responder_drops_every_answer_it_signed(fresh_pki: PKI, other: PKI) -> None:
    certificate = _issue(fresh_pki)
    request = _request(other, certificate)
    other.ocsp.respond(request)
    first = other.ocsp.respond(request)
    assert first.from_store
    responder = other.ocsp.responder("cso-sub")
    fresh_pki.revocation.revoke(responder.serial, "keyCompromise", ca_id="cso-sub")
    _sync(other)
    answer = ocsp.load_der_ocsp_response(other.ocsp.respond(request).der)
    assert format(answer.certificates[0].serial_number, "X") != responder.serial
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_nonce_answers_are_signed_per_request(fresh_pki: PKI) -> None:
    certificate = _issue(fresh_pki)
    issuer = fresh_pki.cas.chain("cso-sub")[0]
    ders = set()
    for nonce in (b"a" * 16, b"b" * 16, b"a" * 16):
        answer = fresh_pki.ocsp.respond(_request(fresh_pki, certificate, nonce))
        assert not answer.cacheable and not answer.from_store
        response = ocsp.load_der_ocsp_response(answer.der)
        assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
        assert response.serial_number == certificate.serial_number
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert response.hash_algorithm.name == "sha1"
        assert response.issuer_key_hash == ocsp.load_der_ocsp_request(_request(fresh_pki, certificate)).issuer_key_hash
        responder = response.certificates[0]
        responder.verify_directly_issued_by(issuer)
        from cryptography.hazmat.primitives.asymmetric import ec

        responder.public_key().verify(  # type: ignore[call-arg, union-attr]
            response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm)
        )
        ders.add(answer.der)
    assert len(ders) == 3  # ECDSA: a new signature each time, even for a repeated nonce


def test_revoked_answer_from_the_der_builder_states_time_and_reason(fresh_pki: PKI) -> None:
    certificate = _issue(fresh_pki)
    fresh_pki.revocation.revoke(_serial(certificate), "affiliationChanged", ca_id="cso-sub")
    response = ocsp.load_der_ocsp_response(fresh_pki.ocsp.respond(_request(fresh_pki, certificate, b"r" * 8)).der)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.affiliation_changed
    assert response.revocation_time_utc == fresh_pki.clock.now()
    assert response.next_update_utc - response.this_update_utc == dt.timedelta(days=1)


def test_malformed_unknown_issuer_and_oversized_are_not_cached(fresh_pki: PKI) -> None:
    engine = fresh_pki.ocsp._engine
    engine.cache.clear()
    garbage = b"\x30\x03\x02\x01\x01"
    assert fresh_pki.ocsp.respond(garbage).status == "malformedRequest"
    assert fresh_pki.ocsp.respond(b"\x30" * (70 * 1024)).status == "malformedRequest"
    foreign = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(b"\x01" * 20, b"\x02" * 20, 5, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    for _ in range(2):
        assert fresh_pki.ocsp.respond(foreign).status == "unauthorized"
    assert len(engine.cache) == 0
