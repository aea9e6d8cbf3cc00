"""The Provisioning Certificate Pool (OPCP ``pcp.v1.json``, ``02_provisioning-certificate-pool.md``).

An OEM publishes a vehicle's OEM provisioning certificate with its sub-CAs, under the vehicle's
PCID (the certificate's CN); MOs and the CPS read it back when they make the vehicle's contract.
Publishing checks, in the order OPCP lists, and stops at the first failure with nothing stored:

1. every certificate is Base64 DER (``Invalid certificate format on <field>``);
2. the PCID (the leaf's CN) is well formed and of a WMI the OEM client may manage (else 403);
3. no certificate of the chain has expired or is not yet valid;
4. the chain leads to a trusted OEM root: one of our OEM CAs ``EVPKI_ISO15118_OEM_ROOTS`` names or
   an ``OEMRootCertificate`` of the trust store (the RCP) -- the same anchors contract
   provisioning uses, and contract provisioning then takes the sub-CAs from here (``pcid``
   argument of ``pki.iso15118.trust_anchors.oem_trust``).

Certificate status (OCSP/CRL of a foreign OEM) is not queried; certificates of our own OEM CAs are
checked against our records when a vehicle installs a contract. Publishing again under the same
PCID replaces the entry (OPCP "update"); each change is one transaction with its audit record
(``opcp-pcp-put`` / ``opcp-pcp-delete``), which the webhook feed turns into events.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.core.clock import utc
from pki.core.errors import InvalidInput, NotFound
from pki.iso15118.chains import ChainRejected, validate_path
from pki.iso15118.trust_anchors import oem_trust, seed_oem_roots
from pki.opcp.access import Operation, Principal, authorize, parse_pcid
from pki.opcp.certinfo import (
    ISO2_NAMESPACE,
    b64_der,
    colon_hex,
    common_name,
    der,
    fingerprints,
    key_identifier,
    load_b64_certificate,
)
from pki.operations import audit
from pki.runtime.context import Context
from pki.store.models import OpcpProvisioningCertificateRow

__all__ = ["NOT_FOUND", "ProvisioningCertificateIn", "ProvisioningPool", "VehicleEntry", "vehicle_entry"]

NOT_FOUND = "The OEM provisioning certificate with given PCID is not found."
_MAX_ROOT_IDS = 20


@dataclass(frozen=True, slots=True)
class ProvisioningCertificateIn:
    """What an OEM sends (``ProvisioningCertificate``): Base64 DER each; sub-CA 2 optional."""

    sub_ca1_certificate: str
    vehicle_certificate: str
    sub_ca2_certificate: str | None = None
    xsd_msg_def_namespace: str = ISO2_NAMESPACE
    v2g_root_authority_key_identifiers: tuple[str, ...] = ()
    previous_pcid: str | None = None


@dataclass(frozen=True, slots=True)
class VehicleEntry:
    pcid: str
    vehicle: x509.Certificate
    sub_ca1: x509.Certificate
    sub_ca2: x509.Certificate | None
    root: x509.Certificate
    previous_pcid: str | None
    v2g_root_authority_key_identifiers: tuple[str, ...]
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: OpcpProvisioningCertificateRow) -> VehicleEntry:
        details = json.loads(row.details)
        return cls(
            row.pcid,
            x509.load_der_x509_certificate(row.leaf_der),
            x509.load_der_x509_certificate(row.sub_ca1_der),
            x509.load_der_x509_certificate(row.sub_ca2_der) if row.sub_ca2_der is not None else None,
            x509.load_der_x509_certificate(row.root_der),
            details.get("previousPcid"),
            tuple(details.get("v2gRootAuthorityKeyIdentifiers", ())),
            utc(row.updated_at),
        )

    def as_opcp(self) -> dict[str, Any]:
        """``ProvisioningCertificateData``."""
        body: dict[str, Any] = {
            "subCA1Certificate": b64_der(self.sub_ca1),
            "vehicleCertificate": b64_der(self.vehicle),
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
            "rootIssuerDistinguishedName": self.root.subject.rfc4514_string(),
            "rootIssuerSerialNumber": f"{self.root.serial_number:x}",
            "rootAuthorityKeyIdentifier": colon_hex(key_identifier(self.root)),
            "fingerprint": fingerprints(self.vehicle)[0],
        }
        if self.sub_ca2 is not None:
            body["subCA2Certificate"] = b64_der(self.sub_ca2)
        if self.v2g_root_authority_key_identifiers:
            body["v2gRootAuthorityKeyIdentifiers"] = list(self.v2g_root_authority_key_identifiers)
        if self.previous_pcid is not None:
            body["previousPcid"] = self.previous_pcid
        return body


def _certificate(text: str | None, field: str) -> x509.Certificate:
    certificate = load_b64_certificate(text)
    if certificate is None:
        raise InvalidInput(f"Invalid certificate format on {field}")
    return certificate


def _public_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def vehicle_entry(session: Session, pcid: str) -> VehicleEntry | None:
    """The PCP's entry of ``pcid`` (matched exactly), read in the caller's transaction."""
    row = session.execute(
        select(OpcpProvisioningCertificateRow).where(OpcpProvisioningCertificateRow.pcid == pcid)
    ).scalar_one_or_none()
    return VehicleEntry.from_row(row) if row is not None else None


class ProvisioningPool:
    """``pki.opcp.pcp``: OEM provisioning certificates by PCID."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def publish(self, principal: Principal, data: ProvisioningCertificateIn) -> VehicleEntry:
        """``addOEMProvCert``: check the chain (see the module), then store or replace it."""
        authorize(principal, Operation.ADD_OEM_PROV_CERT)
        vehicle = _certificate(data.vehicle_certificate, "vehicleCertificate")
        sub1 = _certificate(data.sub_ca1_certificate, "subCa1Certificate")
        sub2 = _certificate(data.sub_ca2_certificate, "subCa2Certificate") if data.sub_ca2_certificate else None
        if data.xsd_msg_def_namespace != ISO2_NAMESPACE:
            raise InvalidInput(f"xsdMsgDefNamespace must be {ISO2_NAMESPACE}")
        if data.previous_pcid is not None:
            parse_pcid(data.previous_pcid)
        root_ids = tuple(dict.fromkeys(data.v2g_root_authority_key_identifiers))
        if len(root_ids) > _MAX_ROOT_IDS or any(not isinstance(i, str) or len(i) > 128 for i in root_ids):
            raise InvalidInput(f"v2gRootAuthorityKeyIdentifiers: at most {_MAX_ROOT_IDS} identifiers")
        pcid = parse_pcid(common_name(vehicle) or "")
        authorize(principal, Operation.ADD_OEM_PROV_CERT, pcid=pcid)
        now = self._ctx.clock.now()
        presented = [c for c in (sub2, sub1) if c is not None]
        for certificate, field in ((vehicle, "vehicleCertificate"), *((c, "a sub-CA certificate") for c in presented)):
            if certificate.not_valid_after_utc <= now:
                raise InvalidInput(f"{field} has expired ({certificate.not_valid_after_utc.isoformat()})")
            if certificate.not_valid_before_utc > now:
                raise InvalidInput(f"{field} is not valid yet")
        seed_oem_roots(self._ctx)  # the seed's roots count, as in contract provisioning
        with self._ctx.database.read() as session:
            connection = session.connection()
            trust = oem_trust(self._ctx, self._ctx.ca_directory(connection), connection, now)
        try:
            path = validate_path(vehicle, presented, trust, now, what="vehicleCertificate")
        except ChainRejected as exc:
            raise InvalidInput(f"the chain does not lead to a trusted OEM root: {exc.message}") from None
        if any(c not in path for c in presented):
            raise InvalidInput("a sub-CA certificate is not on the path from vehicleCertificate to its OEM root")
        root = path[-1]
        details = {"previousPcid": data.previous_pcid, "v2gRootAuthorityKeyIdentifiers": list(root_ids)}
        with self._ctx.database.write() as session:
            row = session.execute(
                select(OpcpProvisioningCertificateRow)
                .where(OpcpProvisioningCertificateRow.pcid == pcid)
                .with_for_update()
            ).scalar_one_or_none()
            created = row is None
            key_changed = row is not None and _public_der(x509.load_der_x509_certificate(row.leaf_der)) != _public_der(
                vehicle
            )
            if row is None:
                row = OpcpProvisioningCertificateRow(pcid=pcid, wmi=pcid[:3].upper(), created_at=now)
            row.leaf_der = der(vehicle)
            row.sub_ca1_der = der(sub1)
            row.sub_ca2_der = der(sub2) if sub2 is not None else None
            row.root_der = der(root)
            row.details = json.dumps(details)
            row.not_after = min(c.not_valid_after_utc for c in path)
            row.updated_at = now
            row.updated_by = principal.actor
            session.add(row)
            session.flush()
            audit.append(
                session,
                at=now,
                actor=principal.actor,
                action="opcp-pcp-put",
                details={
                    "pcid": pcid,
                    "created": created,
                    "keyChanged": key_changed,
                    "fingerprint": fingerprints(vehicle)[0],
                },
            )
            return VehicleEntry.from_row(row)

    def _entry(self, pcid: str) -> VehicleEntry:
        with self._ctx.database.read() as session:
            entry = vehicle_entry(session, pcid)
        if entry is None:
            raise NotFound(NOT_FOUND)
        return entry

    def get(self, principal: Principal, pcid: str) -> VehicleEntry:
        """``getOEMProvCert``."""
        authorize(principal, Operation.GET_OEM_PROV_CERT)
        parse_pcid(pcid)
        authorize(principal, Operation.GET_OEM_PROV_CERT, pcid=pcid)
        return self._entry(pcid)

    def lookup(self, principal: Principal, pcid: str) -> None:
        """``lookupVehicle``: NotFound unless a provisioning certificate is held for ``pcid``."""
        authorize(principal, Operation.LOOKUP_VEHICLE)
        parse_pcid(pcid)
        authorize(principal, Operation.LOOKUP_VEHICLE, pcid=pcid)
        self._entry(pcid)

    def delete(self, principal: Principal, pcid: str) -> None:
        """``deleteOEMProvCert``."""
        authorize(principal, Operation.DELETE_OEM_PROV_CERT)
        parse_pcid(pcid)
        authorize(principal, Operation.DELETE_OEM_PROV_CERT, pcid=pcid)
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            row = session.execute(
                select(OpcpProvisioningCertificateRow)
                .where(OpcpProvisioningCertificateRow.pcid == pcid)
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(NOT_FOUND)
            fingerprint = fingerprints(x509.load_der_x509_certificate(row.leaf_der))[0]
            session.delete(row)
            audit.append(
                session,
                at=now,
                actor=principal.actor,
                action="opcp-pcp-delete",
                details={"pcid": pcid, "fingerprint": fingerprint},
            )
