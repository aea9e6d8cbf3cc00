"""The contract registry: which vehicle (PCID) holds which ISO 15118 contract (eMAID).

The mobility operator records contracts here. The provisioning service looks one up by PCID
(CertificateInstallationReq: :func:`find_active_for_pcid`) or by eMAID (CertificateUpdateReq:
:func:`find_for_emaid`) and, inside the transaction that issues the contract certificate, calls
:func:`record_contract_certificate`. The rules:

- An eMAID is kept in the ISO 15118-2 normalised form (``eMAIDType``: 14-15 characters, no
  separators, upper case) and is unique for ever, revoked contracts included
  (:mod:`pki.iso15118.contract_input` checks the inputs).
- A PCID -- the CN of the vehicle's OEM provisioning certificate -- is matched exactly, as the
  certificate carries it. By default it holds one contract at a time: the validity periods
  ``[valid_from, valid_until)`` of its unrevoked contracts never overlap, so a successor can be
  scheduled to start when the current contract ends, and an expired one is no obstacle.
- Several contracts per PCID (ISO 15118-20 hands a car several contract chains, OPCP keeps
  several contracts per PCID): a contract added with ``concurrent=True`` may overlap the PCID's
  others. ``priority`` orders them, lower first, then the oldest: an ISO 15118-2 installation
  takes the first active one (:func:`find_active_for_pcid`), ISO 15118-20 hands them out in that
  order after the car's own PrioritizedEMAIDs (:func:`active_for_pcid`). A contract added without
  ``concurrent`` still may not overlap any other, concurrent ones included.
- Revoking a contract, with its certificates, is :mod:`pki.iso15118.contract_revocation`.
- :func:`put_contract` records a contract inside a caller's issuance transaction (OPCP's generated
  contract data): new and concurrent, or the same PCID's contract with a new period.

Views derive their status from the validity (:mod:`pki.iso15118.contract_views`). Free-text notes
stay out of the audit log: it is append-only, and a customer reference is personal data that may
have to be erased.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy import Connection, bindparam, select, text, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from pki.ca.profiles import ProfileName
from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput, NotFound
from pki.iso15118.contract_input import checked_instant, checked_note, normalise_emaid, parse_pcid
from pki.iso15118.contract_views import CertificateRef, ContractView, derived_status, optional_isoformat, status_clause
from pki.operations import audit
from pki.runtime.context import Context
from pki.store import repository
from pki.store.db import joined_session
from pki.store.models import CertificateRow, ContractRow

__all__ = [
    "MAX_LIMIT",
    "MAX_PRIORITY",
    "active_for_pcid",
    "add_contract",
    "find_active_for_pcid",
    "find_for_emaid",
    "get_contract",
    "list_contracts",
    "put_contract",
    "record_contract_certificate",
    "row_by_emaid",
]

MAX_LIMIT = 100_000
MAX_PRIORITY = 1_000_000

_CONTRACT_PROFILE = ProfileName.CONTRACT.value


def _period(valid_from: dt.datetime, valid_until: dt.datetime | None) -> str:
    until = valid_until.isoformat() if valid_until else "open-ended"
    return f"{valid_from.isoformat()} to {until}"


@contextmanager
def _session_of(source: Context | Session | Connection) -> Iterator[Session]:
    if isinstance(source, Context):
        with source.database.read() as session:
            yield session
    elif isinstance(source, Session):
        yield source
    elif isinstance(source, Connection):
        # Joins the connection's transaction; never commits it (that is the caller's).
        yield joined_session(source)
    else:
        raise TypeError(f"expected a Context, Session or Connection, not {type(source).__name__}")


def row_by_emaid(session: Session, emaid: str, *, lock: bool = False) -> ContractRow | None:
    """The stored contract of the normalised ``emaid``; ``lock`` holds it until the transaction ends."""
    query = select(ContractRow).where(ContractRow.emaid == emaid)
    if lock:
        query = query.with_for_update()  # PostgreSQL; SQLite's write transaction already serialises
    return session.execute(query).scalar_one_or_none()


def get_contract(ctx: Context, emaid: str) -> ContractView:
    """The contract of ``emaid`` (any spelling :func:`normalise_emaid` accepts); :class:`NotFound` if none."""
    normalised = normalise_emaid(emaid)
    with ctx.database.read() as session:
        row = row_by_emaid(session, normalised)
        if row is None:
            raise NotFound(f"no contract with eMAID {normalised}")
        return ContractView.from_row(row, ctx.clock.now())


def list_contracts(
    ctx: Context, *, pcid: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[ContractView]:
    """Contracts in the order they were added; ``status`` is one of :data:`CONTRACT_STATUSES`."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be 1-{MAX_LIMIT}")
    if offset < 0:
        raise InvalidInput("offset must not be negative")
    now = ctx.clock.now()
    query = select(ContractRow)
    if pcid is not None:
        query = query.where(ContractRow.pcid == parse_pcid(pcid))
    if status is not None:
        query = query.where(status_clause(status, now))
    query = query.order_by(ContractRow.id).limit(limit).offset(offset)  # type: ignore[arg-type]
    with ctx.database.read() as session:
        return [ContractView.from_row(row, now) for row in session.execute(query).scalars()]


def find_active_for_pcid(source: Context | Session | Connection, pcid: str, now: dt.datetime) -> ContractView | None:
    """The contract the vehicle ``pcid`` holds at ``now`` (CertificateInstallationReq), or None.

    ``source`` is a :class:`Context` (a read transaction of its own) or the caller's session or
    connection. Pending, expired and revoked contracts are not returned.
    """
    contracts = active_for_pcid(source, pcid, now)
    # Without concurrent contracts there is at most one; with them, the prioritised one.
    return contracts[0] if contracts else None


def active_for_pcid(source: Context | Session | Connection, pcid: str, now: dt.datetime) -> list[ContractView]:
    """Every contract the vehicle ``pcid`` holds at ``now``, by priority (lower first), then the oldest first."""
    parsed = parse_pcid(pcid)
    with _connection_of(source) as connection:
        rows = connection.execute(_ACTIVE_FOR_PCID, {"pcid": parsed, "now": now})
        return [ContractView.from_row(row, now) for row in rows]


# Built once, a Core statement on the table: it runs for every CertificateInstallationReq, and
# building the query and loading ORM objects cost several times what the query itself does.
_CONTRACT = ContractRow.__table__  # type: ignore[attr-defined]
_ACTIVE_FOR_PCID = (
    select(_CONTRACT)
    .where(
        _CONTRACT.c.pcid == bindparam("pcid"),
        status_clause("active", bindparam("now", type_=_CONTRACT.c.valid_from.type)),
    )
    .order_by(_CONTRACT.c.priority, _CONTRACT.c.valid_from, _CONTRACT.c.id)
)


@contextmanager
def _connection_of(source: Context | Session | Connection) -> Iterator[Connection]:
    if isinstance(source, Context):
        with source.database.read() as session:
            yield session.connection()
    elif isinstance(source, Session):
        yield repository.core_connection(source)
    elif isinstance(source, Connection):
        yield source  # joins the caller's transaction
    else:
        raise TypeError(f"expected a Context, Session or Connection, not {type(source).__name__}")


def find_for_emaid(source: Context | Session | Connection, emaid: str, now: dt.datetime) -> ContractView | None:
    """The contract of ``emaid`` whatever its status (CertificateUpdateReq), or None.

    Check :attr:`ContractView.is_active` before issuing: the view says why it is not.
    """
    normalised = normalise_emaid(emaid)
    with _session_of(source) as session:
        row = row_by_emaid(session, normalised)
        return ContractView.from_row(row, now) if row is not None else None


def _lock_pcid(session: Session, pcid: str) -> None:
    """Serialise additions for one PCID, so two concurrent adds cannot both pass the overlap check.

    SQLite's write transaction (BEGIN IMMEDIATE) already serialises every writer; PostgreSQL
    gets a transaction-scoped advisory lock, because there is no row to lock before the first
    contract of a PCID exists.
    """
    if session.connection().dialect.name == "postgresql":
        digest = hashlib.sha256(b"evpki:contract-pcid:" + pcid.encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _overlapping(
    session: Session, pcid: str, start: dt.datetime, end: dt.datetime | None, now: dt.datetime
) -> ContractRow | None:
    rows = session.execute(select(ContractRow).where(ContractRow.pcid == pcid, ContractRow.status == "active"))
    for row in rows.scalars():
        other_start = utc(row.valid_from)
        other_end = utc(row.valid_until) if row.valid_until else None
        if other_end is not None and other_end <= now:
            continue  # expired
        if (end is None or other_start < end) and (other_end is None or start < other_end):
            return row
    return None


def add_contract(
    ctx: Context,
    *,
    emaid: str,
    pcid: str,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    validity: dt.timedelta | None = None,
    note: str | None = None,
    priority: int = 0,
    concurrent: bool = False,
    actor: str = "system",
) -> ContractView:
    """Record that vehicle ``pcid`` holds contract ``emaid`` from ``valid_from`` (default now).

    The end is ``valid_until`` or ``valid_from + validity`` (not both), or open. :class:`Conflict`
    when the eMAID exists or, unless ``concurrent``, the PCID holds another contract during the new
    one's period. ``priority`` (0 … :data:`MAX_PRIORITY`, lower first) orders the PCID's contracts.
    """
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= MAX_PRIORITY:
        raise InvalidInput(f"priority must be an integer 0-{MAX_PRIORITY}")
    normalised = normalise_emaid(emaid)
    parsed_pcid = parse_pcid(pcid)
    clean_note = checked_note(note, "note")
    now = ctx.clock.now()
    start = checked_instant(valid_from, "valid_from") if valid_from is not None else now.replace(microsecond=0)
    if valid_until is not None and validity is not None:
        raise InvalidInput("give valid_until or validity, not both")
    end = checked_instant(valid_until, "valid_until") if valid_until is not None else None
    if validity is not None:
        if validity <= dt.timedelta(0):
            raise InvalidInput("validity must be positive")
        end = start + validity
    if end is not None and end <= start:
        raise InvalidInput(f"valid_until ({end.isoformat()}) must be after valid_from ({start.isoformat()})")
    if end is not None and end <= now:
        raise InvalidInput(f"valid_until ({end.isoformat()}) is in the past; the contract would never be usable")
    try:
        with ctx.database.write() as session:
            _lock_pcid(session, parsed_pcid)
            existing = row_by_emaid(session, normalised)
            if existing is not None:
                raise Conflict(f"eMAID {normalised} is already registered (PCID {existing.pcid}, {existing.status})")
            # Only the future matters: a back-dated contract may overlap contracts that have ended.
            other = None if concurrent else _overlapping(session, parsed_pcid, max(start, now), end, now)
            if other is not None:
                other_period = _period(utc(other.valid_from), utc(other.valid_until) if other.valid_until else None)
                raise Conflict(
                    f"PCID {parsed_pcid} already holds contract {other.emaid} ({derived_status(other, now)}, "
                    f"{other_period}); a vehicle holds one contract at a time unless the new one is added as "
                    f"concurrent (ISO 15118-20): revoke {other.emaid} first, start the new contract when it ends, "
                    "or add it as concurrent"
                )
            row = ContractRow(
                emaid=normalised,
                pcid=parsed_pcid,
                status="active",
                valid_from=start,
                valid_until=end,
                note=clean_note,
                created_at=now,
                updated_at=now,
                priority=priority,
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                at=now,
                actor=actor,
                action="contract-add",
                details={
                    "emaid": normalised,
                    "pcid": parsed_pcid,
                    "validFrom": start.isoformat(),
                    "validUntil": optional_isoformat(end),
                    "priority": priority,
                    "concurrent": concurrent,
                },
            )
            return ContractView.from_row(row, now)
    except SqlIntegrityError:
        # The unique eMAID constraint caught a concurrent add of the same eMAID.
        raise Conflict(f"eMAID {normalised} is already registered") from None


def put_contract(
    session: Session,
    *,
    emaid: str,
    pcid: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    at: dt.datetime,
    actor: str,
) -> bool:
    """Inside the caller's transaction: record contract ``emaid`` of ``pcid`` for ``[valid_from, valid_until)``.

    A new eMAID is added as a concurrent contract (the PCID's others stay; OPCP keeps several per
    vehicle), audited ``contract-add``; an unrevoked contract of the same PCID takes the new period
    (``contract-period``). :class:`Conflict` when the eMAID belongs to another PCID or was revoked
    (an eMAID is never reused). True when the contract is new.
    """
    normalised = normalise_emaid(emaid)
    parsed_pcid = parse_pcid(pcid)
    start, end = checked_instant(valid_from, "valid_from"), checked_instant(valid_until, "valid_until")
    if end <= start:
        raise InvalidInput(f"valid_until ({end.isoformat()}) must be after valid_from ({start.isoformat()})")
    _lock_pcid(session, parsed_pcid)
    row = row_by_emaid(session, normalised, lock=True)
    period = {"validFrom": start.isoformat(), "validUntil": end.isoformat()}
    if row is None:
        row = ContractRow(
            emaid=normalised,
            pcid=parsed_pcid,
            status="active",
            valid_from=start,
            valid_until=end,
            created_at=at,
            updated_at=at,
            priority=0,
        )
        session.add(row)
        session.flush()
        details = {"emaid": normalised, "pcid": parsed_pcid, **period, "priority": 0, "concurrent": True}
        audit.append(session, at=at, actor=actor, action="contract-add", details=details)
        return True
    if row.pcid != parsed_pcid:
        raise Conflict(f"eMAID {normalised} is already used by other PCID")
    if row.status == "revoked":
        raise Conflict(f"contract {normalised} was revoked; an eMAID is not used again")
    previous = {
        "validFrom": utc(row.valid_from).isoformat(),
        "validUntil": optional_isoformat(utc(row.valid_until) if row.valid_until else None),
    }
    row.valid_from, row.valid_until, row.updated_at = start, end, at
    session.flush()
    details = {"emaid": normalised, "pcid": parsed_pcid, **period, "previous": previous}
    audit.append(session, at=at, actor=actor, action="contract-period", details=details)
    return False


def record_contract_certificate(
    session: Session | Connection,
    contract: ContractView | str,
    issuer_id: str,
    serial: str,
    *,
    at: dt.datetime | None = None,
    actor: str = "system",
    allow_pending: bool = False,
) -> ContractView:
    """Make certificate (``issuer_id``, ``serial``) the contract's current one, with an audit record.

    Call it inside the transaction that issues the certificate: if the contract was revoked (or
    is not active) meanwhile, the :class:`Conflict` it raises rolls the issuance back too.
    ``contract`` is a view or an eMAID; ``at`` defaults to the certificate's issuance time. The
    certificate must be a ``contract`` certificate issued for this eMAID (:class:`InvalidInput`).
    ``allow_pending`` lets a contract that has not begun take its certificate ahead (one that is
    valid from the contract's start).
    """
    if isinstance(session, Context):
        raise TypeError("record_contract_certificate joins the caller's issuance transaction: pass its session")
    emaid = contract.emaid if isinstance(contract, ContractView) else normalise_emaid(contract)
    serial_hex = _serial_hex(serial)
    # Core statements built once: this runs inside every provisioning's write transaction.
    with _connection_of(session) as connection:
        row = connection.execute(_CONTRACT_FOR_UPDATE, {"emaid": emaid}).first()
        if row is None:
            raise NotFound(f"no contract with eMAID {emaid}")
        certificate = connection.execute(_CERTIFICATE_FACTS, {"issuer_id": issuer_id, "serial": serial_hex}).first()
        if certificate is None:
            raise NotFound(f"no certificate with serial {serial_hex} issued by {issuer_id}")
        if certificate.profile != _CONTRACT_PROFILE:
            raise InvalidInput(f"certificate {issuer_id}/{serial_hex} is a {certificate.profile} certificate")
        if certificate.identity != emaid:
            raise InvalidInput(f"certificate {issuer_id}/{serial_hex} is for {certificate.identity}, not {emaid}")
        when = checked_instant(at, "at") if at is not None else utc(certificate.created_at)
        status = derived_status(row, when)
        if status != "active" and not (allow_pending and status == "pending"):
            raise Conflict(f"contract {emaid} is {status}; it cannot take a new contract certificate")
        previous = None
        if row.current_certificate_issuer and row.current_certificate_serial:
            previous = f"{row.current_certificate_issuer}/{row.current_certificate_serial}"
        connection.execute(
            _SET_CURRENT_CERTIFICATE, {"row_id": row.id, "issuer": issuer_id, "serial": serial_hex, "at": when}
        )
        audit.append_on(
            connection,
            at=when,
            actor=actor,
            action="contract-certificate",
            ca_id=issuer_id,
            serial=serial_hex,
            details={"emaid": emaid, "previous": previous},
        )
    if isinstance(session, Session):
        session.expire_all()  # its loaded contract rows predate the update
    current = CertificateRef(issuer_id, serial_hex)
    return replace(ContractView.from_row(row, when), current_certificate=current, updated_at=utc(when))


_CONTRACT_FOR_UPDATE = (
    select(_CONTRACT).where(_CONTRACT.c.emaid == bindparam("emaid")).with_for_update()
)  # PostgreSQL locks the row; SQLite's write transaction already serialises
_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
_CERTIFICATE_FACTS = select(_CERTIFICATE.c.profile, _CERTIFICATE.c.identity, _CERTIFICATE.c.created_at).where(
    _CERTIFICATE.c.issuer_id == bindparam("issuer_id"), _CERTIFICATE.c.serial == bindparam("serial")
)
_SET_CURRENT_CERTIFICATE = (
    update(_CONTRACT)
    .where(_CONTRACT.c.id == bindparam("row_id"))
    .values(
        current_certificate_issuer=bindparam("issuer"),
        current_certificate_serial=bindparam("serial"),
        updated_at=bindparam("at"),
    )
)


def _serial_hex(serial: str) -> str:
    """Canonical stored form: upper-case hex without leading zeros (see ``pki.store.models``)."""
    text_value = serial.strip().replace(":", "")
    try:
        value = int(text_value, 16)
    except ValueError:
        raise InvalidInput(f"{serial!r} is not a hex serial") from None
    if value <= 0 or len(text_value) > 40:
        raise InvalidInput(f"{serial!r} is not a certificate serial (positive, at most 20 octets)")
    return format(value, "X")
