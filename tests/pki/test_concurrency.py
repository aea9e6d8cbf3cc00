"""Several processes issuing, revoking and publishing CRLs at once against one database.

Each worker is a separate process (``spawn``) with its own :class:`pki.PKI`, so nothing is
shared but the database: the case ``evpki serve --workers N`` and several bridges create. After
they all finish the database must show what a single writer would have left: one serial per
issuer, strictly increasing CRL numbers per CA, one audit record per issuance and revocation, an
audit chain that verifies, and, asked from yet another PKI instance, OCSP saying ``revoked`` for
every revoked certificate although a ``good`` answer was pre-signed for it before the revocation.

On PostgreSQL (``EVPKI_TEST_DATABASE_URL``, CI's second pass) this is the real test; on SQLite it
runs with fewer operations, which exercises the busy-timeout path between processes.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlalchemy import create_engine, text

from pki import PKI, RequestIdentity
from tests.conftest import PG_URL, make_csr, make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKERS = 4
# Per worker: certificates issued, every REVOKE_EVERY-th of them revoked (CRLs republished), and a
# full or delta CRL generated explicitly every CRL_EVERY-th issuance.
ISSUANCES = 40 if PG_URL else 12
REVOKE_EVERY = 4
CRL_EVERY = 6
ISSUER = "cso-sub"
_JOIN_TIMEOUT_S = 180  # a deadlock must fail the test, not hang CI


@dataclass
class WorkerResult:
    """What one worker did, as it saw it."""

    worker: int
    issued: list[str] = field(default_factory=list)  # serials (hex)
    revoked: list[str] = field(default_factory=list)
    revoked_pem: list[str] = field(default_factory=list)
    crl_numbers: list[int] = field(default_factory=list)  # from explicit generate_crl, in call order
    error: str | None = None


def _ocsp_request(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class Plan:
    """What each worker does: ``issuances`` certificates, every ``revoke_every``-th revoked, and so on."""

    issuances: int = ISSUANCES
    revoke_every: int = REVOKE_EVERY
    crl_every: int = CRL_EVERY


def _worker(index: int, home: str, url: str, plan: Plan, barrier: Any, results: Any) -> None:
    """Issue, warm OCSP, revoke and publish CRLs; report a :class:`WorkerResult` on ``results``."""
    result = WorkerResult(index)
    try:
        csrs = [make_csr(f"W{index}S{i:04d}")[0] for i in range(plan.issuances)]
        pki = PKI.open(make_settings(Path(home), url), migrate=False)
        try:
            issuer = pki.cas.chain(ISSUER)[0]
            barrier.wait(timeout=60)
            for i, csr in enumerate(csrs):
                issued = pki.certificates.issue(
                    profile="station", csr=csr, identity=RequestIdentity(station_id=f"W{index}S{i:04d}"), actor="w"
                )
                serial = issued.certificate.serial
                result.issued.append(serial)
                if i % plan.revoke_every == plan.revoke_every - 1:
                    pem = issued.certificate.certificate_pem
                    certificate = x509.load_pem_x509_certificate(pem.encode())
                    # Pre-sign and store a "good" answer first: the revocation must make it stale.
                    warm = ocsp.load_der_ocsp_response(pki.ocsp.respond(_ocsp_request(certificate, issuer)).der)
                    assert warm.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, warm.response_status
                    assert warm.certificate_status == ocsp.OCSPCertStatus.GOOD
                    pki.revocation.revoke(serial, "keyCompromise", ca_id=ISSUER, actor="w")
                    result.revoked.append(serial)
                    result.revoked_pem.append(pem)
                if i % plan.crl_every == plan.crl_every - 1:
                    crl = pki.crls.generate(ISSUER, delta=(i // plan.crl_every) % 2 == 1, actor="w")
                    result.crl_numbers.append(crl.number)
        finally:
            pki.close()
    except BaseException:
        result.error = traceback.format_exc()
    results.put(result)


def _run_workers(pki: PKI, plan: Plan, workers: int = WORKERS) -> list[WorkerResult]:
    """Run ``workers`` processes on ``pki``'s database at once; their results, or the test fails."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    home, url = str(pki.settings.home), pki.settings.resolved_database_url
    processes = [context.Process(target=_worker, args=(i, home, url, plan, barrier, results)) for i in range(workers)]
    for process in processes:
        process.start()
    collected: list[WorkerResult] = []
    try:
        # Read before joining: a child blocks on exit until its queued result is consumed.
        for _ in processes:
            collected.append(results.get(timeout=_JOIN_TIMEOUT_S))
    except queue.Empty:
        pytest.fail(f"only {len(collected)} of {workers} workers finished within {_JOIN_TIMEOUT_S} s")
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    errors = [r.error for r in collected if r.error]
    assert not errors, "\n".join(errors)
    return collected


def _rows(url: str, sql: str, **params: object) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def test_processes_issue_revoke_and_publish_concurrently(fresh_pki: PKI) -> None:
    url = fresh_pki.settings.resolved_database_url
    fresh_pki.crls.current(ISSUER)  # a CRL to start from, so the workers' numbers follow a known one
    audit_before = fresh_pki.audit.count()
    crl_before = {row[0] for row in _rows(url, "SELECT number FROM crl WHERE ca_id = :ca", ca=ISSUER)}

    results = _run_workers(fresh_pki, Plan())

    issued = [serial for r in results for serial in r.issued]
    revoked = [serial for r in results for serial in r.revoked]
    assert len(issued) == WORKERS * ISSUANCES
    assert len(revoked) == WORKERS * (ISSUANCES // REVOKE_EVERY)

    # No duplicate serial per issuer, and every certificate a worker got is stored once.
    duplicates = _rows(
        url, "SELECT issuer_id, serial, COUNT(*) FROM certificate GROUP BY issuer_id, serial HAVING COUNT(*) > 1"
    )
    assert duplicates == []
    stored = {row[0] for row in _rows(url, "SELECT serial FROM certificate WHERE issuer_id = :ca", ca=ISSUER)}
    assert set(issued) <= stored and len(set(issued)) == len(issued)

    # CRL numbers: one sequence per CA, strictly increasing in the order the CRLs were stored.
    for ca_id, numbers in _crl_numbers(url).items():
        assert len(set(numbers)) == len(numbers), f"{ca_id}: duplicate CRL numbers {numbers}"
        assert numbers == sorted(numbers), f"{ca_id}: CRL numbers out of order {numbers}"
        (counter,) = _rows(url, "SELECT crl_number FROM certificate_authority WHERE id = :ca", ca=ca_id)[0]
        assert counter == max(numbers)
    for result in results:
        assert result.crl_numbers == sorted(set(result.crl_numbers))
    made = _crl_numbers(url)[ISSUER]
    assert len(made) > len(crl_before) + sum(len(r.crl_numbers) for r in results)  # revocations republished too

    # Every issuance and revocation audited exactly once; the chain verifies to its head.
    audit_sql = "SELECT action, serial FROM audit_record WHERE ca_id = :ca AND seq > :seq"
    audited = Counter((row[0], row[1]) for row in _rows(url, audit_sql, ca=ISSUER, seq=audit_before))
    assert all(audited[("issue", serial)] == 1 for serial in issued)
    assert all(audited[("revoke", serial)] == 1 for serial in revoked)
    verification = fresh_pki.audit.verify()
    assert verification.ok, verification
    assert verification.records == fresh_pki.audit.count() > audit_before + len(issued) + len(revoked)

    # Each revoked certificate had a "good" answer pre-signed and stored before its revocation ...
    presigned = {row[0] for row in _rows(url, "SELECT serial FROM ocsp_response WHERE ca_id = :ca", ca=ISSUER)}
    assert set(revoked) <= presigned
    # ... and a PKI instance that took no part (a different process's view) never serves the pre-signed "good".
    other = PKI.open(make_settings(fresh_pki.settings.home, url), migrate=False)
    try:
        issuer = other.cas.chain(ISSUER)[0]
        for pem in (p for r in results for p in r.revoked_pem):
            certificate = x509.load_pem_x509_certificate(pem.encode())
            answer = ocsp.load_der_ocsp_response(other.ocsp.respond(_ocsp_request(certificate, issuer)).der)
            assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED, certificate.serial_number
            assert answer.revocation_reason == x509.ReasonFlags.key_compromise
    finally:
        other.close()


def _crl_numbers(url: str) -> dict[str, list[int]]:
    numbers: dict[str, list[int]] = {}
    for ca_id, number in _rows(url, "SELECT ca_id, number FROM crl ORDER BY id"):
        numbers.setdefault(ca_id, []).append(number)
    return numbers
