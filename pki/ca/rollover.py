"""Root rollover: a new generation of a root CA and its subtree, introduced by a link certificate.

``rollover_root(ctx, "cso-root")`` creates:

* ``cso-root-2``: a new self-signed root (new key, same algorithm, the CN marked ``G2``);
* a *link certificate*: the new root's name and key, signed by the old root. A station that only
  accepts a new CSMS root signed by the one it has (OCPP 2.0.1 SecurityCtrlr.AdditionalRootCertificateCheck,
  M05.FR.09-16) installs this one; others install the self-signed root. Both anchor the same
  name and key, so chains from the new generation validate against either;
* a copy of every CA below the old root under the new one (``cso-sub`` → ``cso-sub-2``, same
  path lengths);
* for the root and every copied CA, the profiles the old CA issued move to its successor, in one
  transaction each (so that exactly one CA issues a profile at any moment): a root that issues
  directly (``mf-root``: ``firmware-signer``) hands those to the new root like a sub-CA does;
* for every managed leaf of a moved profile (a certificate whose key evpki holds: the firmware
  signer, the CPS leaf, the CSMS server leaf), a successor under the new generation with a new key
  and the same subject, names and lifetime.

Why the managed leaves get successors: OCPP L01 forbids intermediates between a firmware signer
and its ManufacturerRootCertificate, so no link certificate can carry the old signer into the new
generation; once the old root is revoked, firmware is signed by the new signer or not at all. The
old leaves stay valid: stations that still trust only the old ManufacturerRootCertificate keep
verifying firmware the old signer signed, and a car listing only the old V2G root keeps getting
the old CPS chain (ISO 15118-2 CertificateInstallationReq ``ListOfRootCertificateIDs``).

A CA under an external parent (``cpo-sub1`` under an ecosystem V2G root) is the top of our part of
its hierarchy and rolls over the same way, except that its successor (``cpo-sub1-2``, new key) is a
request the external CA signs: it awaits its certificate, and once ``ca install`` installs it, the
profiles, managed leaves and subtree move to it (no link certificate: the external root anchors both).

The old generation stays valid (and keeps answering OCSP and publishing CRLs) until the operator
revokes or lets it expire; the bridge's root reconciliation (OCPP M03-M05) installs the new root
on stations at once and deletes the old root once it is no longer trusted.
"""

from __future__ import annotations

import datetime as dt
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.ca.authority import build_certificate, fingerprint, new_serial, serial_hex, validity_window
from pki.ca.bootstrap import create_ca_request, ensure_ca, record_managed_leaf
from pki.ca.hierarchy import CaSpec, PkiSpec
from pki.ca.profiles import ProfileName, get_profile
from pki.core.algorithms import describe_key
from pki.core.clock import utc
from pki.core.errors import Conflict, InvalidInput
from pki.operations import audit
from pki.runtime.context import Context
from pki.store import repository
from pki.store.models import CaRequestRow, CertificateAuthorityRow, CertificateRow

__all__ = ["LINK_LABEL_PREFIX", "adopt_successor", "rollover_root"]

LINK_LABEL_PREFIX = "link-"
_GENERATION = re.compile(r"^(?P<base>.+?)-(?P<n>\d+)$")


def _next_id(existing: set[str], old_id: str) -> tuple[str, int]:
    match = _GENERATION.match(old_id)
    base, generation = (match["base"], int(match["n"])) if match else (old_id, 1)
    n = generation + 1
    while f"{base}-{n}" in existing:
        n += 1
    return f"{base}-{n}", n


def _renamed(subject: x509.Name, generation: int) -> x509.Name:
    attributes = []
    for attribute in subject:
        if attribute.oid == x509.NameOID.COMMON_NAME:
            base = re.sub(r" G\d+$", "", str(attribute.value))
            attributes.append(x509.NameAttribute(x509.NameOID.COMMON_NAME, f"{base} G{generation}"))
        else:
            attributes.append(attribute)
    return x509.Name(attributes)


def _path_length(certificate: x509.Certificate) -> int | None:
    return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length


def rollover_root(ctx: Context, root_id: str, *, validity: dt.timedelta | None = None, actor: str = "system") -> str:
    """Create the next generation of ``root_id`` (see the module docstring); returns the new root's id.

    For a CA under an external parent (the top of our part of its hierarchy), the successor is a
    new request to that parent instead; it takes over once ``ca install`` installs it.
    """
    with ctx.database.read() as session:
        cas = {row.id: row for row in repository.list_cas(session)}
    old_root = cas.get(root_id)
    if old_root is None:
        raise repository.unknown_ca(root_id)
    if old_root.parent_id is not None:
        raise InvalidInput(f"{root_id} is not a root; roll over its root instead")
    if not old_root.is_root:
        return _request_successor(ctx, cas, old_root, validity, actor)
    old_certificate = ctx.ca_certificate(old_root)
    algorithm = describe_key(old_certificate.public_key()).name
    pki = PkiSpec(old_root.pki, old_root.standard, algorithm, old_root.rsa_pss)
    new_root_id, generation = _next_id(set(cas), root_id)
    lifetime = validity or (utc(old_root.not_after) - utc(old_root.not_before))
    ensure_ca(
        ctx,
        CaSpec(new_root_id, pki, None, _renamed(old_certificate.subject, generation), lifetime, None, ()),
        actor,
    )
    _link(ctx, root_id, new_root_id, actor)
    _hand_over(ctx, old_root, new_root_id, actor)
    _copy_subtree(ctx, cas, root_id, new_root_id, pki, generation, actor)
    return new_root_id


def _request_successor(
    ctx: Context,
    cas: dict[str, CertificateAuthorityRow],
    old: CertificateAuthorityRow,
    validity: dt.timedelta | None,
    actor: str,
) -> str:
    """A CA under an external parent rolls over by a new request to that parent: a successor with a
    new key awaits its certificate, and takes over once installed (:func:`adopt_successor`)."""
    with ctx.database.read() as session:
        pending = {row.successor_of: row.id for row in session.execute(select(CaRequestRow)).scalars()}
    if old.id in pending:
        raise Conflict(f"{pending[old.id]} already awaits its certificate as the successor of {old.id}")
    certificate = ctx.ca_certificate(old)
    pki = PkiSpec(old.pki, old.standard, describe_key(certificate.public_key()).name, old.rsa_pss)
    new_id, generation = _next_id(set(cas) | set(pending.values()), old.id)
    lifetime = validity or (utc(old.not_after) - utc(old.not_before))
    spec = CaSpec(
        new_id, pki, None, _renamed(certificate.subject, generation), lifetime, _path_length(certificate), (), True
    )
    create_ca_request(ctx, spec, actor, successor_of=old.id)
    return new_id


def adopt_successor(ctx: Context, old_id: str, new_id: str, actor: str) -> None:
    """Once a successor under an external parent is installed: its predecessor's profiles, managed
    leaves and subtree move to it, as they move to a rolled-over root's generation."""
    with ctx.database.read() as session:
        cas = {row.id: row for row in repository.list_cas(session)}
    old = cas[old_id]
    match = _GENERATION.match(new_id)
    generation = int(match["n"]) if match else 2
    pki = PkiSpec(old.pki, old.standard, describe_key(ctx.ca_certificate(old).public_key()).name, old.rsa_pss)
    _hand_over(ctx, old, new_id, actor)
    _copy_subtree(ctx, cas, old_id, new_id, pki, generation, actor)


def _link(ctx: Context, old_root_id: str, new_root_id: str, actor: str) -> None:
    """The new root's name and key, certified by the old root (a CA certificate, RFC 4210 §4.4 style link)."""
    with ctx.database.read() as session:
        _, issuer = ctx.issuer(session, old_root_id)
        new_row = repository.get_ca(session, new_root_id)
    new_certificate = ctx.ca_certificate(new_row)
    now = ctx.clock.now()
    not_before, not_after = validity_window(now, utc(new_row.not_after) - now, issuer.certificate)
    serial = new_serial()
    link = build_certificate(
        issuer=issuer,
        subject=new_certificate.subject,
        public_key=new_certificate.public_key(),
        profile=get_profile(ProfileName.SUB_CA),
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        public_url=ctx.settings.public_base_url,
    )
    der = link.public_bytes(Encoding.DER)
    with ctx.database.write() as session:
        repository.add_certificate(
            session,
            CertificateRow(
                issuer_id=old_root_id,
                serial=serial_hex(serial),
                sha256=fingerprint(link),
                profile=ProfileName.SUB_CA.value,
                subject=link.subject.rfc4514_string(),
                identity=new_root_id,
                not_before=not_before,
                not_after=not_after,
                der=der,
                label=f"{LINK_LABEL_PREFIX}{new_root_id}",
                created_at=now,
            ),
        )
        audit.append(
            session,
            at=now,
            actor=actor,
            action="ca-link",
            ca_id=old_root_id,
            serial=serial_hex(serial),
            details={"new_root": new_root_id, "sha256": fingerprint(link)},
        )


def _copy_subtree(
    ctx: Context,
    cas: dict[str, CertificateAuthorityRow],
    old_parent: str,
    new_parent: str,
    pki: PkiSpec,
    generation: int,
    actor: str,
) -> None:
    existing = set(cas)
    for row in sorted(cas.values(), key=lambda r: r.id):
        if row.parent_id != old_parent:
            continue
        certificate = ctx.ca_certificate(row)
        copy_id, _ = _next_id(existing, row.id)
        existing.add(copy_id)
        lifetime = utc(row.not_after) - utc(row.not_before)
        # Created issuing nothing: the profiles move in _hand_over, in the same transaction that
        # takes them from the old CA, so issuance never sees two CAs for one profile (a Conflict).
        ensure_ca(
            ctx,
            CaSpec(
                copy_id,
                pki,
                new_parent,
                _renamed(certificate.subject, generation),
                lifetime,
                _path_length(certificate),
                (),
            ),
            actor,
        )
        _hand_over(ctx, row, copy_id, actor)
        _copy_subtree(ctx, cas, row.id, copy_id, pki, generation, actor)


def _hand_over(ctx: Context, old: CertificateAuthorityRow, new_id: str, actor: str) -> None:
    """The profiles ``old`` issued, and successors of its managed leaves, now come from ``new_id``."""
    profiles = tuple(name for name in old.issues.split(",") if name)
    if not profiles:
        return
    _move_issues(ctx, old.id, new_id, actor)
    now = ctx.clock.now()
    with ctx.database.read() as session:
        leaves = _current_managed_leaves(session, old.id, profiles, now)
    for leaf in leaves:
        _reissue_managed_leaf(ctx, leaf, new_id, actor)


def _move_issues(ctx: Context, old_id: str, new_id: str, actor: str) -> None:
    now = ctx.clock.now()
    with ctx.database.write() as session:
        old = repository.get_ca(session, old_id, lock=True)
        new = repository.get_ca(session, new_id, lock=True)
        moved = old.issues
        new.issues = moved
        old.issues = ""
        audit.append(
            session,
            at=now,
            actor=actor,
            action="ca-issues-moved",
            ca_id=old_id,
            details={"to": new_id, "profiles": moved},
        )


def _current_managed_leaves(
    session: Session, issuer_id: str, profiles: tuple[str, ...], now: dt.datetime
) -> list[CertificateRow]:
    """The newest valid certificate of each managed-leaf label ``issuer_id`` holds for ``profiles``."""
    rows = session.execute(
        select(CertificateRow)
        .where(
            CertificateRow.issuer_id == issuer_id,
            CertificateRow.profile.in_(profiles),  # type: ignore[attr-defined]
            CertificateRow.label.is_not(None),  # type: ignore[union-attr]
            CertificateRow.key_id.is_not(None),  # type: ignore[union-attr]
            CertificateRow.status == "valid",
            CertificateRow.not_after > now,
        )
        .order_by(CertificateRow.id.desc())  # type: ignore[union-attr]
    ).scalars()
    newest: dict[str, CertificateRow] = {}
    for row in rows:
        newest.setdefault(str(row.label), row)
    return sorted(newest.values(), key=lambda r: str(r.label))


def _reissue_managed_leaf(ctx: Context, old: CertificateRow, new_issuer_id: str, actor: str) -> None:
    """A successor of managed leaf ``old`` under ``new_issuer_id``: new key, same subject, names and lifetime."""
    previous = x509.load_der_x509_certificate(old.der)
    key_id = f"leaf-{old.label}-{new_issuer_id}"
    # A key left by an interrupted rollover is reused, as init does, rather than orphaned.
    if ctx.keys.exists(key_id):
        signer = ctx.keys.load(key_id)
    else:
        signer = ctx.keys.generate(key_id, describe_key(previous.public_key()).name)
    dns_names, ip_addresses = _alternative_names(previous)
    with ctx.database.read() as session:
        _, issuer = ctx.issuer(session, new_issuer_id)
    now = ctx.clock.now()
    not_before, not_after = validity_window(now, utc(old.not_after) - utc(old.not_before), issuer.certificate)
    certificate = build_certificate(
        issuer=issuer,
        subject=previous.subject,
        public_key=signer.public_key(),
        profile=get_profile(old.profile),
        serial=new_serial(),
        not_before=not_before,
        not_after=not_after,
        public_url=ctx.settings.public_base_url,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )
    with ctx.database.write() as session:
        record_managed_leaf(
            session,
            certificate,
            issuer_id=new_issuer_id,
            profile=old.profile,
            identity=old.identity or "",
            key_id=key_id,
            label=str(old.label),
            now=now,
            actor=actor,
        )


def _alternative_names(certificate: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns = tuple(names.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in names.get_values_for_type(x509.IPAddress))
    return dns, ips
