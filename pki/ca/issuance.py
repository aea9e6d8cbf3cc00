"""The issuance pipeline: parse the CSR → pick the issuer → apply policy → sign → store → audit.

Signing happens before the write transaction so the transaction stays short; if the final
checks inside it fail (the issuer was revoked meanwhile, a serial collided) nothing is
stored. Renewal is issuance plus marking the identity's previous certificates superseded,
in the same transaction.

Issuer choice and signing use the context's cached CA directory (see :mod:`pki.runtime.context`), so
a plain issuance reads nothing before it signs. The write transaction re-reads the directory
in one query and checks the issuer chain against it (expiry, revocation, hold); should any CA
have changed since the cache was filled, the certificate is discarded and issuance starts over
from fresh rows. The certificate row and its audit record are written with Core statements in
that same transaction.

Storing goes through the group commit (:mod:`pki.ca.group_commit`): concurrent issuances of
one process share a transaction and one audit-head update, each caller still getting its own
certificate or refusal; a lone caller stores alone as before. :func:`issue_many` is the bulk
form (mass re-enrollment): every request checked and signed, then all stored in one transaction.
The ``before_store`` hook runs in the caller's thread before anything is stored; ``in_transaction``
runs inside the shared transaction, in a SAVEPOINT of its own issuance (:mod:`pki.ca.batch_store`),
so hook-based callers (station CSRs, ISO 15118 contract provisioning) are batched too and a hook's
refusal rolls back its own issuance only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from pki.ca import group_commit
from pki.ca.authority import build_certificate, new_serial, serial_hex, validity_window
from pki.ca.batch_store import DirectoryChanged, Signed, StoreAlone, issued_view, store_batch, store_one
from pki.ca.policy import ApprovedRequest, RequestIdentity, check_request, load_csr
from pki.ca.profiles import Profile, ProfileName, get_profile
from pki.core import events
from pki.core.errors import Conflict, EvpkiError, InvalidInput, NotFound, PolicyViolation, Unavailable
from pki.runtime.context import CaDirectory, CaEntry, Context, IssuerContext
from pki.runtime.views import IssuedCertificate, certificate_view
from pki.store import repository
from pki.store.models import CaRequestRow, CertificateRow

__all__ = ["Approval", "BeforeStore", "InTransaction", "IssueRequest", "approve", "issue", "issue_many"]

_SERIAL_ATTEMPTS = 3
# How often issuance starts over because a CA changed between signing and storing; CAs change
# on `evpki init` and CA revocation, so needing more than one fresh start means something is wrong.
_DIRECTORY_ATTEMPTS = 3
_PROFILE_NAMES = frozenset(p.value for p in ProfileName)


# Called with the signed certificate before anything is stored; raising there stores nothing.
BeforeStore = Callable[[x509.Certificate], None]
# Called inside the write transaction with its connection and the new certificate row's id, so a
# caller's own record of the issuance (a contract's current certificate) commits with the row.
InTransaction = Callable[[Connection, int], None]


@dataclass(frozen=True, slots=True)
class IssueRequest:
    profile: str
    csr: bytes | str
    identity: RequestIdentity
    ca_id: str | None = None
    validity: dt.timedelta | None = None
    renew: bool = False
    before_store: BeforeStore | None = None
    in_transaction: InTransaction | None = None
    # A certificate that must not be valid before this instant (a contract that begins later); the
    # validity then runs from it. None: from now, back-dated a few minutes as every certificate.
    not_before: dt.datetime | None = None


def issue(ctx: Context, request: IssueRequest, actor: str, *, approval: Approval | None = None) -> IssuedCertificate:
    """Issue ``request``; ``approval`` (from :func:`approve` for this request) spares checking it twice."""
    try:
        issued = _issue_with_retries(ctx, request, actor, approval)
    except EvpkiError:
        events.emit("issuance", {"profile": _profile_label(request.profile), "outcome": "refused"})
        raise
    events.emit("issuance", {"profile": _profile_label(request.profile), "outcome": "issued"})
    return issued


async def issue_async(ctx: Context, request: IssueRequest, actor: str) -> IssuedCertificate:
    """:func:`issue` for a caller on an event loop: checks and signs here, awaits the group commit.

    The checks and the signature run on the loop's thread (what a thread hop would cost is more
    than they do); storing waits for the batch's commit without blocking the loop, so requests
    that arrive meanwhile are signed and join the next batch. Hooks (``before_store``,
    ``in_transaction``) and renewals take :func:`issue`.
    """
    if request.renew or request.before_store is not None or request.in_transaction is not None:
        raise InvalidInput("issue_async takes plain issuance requests; renewals and hooks go through issue()")
    label = _profile_label(request.profile)
    try:
        issued = await _issue_async(ctx, request, actor)
    except EvpkiError:
        events.emit("issuance", {"profile": label, "outcome": "refused"})
        raise
    events.emit("issuance", {"profile": label, "outcome": "issued"})
    return issued


async def _issue_async(ctx: Context, request: IssueRequest, actor: str) -> IssuedCertificate:
    committer = group_commit.for_database(ctx.database)
    for _ in range(_DIRECTORY_ATTEMPTS):
        signed = _sign(ctx, _approve(ctx, request), request, actor)
        try:
            await committer.store_async(signed)
        except StoreAlone:
            return issued_view(await asyncio.to_thread(_store_alone, signed))
        except IntegrityError as exc:
            if not _serial_collision(exc):
                raise
            resigned = _sign(ctx, signed.approval, request, actor)
            return issued_view(await asyncio.to_thread(_store_alone, resigned))
        except DirectoryChanged:
            continue  # decide again on the fresh rows
        return issued_view(signed)
    raise Unavailable("the CA hierarchy kept changing during issuance; retry")


def issue_many(
    ctx: Context, requests: Sequence[IssueRequest], actor: str, *, resume_since: dt.datetime | None = None
) -> list[IssuedCertificate | EvpkiError]:
    """Issue ``requests`` together: each gets its own certificate or its own refusal, in order.

    Every request is checked and signed first; the certificates are then stored in one
    transaction (:func:`pki.ca.batch_store.store_batch`: one audit record per certificate, one
    audit-head update), so a refusal leaves the others alone. Callers bound the batch (a few
    hundred keeps the transaction short). With ``resume_since``, a request whose identity already
    got a valid certificate for the same key from the same CA since then gets that certificate
    back instead of a second one: what a bulk run that stopped between storing and recording
    needs to resume without issuing twice.
    """
    results: list[IssuedCertificate | EvpkiError | None] = [None] * len(requests)
    approved: list[tuple[int, Approval]] = []
    for index, request in enumerate(requests):
        try:
            approved.append((index, _approve(ctx, request)))
        except EvpkiError as refusal:
            results[index] = refusal
    found: dict[int, IssuedCertificate] = {}
    if resume_since is not None and approved:
        found = _issued_since(ctx, approved, resume_since)
        approved = [(index, approval) for index, approval in approved if index not in found]
    signed: list[tuple[int, Signed]] = []
    for index, approval in approved:
        try:
            signed.append((index, _sign(ctx, approval, requests[index], actor)))
        except EvpkiError as refusal:
            results[index] = refusal
    try:
        outcomes = store_batch(ctx, [item for _, item in signed]) if signed else []
    except (InvalidInput, DBAPIError):
        # The batch's statements failed as a whole (a value the database refuses, a serial that
        # collided): nothing of it is stored, and each request finds out alone what it gets.
        outcomes = [StoreAlone() for _ in signed]
    again: list[int] = []
    for (index, item), outcome in zip(signed, outcomes, strict=True):
        if outcome is None:
            results[index] = issued_view(item)
        elif isinstance(outcome, DirectoryChanged | StoreAlone):
            again.append(index)
        elif isinstance(outcome, EvpkiError):
            results[index] = outcome
        else:
            raise outcome
    for index, result in enumerate(results):
        if result is not None:
            outcome_label = "refused" if isinstance(result, EvpkiError) else "issued"
            events.emit("issuance", {"profile": _profile_label(requests[index].profile), "outcome": outcome_label})
    for index in again:  # one at a time, as a single issuance would (it counts itself)
        try:
            results[index] = issue(ctx, requests[index], actor)
        except EvpkiError as refusal:
            results[index] = refusal
    for index, issued in found.items():  # issued before: not counted again
        results[index] = issued
    return [result for result in results if result is not None]


def _issued_since(
    ctx: Context, approved: Sequence[tuple[int, Approval]], since: dt.datetime
) -> dict[int, IssuedCertificate]:
    """The requests (by index) whose identity got a valid certificate for its key from its CA since ``since``."""
    wanted: dict[tuple[str, str, str, bytes], int] = {}
    for index, approval in approved:
        key = _spki_of(approval.approved.public_key)
        wanted[(approval.ca.id, approval.profile.name.value, approval.approved.identity, key)] = index
    identities = sorted({identity for _, _, identity, _ in wanted})
    profiles = sorted({profile for _, profile, _, _ in wanted})
    statement = select(CertificateRow).where(
        CertificateRow.profile.in_(profiles),  # type: ignore[attr-defined]  # ix_certificate_identity leads with it
        CertificateRow.identity.in_(identities),  # type: ignore[union-attr]
        CertificateRow.created_at >= since,  # type: ignore[arg-type]
        CertificateRow.status == "valid",  # type: ignore[arg-type]
        CertificateRow.superseded_by_id.is_(None),  # type: ignore[union-attr]
    )
    found: dict[int, IssuedCertificate] = {}
    approvals = dict(approved)
    now = ctx.clock.now()
    with ctx.database.read() as session:
        for row in session.execute(statement).scalars():
            certificate = x509.load_der_x509_certificate(row.der)
            index = wanted.get((row.issuer_id, row.profile, row.identity or "", _spki_of(certificate.public_key())))
            if index is not None and index not in found:
                found[index] = IssuedCertificate(certificate_view(session, row, now), approvals[index].chain)
    return found


def _spki_of(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _profile_label(name: str) -> str:
    """The profile as a metrics label: a known name, else ``other`` (callers' typos must not add series)."""
    return name if name in _PROFILE_NAMES else "other"


@dataclass(frozen=True, slots=True)
class Approval:
    """A request that passed every check before signing: parsed CSR, issuer, policy, validity."""

    profile: Profile
    directory: CaDirectory
    ca: CaEntry
    issuer: IssuerContext
    chain: tuple[x509.Certificate, ...]
    approved: ApprovedRequest
    validity: dt.timedelta


def approve(ctx: Context, request: IssueRequest) -> Approval:
    """Run every check issuance runs before it signs, signing nothing and storing nothing.

    For callers that must decide on a request only once it is known to be acceptable (a
    station's re-sent CSR, :mod:`pki.stations.csr_issuance`); pass the result to :func:`issue`. A refusal
    counts as a refused issuance.
    """
    try:
        return _approve(ctx, request)
    except EvpkiError:
        events.emit("issuance", {"profile": _profile_label(request.profile), "outcome": "refused"})
        raise


def _approve(ctx: Context, request: IssueRequest) -> Approval:
    csr = load_csr(request.csr)  # parsed and its signature verified
    profile = get_profile(request.profile)
    try:
        directory, ca, issuer, organization, identity = _prepare(ctx, profile, request)
    except NotFound as exc:
        raise _with_awaiting_cas(ctx, exc) from None
    chain = tuple(directory.presented(ca.id))
    approved = check_request(csr, profile, standard=ca.standard, organization=organization, identity=identity)
    return Approval(profile, directory, ca, issuer, chain, approved, _validity(profile, request.validity))


def _with_awaiting_cas(ctx: Context, exc: NotFound) -> NotFound:
    """A missing issuer may be one that waits for its certificate from an external parent: say so."""
    with ctx.database.read() as session:
        waiting = [row.id for row in session.execute(select(CaRequestRow.id)).all()]
    if not waiting:
        return exc
    return NotFound(
        f"{exc.message}; {', '.join(waiting)} await their certificate from an external parent "
        "(`evpki ca request`, then `evpki ca install`), and the CAs below them are created then"
    )


def _issue_with_retries(
    ctx: Context, request: IssueRequest, actor: str, approval: Approval | None
) -> IssuedCertificate:
    committer = group_commit.for_database(ctx.database)
    for _ in range(_DIRECTORY_ATTEMPTS):
        committer.prepare()
        try:
            current = approval or _approve(ctx, request)
            signed = _sign(ctx, current, request, actor)
        except BaseException:
            committer.abandon()
            raise
        try:
            return issued_view(_store(committer, signed))
        except DirectoryChanged:
            approval = None  # decide again on the fresh rows
    raise Unavailable("the CA hierarchy kept changing during issuance; retry")


def _store(committer: group_commit.GroupCommit, signed: Signed) -> Signed:
    """Store with whatever other issuances of this process are waiting (group commit)."""
    try:
        committer.store(signed, prepared=True)
    except StoreAlone:
        return _store_alone(signed)
    except IntegrityError as exc:
        if not _serial_collision(exc):
            raise
        return _store_alone(_sign(signed.ctx, signed.approval, signed.request, signed.actor))
    return signed


def _store_alone(signed: Signed) -> Signed:
    """Store in a transaction of its own, signing again (a new serial) should the serial collide."""
    for attempt in range(_SERIAL_ATTEMPTS):
        try:
            store_one(signed)
        except IntegrityError as exc:
            # Only a serial collision (126 random bits) can land here; any other integrity
            # failure is a bug and must not be retried silently.
            if not _serial_collision(exc) or attempt == _SERIAL_ATTEMPTS - 1:
                raise
            signed = _sign(signed.ctx, signed.approval, signed.request, signed.actor)
        else:
            return signed
    raise AssertionError("unreachable")  # pragma: no cover


def _serial_collision(exc: IntegrityError) -> bool:
    return "serial" in str(exc.orig).lower()


def _prepare(
    ctx: Context, profile: Profile, request: IssueRequest
) -> tuple[CaDirectory, CaEntry, IssuerContext, str, RequestIdentity]:
    """Directory, issuer, organisation and identity as the checks before signing need them.

    Nothing is read while the cache knows enough; the read transaction runs on first use, for
    renewals (which look up the certificate being replaced), and whenever the cache says the
    chosen issuer chain is unusable (so a refusal is never based on a stale status).
    """
    directory = ctx.cached_ca_directory()
    organization = ctx.cached_organization()
    if directory is not None and organization is not None and not request.renew:
        ca = _issuer_for(directory, profile, request.ca_id)
        issuer = _issuer_context(ctx, ca)
        if _usable_in_cache(ctx, directory, ca):
            return directory, ca, issuer, organization, request.identity
    with ctx.database.read() as session:
        directory = ctx.ca_directory(session.connection())
        ca = _issuer_for(directory, profile, request.ca_id)
        issuer = _issuer_context(ctx, ca)
        ctx.check_chain_usable(directory, ca.id)
        organization = ctx.organization(session)
        if organization is None:
            raise Unavailable("the PKI is not initialised; run `evpki init` first")
        identity = request.identity
        if request.renew:
            identity = _renewal_identity(session, profile, identity)
    return directory, ca, issuer, organization, identity


def _issuer_context(ctx: Context, ca: CaEntry) -> IssuerContext:
    return IssuerContext(
        ca_id=ca.id,
        signer=ctx.keys.load(ca.key_id),
        certificate=ca.certificate,
        rsa_pss=ca.rsa_pss,
        standard=ca.standard,
    )


def _usable_in_cache(ctx: Context, directory: CaDirectory, ca: CaEntry) -> bool:
    try:
        ctx.check_chain_usable(directory, ca.id)
    except PolicyViolation:
        return False
    return True


def _sign(ctx: Context, approval: Approval, request: IssueRequest, actor: str) -> Signed:
    """Build and sign the certificate (nothing stored); ``before_store`` sees it before it is kept."""
    issuer, approved, profile = approval.issuer, approval.approved, approval.profile
    now = ctx.clock.now()
    start = request.not_before if request.not_before is not None and request.not_before > now else None
    not_before, not_after = validity_window(start or now, approval.validity, issuer.certificate)
    if start is not None:
        not_before = max(not_before, start)
        if not_after <= not_before:
            raise PolicyViolation("issuer.expired", "the issuing CA certificate ends before the requested start")
    serial_number = new_serial()
    certificate = build_certificate(
        issuer=issuer,
        subject=approved.subject,
        public_key=approved.public_key,
        profile=profile,
        serial=serial_number,
        not_before=not_before,
        not_after=not_after,
        public_url=ctx.settings.public_base_url,
        dns_names=approved.dns_names,
        ip_addresses=approved.ip_addresses,
        alternate_public_key=approved.alternate_public_key,
    )
    if request.before_store is not None:
        request.before_store(certificate)
    der = certificate.public_bytes(serialization.Encoding.DER)
    return Signed(
        ctx=ctx,
        approval=approval,
        request=request,
        actor=actor,
        certificate=certificate,
        der=der,
        sha256=hashlib.sha256(der).hexdigest(),
        subject=certificate.subject.rfc4514_string(),
        serial=serial_hex(serial_number),
        not_before=not_before,
        not_after=not_after,
        at=now,
    )


def _issuer_for(directory: CaDirectory, profile: Profile, ca_id: str | None) -> CaEntry:
    if ca_id is not None:
        ca = directory.cas.get(ca_id)
        if ca is None:
            raise repository.unknown_ca(ca_id)
        if profile.name.value not in ca.issues:
            raise PolicyViolation("issuer.profile", f"CA {ca_id} does not issue {profile.name.value} certificates")
        return ca
    candidates = [ca for ca in directory.cas.values() if profile.name.value in ca.issues]
    if not candidates:
        raise NotFound(f"no CA issues {profile.name.value} certificates; run `evpki init` or name one with --ca")
    if len(candidates) > 1:
        names = ", ".join(ca.id for ca in candidates)
        raise Conflict(f"several CAs issue {profile.name.value} certificates ({names}); name one with --ca")
    return candidates[0]


def _renewal_identity(session: Session, profile: Profile, identity: RequestIdentity) -> RequestIdentity:
    """A renewal keeps the identity: the station serial comes from the certificate being replaced."""
    key = identity.station_id or identity.secc_id or identity.fqdn or identity.emaid or identity.pcid
    if not key:
        raise NotFound("a renewal needs the identity whose certificate it replaces")
    current = repository.current_for_identity(session, profile.name.value, key)
    if not current:
        raise NotFound(f"no current {profile.name.value} certificate for {key!r} to renew; issue one first")
    old_serial = current[-1].station_serial
    if identity.station_serial and old_serial and identity.station_serial != old_serial:
        raise PolicyViolation(
            "renewal.serial-changed",
            f"station {key!r} has serial {old_serial!r}; a renewal cannot change it to {identity.station_serial!r}",
        )
    if old_serial and not identity.station_serial:
        return RequestIdentity(
            station_id=identity.station_id,
            station_serial=old_serial,
            secc_id=identity.secc_id,
            fqdn=identity.fqdn,
            emaid=identity.emaid,
            pcid=identity.pcid,
        )
    return identity


def _validity(profile: Profile, requested: dt.timedelta | None) -> dt.timedelta:
    if requested is None:
        return profile.default_validity
    if requested > profile.max_validity:
        raise PolicyViolation(
            "validity.max",
            f"{profile.name.value} certificates are valid for at most {profile.max_validity.days} days",
        )
    return requested
