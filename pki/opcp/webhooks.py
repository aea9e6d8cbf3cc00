"""OPCP webhooks (``webhooks.v1.json``, ``webhook.payload.v1.json``, ``06_webhook-service.md``).

**Subscriptions** belong to one OPCP client: a URL, the events it wants, a status (``enabled`` or
``disabled``) and a secret generated here, which keys the HMAC of every delivery to it.

**Events come from the audit log.** Every change evpki makes is one transaction that appends an
audit record, whichever edge made it (REST, CLI, a trust sync, the OPCP routes). :func:`pump`
reads the records after a stored cursor and turns the relevant ones into events, and each event
into one delivery row per matching subscription -- cursor, events and deliveries in one
transaction. So nothing that happened is missed, nothing is fanned out twice, and a restart
loses nothing: the rows are the queue. The events:

- ``root.cert.added`` (a root trusted for V2G, MO or OEM use), ``root.cert.revoked`` (retired from
  the pool: ``deleteRootCa``, ``evpki trust remove``, a sync the pool no longer lists it in),
  ``root.cert.expired`` (its notAfter passed, found by the pump, or a sync retiring it as expired);
  to every subscriber of the event.
- ``mo.prov.cert.updated`` (an OEM replaced a vehicle's provisioning certificate with a new key)
  and ``mo.prov.cert.deleted``, one per contract the registry holds for the PCID, to the MOs whose
  provider prefix covers the eMAID. OPCP announces no first publication (MOs must not learn how
  many vehicles an OEM has).
- ``oem.contract.created`` / ``oem.contract.deleted`` (a contract added to or revoked in the
  registry) to the OEMs whose WMIs cover the PCID.

**Deliveries** are made by the edge (``evpki serve`` runs the loop; HTTP never happens in
``pki``): :func:`claim_due` leases due deliveries, :func:`record_attempt` records each outcome.
A 2xx delivers; 400 and 409 stop (OPCP: the receiver refused the event); anything else, a timeout
or no answer is retried with exponential backoff (30 s doubling, at most 1 h apart) up to
:data:`MAX_ATTEMPTS` times, then given up (``failed``). Each POST carries:

- ``payload-signature``: hex HMAC-SHA256 of the body with the subscription's secret, and
  ``X-Hubject-Signature: sha256=<same>`` -- what OPCP receivers check;
- ``X-Evpki-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` -- the time of *this*
  attempt under the MAC, so a receiver can refuse a replay outside a window (the body's own
  ``timestamp`` is when the event happened, the same on every retry).

A subscriber reads its delivery log (:meth:`Webhooks.deliveries`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pki.ca.root_uses import RootUse
from pki.core.clock import utc
from pki.core.errors import InvalidInput, NotFound
from pki.opcp.access import OpcpRole, Operation, Principal, authorize
from pki.opcp.certinfo import ISO2_NAMESPACE, common_name, fingerprints, signature_algorithm
from pki.opcp.rcp import root_certificate_id
from pki.operations import audit
from pki.runtime.context import Context
from pki.store.models import (
    AuditHead,
    ContractRow,
    OpcpClientRow,
    OpcpDeliveryRow,
    OpcpEventRow,
    OpcpFeedCursorRow,
    OpcpWebhookRow,
    TrustedRootRow,
)

__all__ = [
    "EVENT_TYPES",
    "MAX_ATTEMPTS",
    "DeliveryJob",
    "DeliveryView",
    "SubscriptionIn",
    "SubscriptionView",
    "Webhooks",
    "claim_due",
    "delete_subscriptions_of",
    "pump",
    "record_attempt",
    "record_attempts",
    "signature_headers",
]

# The published Event enum, with root.cert.revoked and mo.prov.cert.factory.reset that the event
# table of 06_webhook-service.md and the payload schema name but the enum forgot.
EVENT_TYPES = (
    "root.cert.added",
    "root.cert.expired",
    "root.cert.revoked",
    "mo.prov.cert.updated",
    "mo.prov.cert.deleted",
    "mo.prov.cert.factory.reset",
    "mo.prov.cert.updated.factory.reset",
    "mo.contract.delivered.to.oem",
    "mo.contract.created.sent.to.oem",
    "mo.contract.updated.sent.to.oem",
    "mo.contract.deleted.sent.to.oem",
    "mo.contract.rejected.by.oem",
    "mo.contract.queued.to.oem",
    "oem.contract.created",
    "oem.contract.updated",
    "oem.contract.deleted",
)
MAX_ATTEMPTS = 10
MAX_SUBSCRIPTIONS = 20
_FIRST_RETRY = dt.timedelta(seconds=30)
_LONGEST_RETRY = dt.timedelta(hours=1)
_LEASE = dt.timedelta(seconds=60)  # a claimed delivery is retried after this if its worker died
_BATCH = 500
_ROOT_TYPES = {RootUse.V2G.value: "V2G", RootUse.MO.value: "MO", RootUse.OEM.value: "OEM"}
_MO_ROLES = (OpcpRole.MO_OWN_PKI.value, OpcpRole.MO_V2G_PKI.value)
_MAX_URL = 2048
_MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class SubscriptionIn:
    url: str
    enabled_events: tuple[str, ...] | None = None  # None on update: keep them
    description: str | None = None
    metadata: dict[str, Any] | None = None
    status: str | None = None
    api_version: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    id: str
    url: str
    enabled_events: tuple[str, ...]
    description: str | None
    metadata: dict[str, Any]
    status: str
    api_version: str
    secret: str
    created_at: dt.datetime
    owner: Principal

    def as_opcp(self) -> dict[str, Any]:
        """``EndpointResponse``."""
        body: dict[str, Any] = {
            "id": self.id,
            "apiVersion": self.api_version,
            "created": int(self.created_at.timestamp()),
            "enabledEvents": list(self.enabled_events),
            "metadata": self.metadata,
            "status": self.status,
            "url": self.url,
            "secret": self.secret,
            "userRole": self.owner.role.value,
            "userName": self.owner.name,
        }
        if self.description is not None:
            body["description"] = self.description
        if self.owner.role is OpcpRole.OEM:
            body["wmis"] = sorted(self.owner.wmis)
        if self.owner.role.value in _MO_ROLES:
            body["providerIds"] = sorted(self.owner.providers)
        return body


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        def when(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "nextAttemptAt": when(self.next_attempt_at),
            "lastAttemptAt": when(self.last_attempt_at),
            "lastStatus": self.last_status,
            "lastError": self.last_error,
            "deliveredAt": when(self.delivered_at),
        }


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """One POST to make: where, the exact body, and the key of its signatures."""

    id: int
    url: str
    body: bytes
    secret: str


# -- subscriptions -------------------------------------------------------------------------------


def _check_url(url: object) -> str:
    if not isinstance(url, str) or not url or len(url) > _MAX_URL:
        raise InvalidInput(f"url: an absolute http(s) URL of at most {_MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url: an absolute http(s) URL")
    if parts.username or parts.password:
        raise InvalidInput("url: credentials do not belong in the URL")
    return url


def _check_events(events: Iterable[object]) -> tuple[str, ...]:
    parsed = tuple(dict.fromkeys(events))
    if not parsed:
        raise InvalidInput("enabledEvents: at least one event")
    unknown = [str(e)[:60] for e in parsed if e not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(f"enabledEvents: unknown event {unknown[0]!r}")
    return parsed  # type: ignore[return-value]


def _check_status(status: object) -> str:
    if status not in ("enabled", "disabled"):
        raise InvalidInput("status: enabled or disabled")
    return str(status)


def _check_text(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise InvalidInput(f"{what}: at most {_MAX_TEXT} characters")
    return value


def _check_metadata(metadata: object) -> str:
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata: an object")
    text = json.dumps(metadata, sort_keys=True)
    if len(text) > 4 * _MAX_TEXT:
        raise InvalidInput(f"metadata: at most {4 * _MAX_TEXT} characters of JSON")
    return text


def _view(row: OpcpWebhookRow, owner: Principal) -> SubscriptionView:
    return SubscriptionView(
        row.public_id,
        row.url,
        tuple(json.loads(row.events)),
        row.description,
        json.loads(row.metadata_json),
        row.status,
        row.api_version,
        row.secret,
        utc(row.created_at),
        owner,
    )


def delete_subscriptions_of(session: Session, client_id: str) -> None:
    """In the caller's transaction: a removed client's subscriptions and their deliveries."""
    ids = select(OpcpWebhookRow.id).where(OpcpWebhookRow.client_id == client_id)
    session.execute(delete(OpcpDeliveryRow).where(OpcpDeliveryRow.webhook_id.in_(ids)))  # type: ignore[attr-defined]
    session.execute(delete(OpcpWebhookRow).where(OpcpWebhookRow.client_id == client_id))


def _ensure_cursor(session: Session) -> None:
    """The feed starts at the audit head when the first subscription is made: no history is replayed."""
    if session.get(OpcpFeedCursorRow, 1) is None:
        head = session.get(AuditHead, 1)
        session.add(OpcpFeedCursorRow(id=1, audit_seq=head.seq if head is not None else 0))
        session.flush()


class Webhooks:
    """``pki.opcp.webhooks``: a client's subscriptions and their delivery logs."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _own(self, session: Session, principal: Principal, public_id: str) -> OpcpWebhookRow:
        row = session.execute(
            select(OpcpWebhookRow).where(
                OpcpWebhookRow.public_id == public_id, OpcpWebhookRow.client_id == principal.client_id
            )
        ).scalar_one_or_none()
        if row is None:  # another client's is as absent as one that never was
            raise NotFound("no webhook endpoint with this id")
        return row

    def create(self, principal: Principal, data: SubscriptionIn) -> SubscriptionView:
        authorize(principal, Operation.ADD_WEBHOOK)
        url = _check_url(data.url)
        events = _check_events(data.enabled_events or ())
        status = _check_status(data.status or "enabled")
        description = _check_text(data.description, "description")
        api_version = _check_text(data.api_version or "v1", "apiVersion") or "v1"
        if api_version != "v1":
            raise InvalidInput("apiVersion: only v1")
        metadata = _check_metadata(data.metadata)
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            count = len(
                session.execute(select(OpcpWebhookRow.id).where(OpcpWebhookRow.client_id == principal.client_id)).all()
            )
            if count >= MAX_SUBSCRIPTIONS:
                raise InvalidInput(f"at most {MAX_SUBSCRIPTIONS} webhook endpoints per client")
            row = OpcpWebhookRow(
                public_id=str(uuid.uuid4()),
                client_id=principal.client_id,
                url=url,
                description=description,
                events=json.dumps(list(events)),
                metadata_json=metadata,
                status=status,
                api_version=api_version,
                secret="whsec_" + secrets.token_urlsafe(32),
                created_at=now,
            )
            session.add(row)
            _ensure_cursor(session)
            audit.append(
                session,
                at=now,
                actor=principal.actor,
                action="opcp-webhook-add",
                details={"id": row.public_id, "url": url, "events": list(events)},
            )
            return _view(row, principal)

    def list(self, principal: Principal) -> list[SubscriptionView]:
        authorize(principal, Operation.GET_WEBHOOKS)
        with self._ctx.database.read() as session:
            rows = session.execute(
                select(OpcpWebhookRow)
                .where(OpcpWebhookRow.client_id == principal.client_id)
                .order_by(OpcpWebhookRow.id)  # type: ignore[arg-type]
            ).scalars()
            return [_view(row, principal) for row in rows]

    def get(self, principal: Principal, public_id: str) -> SubscriptionView:
        authorize(principal, Operation.GET_WEBHOOK)
        with self._ctx.database.read() as session:
            return _view(self._own(session, principal, public_id), principal)

    def update(self, principal: Principal, public_id: str, data: SubscriptionIn) -> SubscriptionView:
        authorize(principal, Operation.UPDATE_WEBHOOK)
        url = _check_url(data.url)
        events = _check_events(data.enabled_events) if data.enabled_events is not None else None
        status = _check_status(data.status) if data.status is not None else None
        description = _check_text(data.description, "description")
        if data.api_version not in (None, "v1"):
            raise InvalidInput("apiVersion: only v1")
        metadata = _check_metadata(data.metadata) if data.metadata is not None else None
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            row = self._own(session, principal, public_id)
            row.url = url
            if events is not None:
                row.events = json.dumps(list(events))
            if status is not None:
                row.status = status
            if description is not None:
                row.description = description
            if metadata is not None:
                row.metadata_json = metadata
            session.add(row)
            audit.append(
                session,
                at=now,
                actor=principal.actor,
                action="opcp-webhook-update",
                details={"id": public_id, "url": url, "events": json.loads(row.events), "status": row.status},
            )
            return _view(row, principal)

    def delete(self, principal: Principal, public_id: str) -> None:
        authorize(principal, Operation.DELETE_WEBHOOK)
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            row = self._own(session, principal, public_id)
            session.execute(delete(OpcpDeliveryRow).where(OpcpDeliveryRow.webhook_id == row.id))  # type: ignore[arg-type]
            session.delete(row)
            audit.append(
                session, at=now, actor=principal.actor, action="opcp-webhook-delete", details={"id": public_id}
            )

    def deliveries(self, principal: Principal, public_id: str, *, limit: int = 100) -> list[DeliveryView]:
        """The subscription's delivery log, newest first."""
        authorize(principal, Operation.GET_WEBHOOK)
        with self._ctx.database.read() as session:
            row = self._own(session, principal, public_id)
            found = session.execute(
                select(OpcpDeliveryRow, OpcpEventRow.event_id, OpcpEventRow.event_type)
                .join(OpcpEventRow, OpcpEventRow.id == OpcpDeliveryRow.event_id)  # type: ignore[arg-type]
                .where(OpcpDeliveryRow.webhook_id == row.id)
                .order_by(OpcpDeliveryRow.id.desc())  # type: ignore[union-attr]
                .limit(max(1, min(limit, 1000)))
            ).all()
            return [
                DeliveryView(
                    int(d.id or 0),
                    event_id,
                    event_type,
                    d.status,
                    d.attempts,
                    utc(d.next_attempt_at) if d.status == "pending" else None,
                    utc(d.last_attempt_at) if d.last_attempt_at else None,
                    d.last_status,
                    d.last_error,
                    utc(d.delivered_at) if d.delivered_at else None,
                )
                for d, event_id, event_type in found
            ]


# -- the feed ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    event_type: str
    dedupe_key: str
    payload: dict[str, Any]
    at: dt.datetime
    pcid: str | None = None
    emaid: str | None = None


def _dn(name: x509.Name) -> str:
    """CN, DC, O, OU, C in that order, ", " between (the payload schema's shape)."""
    order = [
        (x509.NameOID.COMMON_NAME, "CN"),
        (x509.NameOID.DOMAIN_COMPONENT, "DC"),
        (x509.NameOID.ORGANIZATION_NAME, "O"),
        (x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
        (x509.NameOID.COUNTRY_NAME, "C"),
    ]
    return ", ".join(f"{short}={a.value}" for oid, short in order for a in name.get_attributes_for_oid(oid))


def _root_payload(row: TrustedRootRow) -> dict[str, Any] | None:
    root_type = _ROOT_TYPES.get(row.use)
    if root_type is None:
        return None
    certificate = x509.load_der_x509_certificate(row.der)
    payload: dict[str, Any] = {
        "rootCertificateId": root_certificate_id(RootUse(row.use), row.sha256),
        "distinguishedName": _dn(certificate.subject),
        "commonName": common_name(certificate) or "",
        "rootType": root_type,
        "rootSerialNumber": f"{certificate.serial_number:x}",
        "fingerprintSHA256": fingerprints(certificate)[0],
    }
    algorithm = signature_algorithm(certificate)
    if algorithm in ("secp256r1", "secp521r1"):
        payload["signatureAlgorithm"] = algorithm
    return payload


def _trusted(session: Session, details: dict[str, Any]) -> TrustedRootRow | None:
    return session.execute(
        select(TrustedRootRow)
        .where(TrustedRootRow.sha256 == details.get("sha256"), TrustedRootRow.use == details.get("use"))
        .order_by(TrustedRootRow.id.desc())  # type: ignore[union-attr]
        .limit(1)
    ).scalar_one_or_none()


def _contracts_of(session: Session, pcid: str) -> list[str]:
    return list(session.execute(select(ContractRow.emaid).where(ContractRow.pcid == pcid)).scalars())


def _events_of(session: Session, record: audit.AuditEntry) -> list[_Event]:
    details = json.loads(record.details)
    key = f"audit:{record.seq}"
    if record.action in ("trust-add", "trust-remove"):
        row = _trusted(session, details)
        payload = _root_payload(row) if row is not None else None
        if payload is None:
            return []
        if record.action == "trust-add":
            return [_Event("root.cert.added", f"{key}:added", payload, record.at)]
        if "expired" in str(details.get("reason") or "").lower():
            return [_Event("root.cert.expired", f"expired:{payload['rootCertificateId']}", payload, record.at)]
        return [_Event("root.cert.revoked", f"{key}:revoked", payload, record.at)]
    if record.action in ("contract-add", "contract-revoke", "opcp-ccp-delete") or (
        record.action == "opcp-ccp-put" and details.get("created")
    ):
        kind = "oem.contract.created" if record.action in ("contract-add", "opcp-ccp-put") else "oem.contract.deleted"
        pcid, emaid = str(details["pcid"]), str(details["emaid"])
        return [_Event(kind, f"{key}:{kind}", {"emaid": emaid, "pcid": pcid}, record.at, pcid=pcid, emaid=emaid)]
    if record.action == "opcp-pcp-delete" or (record.action == "opcp-pcp-put" and details.get("keyChanged")):
        kind = "mo.prov.cert.deleted" if record.action == "opcp-pcp-delete" else "mo.prov.cert.updated"
        pcid = str(details["pcid"])
        return [
            _Event(kind, f"{key}:{emaid}", {"emaid": emaid, "pcid": pcid}, record.at, pcid=pcid, emaid=emaid)
            for emaid in _contracts_of(session, pcid)
        ]
    return []


def _expired_roots(session: Session, now: dt.datetime) -> list[_Event]:
    rows = session.execute(
        select(TrustedRootRow).where(
            TrustedRootRow.removed_at.is_(None),  # type: ignore[union-attr]
            TrustedRootRow.not_after <= now,  # type: ignore[arg-type]
            TrustedRootRow.use.in_(tuple(_ROOT_TYPES)),  # type: ignore[attr-defined]
        )
    ).scalars()
    events = []
    for row in rows:
        payload = _root_payload(row)
        if payload is not None:
            events.append(
                _Event("root.cert.expired", f"expired:{payload['rootCertificateId']}", payload, utc(row.not_after))
            )
    return events


def _receives(event: _Event, role: str, wmis: str, providers: str) -> bool:
    if event.event_type.startswith("root."):
        return True
    if event.event_type.startswith("oem."):
        return role == OpcpRole.OEM.value and event.pcid is not None and event.pcid[:3].upper() in wmis.split(",")
    if event.event_type.startswith("mo."):
        return role in _MO_ROLES and event.emaid is not None and event.emaid[:5] in providers.split(",")
    return False


def _body(event: _Event, event_id: str) -> str:
    return json.dumps(
        {
            "timestamp": event.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventId": event_id,
            "eventType": event.event_type,
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
            "payload": event.payload,
        },
        separators=(",", ":"),
    )


def pump(ctx: Context) -> int:
    """Turn new audit records (and roots that expired) into events and deliveries; how many events.

    One transaction: the cursor row is locked, so concurrent pumps (several workers) take turns.
    """
    now = ctx.clock.now()
    with ctx.database.write() as session:
        cursor = session.execute(select(OpcpFeedCursorRow).where(OpcpFeedCursorRow.id == 1).with_for_update()).scalar()
        if cursor is None:
            return 0  # no subscription was ever made
        records = audit.read_records(session, after=cursor.audit_seq, limit=_BATCH)
        events = [event for record in records for event in _events_of(session, record)]
        events += _expired_roots(session, now)
        if records:
            cursor.audit_seq = records[-1].seq
            session.add(cursor)
        if not events:
            return 0
        subscriptions = session.execute(
            select(OpcpWebhookRow, OpcpClientRow.role, OpcpClientRow.wmis, OpcpClientRow.providers)
            .join(OpcpClientRow, OpcpClientRow.client_id == OpcpWebhookRow.client_id)  # type: ignore[arg-type]
            .where(OpcpWebhookRow.status == "enabled")
        ).all()
        known = set(
            session.execute(
                select(OpcpEventRow.dedupe_key).where(
                    OpcpEventRow.dedupe_key.in_([e.dedupe_key for e in events])  # type: ignore[attr-defined]
                )
            ).scalars()
        )
        created = 0
        for event in events:
            if event.dedupe_key in known:
                continue
            known.add(event.dedupe_key)
            event_id = str(uuid.uuid4())
            row = OpcpEventRow(
                event_id=event_id,
                event_type=event.event_type,
                dedupe_key=event.dedupe_key,
                body=_body(event, event_id),
                created_at=now,
            )
            session.add(row)
            session.flush()
            created += 1
            for subscription, role, wmis, providers in subscriptions:
                if event.event_type in json.loads(subscription.events) and _receives(event, role, wmis, providers):
                    session.add(
                        OpcpDeliveryRow(
                            webhook_id=subscription.id,
                            event_id=row.id,
                            status="pending",
                            attempts=0,
                            next_attempt_at=now,
                        )
                    )
        return created


def claim_due(ctx: Context, *, limit: int = 200) -> list[DeliveryJob]:
    """Lease up to ``limit`` due deliveries (their next attempt moves a lease ahead) and return them."""
    now = ctx.clock.now()
    with ctx.database.write() as session:
        rows = session.execute(
            select(OpcpDeliveryRow, OpcpWebhookRow.url, OpcpWebhookRow.secret, OpcpEventRow.body)
            .join(OpcpWebhookRow, OpcpWebhookRow.id == OpcpDeliveryRow.webhook_id)  # type: ignore[arg-type]
            .join(OpcpEventRow, OpcpEventRow.id == OpcpDeliveryRow.event_id)  # type: ignore[arg-type]
            .where(OpcpDeliveryRow.status == "pending", OpcpDeliveryRow.next_attempt_at <= now)  # type: ignore[arg-type]
            .order_by(OpcpDeliveryRow.next_attempt_at, OpcpDeliveryRow.id)  # type: ignore[arg-type]
            .limit(limit)
            .with_for_update(skip_locked=True, of=OpcpDeliveryRow)  # type: ignore[arg-type]
        ).all()
        jobs = []
        for delivery, url, secret, body in rows:
            delivery.next_attempt_at = now + _LEASE
            session.add(delivery)
            jobs.append(DeliveryJob(int(delivery.id or 0), url, body.encode(), secret))
        return jobs


def _backoff(attempts: int) -> dt.timedelta:
    return min(_FIRST_RETRY * (2 ** max(0, attempts - 1)), _LONGEST_RETRY)


def record_attempt(ctx: Context, delivery_id: int, *, status: int | None, error: str | None = None) -> str:
    """Record one POST's outcome (HTTP status, or None with ``error``); the delivery's new status."""
    return record_attempts(ctx, [(delivery_id, status, error)])[0]


def record_attempts(ctx: Context, outcomes: list[tuple[int, int | None, str | None]]) -> list[str]:
    """Record the outcomes of a round of POSTs, ``(delivery id, HTTP status or None, error)``, in one transaction."""
    now = ctx.clock.now()
    results = []
    with ctx.database.write() as session:
        for delivery_id, status, error in outcomes:
            row = session.get(OpcpDeliveryRow, delivery_id, with_for_update=True)
            if row is None or row.status != "pending":
                results.append(row.status if row is not None else "gone")  # delivered meanwhile, or unsubscribed
                continue
            row.attempts += 1
            row.last_attempt_at = now
            row.last_status = status
            row.last_error = (error or "")[:300] or None
            if status is not None and 200 <= status < 300:
                row.status, row.delivered_at = "delivered", now
            elif status in (400, 409) or row.attempts >= MAX_ATTEMPTS:
                row.status = "failed"
            else:
                row.next_attempt_at = now + _backoff(row.attempts)
            session.add(row)
            results.append(row.status)
    return results


def signature_headers(secret: str, body: bytes, at: int) -> dict[str, str]:
    """The headers that sign one delivery attempt (see the module docstring)."""
    key = secret.encode()
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    stamped = hmac.new(key, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "payload-signature": digest,
        "X-Hubject-Signature": f"sha256={digest}",
        "X-Evpki-Signature": f"t={at},v1={stamped}",
    }
