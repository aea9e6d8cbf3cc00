"""``evpki init``: build the hierarchy a :class:`~pki.ca.hierarchy.HierarchySpec` describes.

Idempotent and additive: a CA or managed leaf that exists is kept as it is; a key file left
by an interrupted run is reused rather than replaced. Each CA is created in its own
transaction together with its certificate row and audit record.

A CA whose parent is external (``external_parent = true``) gets its key and a stored request
instead of a certificate; it and everything below it wait until ``evpki ca install`` brings the
certificate, after which the same (stored) hierarchy is built again to create what waited.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from pki.ca.authority import build_certificate, fingerprint, new_serial, serial_hex, validity_window
from pki.ca.ca_requests import build_ca_request, record_ca_request
from pki.ca.hierarchy import CaSpec, HierarchySpec, LeafSpec, parse_hierarchy
from pki.ca.profiles import ProfileName, get_profile
from pki.core.errors import Conflict
from pki.keys.base import Signer
from pki.operations import audit
from pki.runtime.context import ORGANIZATION_SETTING, Context, IssuerContext
from pki.runtime.views import InitReport
from pki.store import repository
from pki.store.models import CaRequestRow, CertificateAuthorityRow, CertificateRow

__all__ = [
    "HIERARCHY_SETTING",
    "create_ca_request",
    "init_hierarchy",
    "record_managed_leaf",
    "stored_hierarchy",
    "stored_organization",
]

HIERARCHY_SETTING = "hierarchy_source"


def stored_organization(ctx: Context) -> str | None:
    with ctx.database.read() as session:
        return repository.get_setting(session, ORGANIZATION_SETTING)


def stored_hierarchy(ctx: Context) -> HierarchySpec | None:
    """The hierarchy of the last ``init`` (what installing a CA under an external parent completes)."""
    with ctx.database.read() as session:
        source = repository.get_setting(session, HIERARCHY_SETTING)
        organization = repository.get_setting(session, ORGANIZATION_SETTING)
    return parse_hierarchy(source, organization) if source is not None else None


def init_hierarchy(ctx: Context, spec: HierarchySpec, actor: str) -> InitReport:
    with ctx.database.write() as session:
        stored = repository.get_setting(session, ORGANIZATION_SETTING)
        if stored is not None and stored != spec.organization:
            raise Conflict(f"this PKI belongs to {stored!r}; the organisation of an initialised PKI is not changed")
        if stored is None:
            repository.set_setting(session, ORGANIZATION_SETTING, spec.organization)
        if spec.source:
            repository.set_setting(session, HIERARCHY_SETTING, spec.source)
    created: list[str] = []
    kept: list[str] = []
    awaiting: list[str] = []
    waiting: list[str] = []  # below a CA that awaits its certificate: nothing to sign them with yet
    for ca in spec.cas:
        if ca.parent in awaiting or ca.parent in waiting:
            waiting.append(ca.id)
        elif ca.external:
            state = _ensure_external_ca(ctx, ca, actor)
            {"installed": kept, "requested": awaiting, "awaiting": awaiting}[state].append(ca.id)
        else:
            (created if ensure_ca(ctx, ca, actor) else kept).append(ca.id)
    for leaf in spec.leaves:
        if leaf.issuer in awaiting or leaf.issuer in waiting:
            waiting.append(leaf.label)
        else:
            (created if _ensure_leaf(ctx, leaf, actor) else kept).append(leaf.label)
    return InitReport(spec.organization, tuple(created), tuple(kept), tuple(awaiting), tuple(waiting))


def _ensure_external_ca(ctx: Context, spec: CaSpec, actor: str) -> str:
    """A CA under an external parent: its key and its request, once. Returns its state."""
    with ctx.database.read() as session:
        if any(row.id == spec.id for row in repository.list_cas(session)):
            return "installed"
        if session.get(CaRequestRow, spec.id) is not None:
            return "awaiting"
    create_ca_request(ctx, spec, actor)
    return "requested"


def create_ca_request(ctx: Context, spec: CaSpec, actor: str, *, successor_of: str | None = None) -> None:
    """The key (a leftover of an interrupted run is reused) and the stored request of ``spec``."""
    key_id = f"ca-{spec.id}"
    signer = _key(ctx, key_id, spec.pki.algorithm)
    csr = build_ca_request(signer, spec)
    with ctx.database.write() as session:
        record_ca_request(
            session,
            spec,
            csr,
            key_id=key_id,
            key_backend=ctx.keys.backend,
            now=ctx.clock.now(),
            actor=actor,
            successor_of=successor_of,
        )


def _key(ctx: Context, key_id: str, algorithm: str) -> Signer:
    return ctx.keys.load(key_id) if ctx.keys.exists(key_id) else ctx.keys.generate(key_id, algorithm)


def ensure_ca(ctx: Context, spec: CaSpec, actor: str) -> bool:
    """Create the CA of ``spec`` unless a CA with its id exists; True when created."""
    with ctx.database.read() as session:
        if any(row.id == spec.id for row in repository.list_cas(session)):
            return False
        parent = ctx.issuer(session, spec.parent)[1] if spec.parent else None
    now = ctx.clock.now()
    profile = get_profile(ProfileName.ROOT if spec.is_root else ProfileName.SUB_CA)
    # The window is checked before a key exists: a refused validity must not leave a key file behind.
    not_before, not_after = validity_window(now, spec.validity, parent.certificate if parent else None)
    key_id = f"ca-{spec.id}"
    signer = _key(ctx, key_id, spec.pki.algorithm)
    issuer = parent or IssuerContext(
        ca_id=spec.id, signer=signer, certificate=None, rsa_pss=spec.pki.rsa_pss, standard=spec.pki.standard
    )
    serial = new_serial()
    certificate = build_certificate(
        issuer=issuer,
        subject=spec.subject,
        public_key=signer.public_key(),
        profile=profile,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        public_url=ctx.settings.public_base_url,
        path_length=spec.path_length,
    )
    der = certificate.public_bytes(Encoding.DER)
    sha256 = fingerprint(certificate)
    with ctx.database.write() as session:
        session.add(
            CertificateAuthorityRow(
                id=spec.id,
                pki=spec.pki.name,
                standard=spec.pki.standard,
                parent_id=spec.parent,
                key_id=key_id,
                key_backend=ctx.keys.backend,
                issues=",".join(p.value for p in spec.issues),
                rsa_pss=spec.pki.rsa_pss,
                serial=serial_hex(serial),
                sha256=sha256,
                subject=certificate.subject.rfc4514_string(),
                not_before=not_before,
                not_after=not_after,
                der=der,
                created_at=now,
            )
        )
        session.flush()
        repository.add_certificate(
            session,
            CertificateRow(
                issuer_id=spec.parent or spec.id,
                serial=serial_hex(serial),
                sha256=sha256,
                profile=profile.name.value,
                subject=certificate.subject.rfc4514_string(),
                identity=spec.id,
                not_before=not_before,
                not_after=not_after,
                der=der,
                key_id=key_id,
                created_at=now,
            ),
        )
        audit.append(
            session,
            at=now,
            actor=actor,
            action="ca-create",
            ca_id=spec.parent or spec.id,
            serial=serial_hex(serial),
            details={"ca": spec.id, "subject": certificate.subject.rfc4514_string(), "sha256": sha256},
        )
    return True


def _ensure_leaf(ctx: Context, spec: LeafSpec, actor: str) -> bool:
    with ctx.database.read() as session:
        if repository.managed_leaf(session, spec.label) is not None:
            return False
        issuer = ctx.issuer(session, spec.issuer)[1]
        ctx.check_chain_usable(ctx.ca_directory(session.connection()), spec.issuer)
    profile = get_profile(spec.profile)
    now = ctx.clock.now()
    not_before, not_after = validity_window(now, spec.validity, issuer.certificate)  # before the key exists
    key_id = f"leaf-{spec.label}"
    signer = _key(ctx, key_id, spec.algorithm)
    serial = new_serial()
    certificate = build_certificate(
        issuer=issuer,
        subject=spec.subject,
        public_key=signer.public_key(),
        profile=profile,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        public_url=ctx.settings.public_base_url,
        dns_names=spec.dns,
        ip_addresses=spec.ips,
    )
    common_name = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    with ctx.database.write() as session:
        record_managed_leaf(
            session,
            certificate,
            issuer_id=spec.issuer,
            profile=profile.name.value,
            identity=str(common_name),
            key_id=key_id,
            label=spec.label,
            now=now,
            actor=actor,
        )
    return True


def record_managed_leaf(
    session: Session,
    certificate: x509.Certificate,
    *,
    issuer_id: str,
    profile: str,
    identity: str,
    key_id: str,
    label: str,
    now: dt.datetime,
    actor: str,
) -> CertificateRow:
    """Store a certificate whose key evpki holds (``label`` finds it again) and audit its issuance."""
    sha256 = fingerprint(certificate)
    serial = serial_hex(certificate.serial_number)
    row = CertificateRow(
        issuer_id=issuer_id,
        serial=serial,
        sha256=sha256,
        profile=profile,
        subject=certificate.subject.rfc4514_string(),
        identity=identity,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        der=certificate.public_bytes(Encoding.DER),
        key_id=key_id,
        label=label,
        created_at=now,
    )
    repository.add_certificate(session, row)
    audit.append(
        session,
        at=now,
        actor=actor,
        action="issue",
        ca_id=issuer_id,
        serial=serial,
        details={"profile": profile, "label": label, "sha256": sha256},
    )
    return row
