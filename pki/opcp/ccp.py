"""The Contract Certificate Pool and the CPS signers (OPCP ``ccp.v1.json``, ``cps.v1.json``).

The pool is evpki's contract registry (:mod:`pki.iso15118.contract_registry`): a PCID holds
several contracts, ordered by ``priority`` (lower first). What OPCP callers do with it:

- a CPO sends the car's CertificateInstallationReq (``getSignedContractData``) and gets the signed
  contract data, built on the spot by our provisioning service (:func:`pki.iso15118.provisioning.
  provision`) for the PCID's first active contract -- one per ISO 15118-2 request, the car's
  -20 request gets one of its contracts per request as ISO 15118-20 says;
- an MO looks its contract up (``lookupContract``) and deletes it (``deleteSignedContractData``:
  the registry removes a contract by revoking it with its certificates; the audit record
  ``contract-revoke`` becomes the ``oem.contract.deleted`` webhook event);
- an OEM lists a vehicle's contracts (``getContracts``) and chooses the default one
  (``setDefaultContract``: priority 0, the others after it), the one an installation gets; it
  fetches a vehicle's stored signed contract data without the car's request
  (``provideSignedContractData``, the session id it names put into the header).

:meth:`ContractPool.cps_signers` lists the CPS leaf certificates that sign contract data here
(``getAllCpsSigners``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from pki.ca.profiles import ProfileName
from pki.ca.root_uses import RootUse
from pki.core.clock import utc
from pki.core.errors import EvpkiError, InvalidInput, NotFound
from pki.iso15118.contract_registry import row_by_emaid
from pki.iso15118.contract_revocation import revoke_contract
from pki.iso15118.exi import ExiError, decode_message, encode_message
from pki.iso15118.messages import CertificateInstallationRes, Header, ResponseCode, V2GMessage
from pki.iso15118.provisioning import provision
from pki.iso15118.provisioning_request import (
    Action,
    Refused,
    Unanswerable,
    decode_request,
    expected_body,
    verify_installation,
)
from pki.iso15118.trust_anchors import seed_oem_roots
from pki.opcp.access import Operation, Principal, authorize, normalise_emaid, parse_pcid
from pki.opcp.certinfo import ISO2_NAMESPACE, b64_der, common_name, fingerprints
from pki.opcp.rcp import root_certificate_id
from pki.operations import audit
from pki.runtime.context import Context
from pki.store.models import CertificateRow, ContractRow, OpcpSignedContractDataRow

__all__ = ["ISO20_NAMESPACE", "ContractPool", "SignedContractData", "put_signed_contract_data", "stored_pcid"]

ISO20_NAMESPACE = "urn:iso:std:iso:15118:-20:CommonMessages"
_NAMESPACES = (ISO2_NAMESPACE, ISO20_NAMESPACE)
_MAX_EXI_CHARS = 20_000
_SESSION_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2}){1,8}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True, slots=True)
class SignedContractData:
    """One ``emaidContent`` entry: the base64 EXI CertificateInstallationRes and its eMAID."""

    certificate_installation_res: str
    emaid: str | None

    def as_opcp(self) -> dict[str, Any]:
        body: dict[str, Any] = {"certificateInstallationRes": self.certificate_installation_res}
        if self.emaid is not None:
            body["emaid"] = self.emaid
        return {"messageDef": body}


def _namespace(text: str | None) -> str:
    value = text or ISO2_NAMESPACE
    if value not in _NAMESPACES:
        raise InvalidInput(f"xsdMsgDefNamespace must be one of {', '.join(_NAMESPACES)}")
    return value


def _session_id(text: str | None) -> bytes:
    """ISO 15118-2 ``sessionIDType``: hexBinary, at most 8 bytes; absent or empty is zero."""
    if text is None or text == "":
        return b"\x00" * 8
    if not _SESSION_HEX.match(text):
        raise InvalidInput("Invalid SessionID format: at most 8 bytes (16 hex digits), an even number of hex digits")
    return bytes.fromhex(text)


def _iso(moment: dt.datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stored_entry(row: OpcpSignedContractDataRow) -> dict[str, Any]:
    """A stored signed contract data's ``XMLContracts`` entry (it is the vehicle's answer while stored)."""
    message = decode_message(row.exi)
    assert isinstance(message.body, CertificateInstallationRes)  # checked when stored
    contract = x509.load_der_x509_certificate(message.body.contract_signature_cert_chain.certificate)
    return {
        "pcid": row.pcid,
        "emaid": row.emaid,
        "xsdMsgDefNamespace": ISO2_NAMESPACE,
        "defaultContract": False,
        "contractCertificate": b64_der(contract),
        "certValidFrom": _iso(contract.not_valid_before_utc),
        "certValidTo": _iso(contract.not_valid_after_utc),
    }


def put_signed_contract_data(
    session: Session, *, pcid: str, emaid: str, exi: bytes, root_id: str | None, at: dt.datetime, actor: str
) -> bool:
    """Inside the caller's transaction: keep ``exi`` as the signed contract data of ``emaid`` (normalised).

    Storing again under the eMAID replaces it. True when the eMAID had none; the caller audits.
    """
    row = session.execute(
        select(OpcpSignedContractDataRow).where(OpcpSignedContractDataRow.emaid == emaid).with_for_update()
    ).scalar_one_or_none()
    created = row is None
    if row is None:
        row = OpcpSignedContractDataRow(emaid=emaid, created_at=at)
    row.pcid = pcid
    row.exi = exi
    row.root_id = root_id
    row.updated_at = at
    row.updated_by = actor
    session.add(row)
    session.flush()
    return created


def stored_pcid(session: Session, emaid: str) -> str | None:
    """The PCID whose signed contract data the pool keeps under ``emaid`` (normalised), if any."""
    return session.execute(
        select(OpcpSignedContractDataRow.pcid).where(OpcpSignedContractDataRow.emaid == emaid)
    ).scalar_one_or_none()


def _stored_of(session: Session, pcid: str) -> list[tuple[str, bytes]]:
    """The (eMAID, EXI) of the signed contract data stored for ``pcid``, the newest first."""
    table = OpcpSignedContractDataRow.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        select(table.c.emaid, table.c.exi)
        .where(table.c.pcid == pcid)
        .order_by(table.c.updated_at.desc(), table.c.id.desc())
    ).all()
    return [(str(row.emaid), bytes(row.exi)) for row in rows]


class ContractPool:
    """``pki.opcp.ccp``: contracts by PCID and eMAID, and the signed contract data of an installation."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    # -- CPO

    def signed_contract_data(
        self,
        principal: Principal,
        certificate_installation_req: str,
        xsd_msg_def_namespace: str,
        *,
        always_return_exi: bool = True,
    ) -> list[SignedContractData]:
        """``getSignedContractData``: the car's base64 EXI request in, the signed contract data out.

        An undecodable request is :class:`InvalidInput`. A refusal the car must read (no contract
        for its PCID, an untrusted OEM chain ...) is an EXI response with a FAILED ResponseCode;
        with ``always_return_exi`` false it is :class:`NotFound` / :class:`InvalidInput` instead.
        """
        authorize(principal, Operation.GET_SIGNED_CONTRACT_DATA)
        namespace = _namespace(xsd_msg_def_namespace)
        if not isinstance(certificate_installation_req, str) or not certificate_installation_req.strip():
            raise InvalidInput("certificateInstallationReq : must be the car's base64 EXI request")
        if len(certificate_installation_req) > _MAX_EXI_CHARS:
            raise InvalidInput(f"certificateInstallationReq : at most {_MAX_EXI_CHARS} characters")
        decoded: V2GMessage | None = None
        if namespace == ISO2_NAMESPACE:
            decoded, stored = self._stored_for(certificate_installation_req.strip())
            if stored:
                return stored
        result = provision(
            self._ctx,
            iso15118_schema_version=namespace,
            action="Install",
            exi_request=certificate_installation_req.strip(),
            ocpp_version="2.1",
            actor=principal.actor,
            decoded=decoded,  # the same decode_request(), made once
        )
        if result.status == "Failed":
            raise InvalidInput(f"certificateInstallationReq : {result.reason or 'not a CertificateInstallationReq'}")
        if result.reason is not None and not always_return_exi:
            code = result.response_code.value if result.response_code is not None else "FAILED"
            if "NoCertificateAvailable" in code:
                raise NotFound(f"no signed contract data for this vehicle ({result.reason})")
            raise InvalidInput(f"{code}: {result.reason}")
        return [SignedContractData(result.exi_response, result.emaid)]

    def _stored_for(self, exi_request: str) -> tuple[V2GMessage | None, list[SignedContractData]]:
        """The decoded request (None when it does not decode), and the stored signed contract data for
        the vehicle that signed ``exi_request``, the car's SessionID put in.

        Only once the request is verified (its OEM signature, the chain to a trusted OEM root): anything
        else goes to the provisioning service, whose answer says why. A vehicle without stored data
        goes there unverified: the provisioning service verifies the request itself, and checking
        it twice was a fifth of an on-the-spot answer's time.
        """
        try:
            message = decode_request(exi_request, ISO2_NAMESPACE, "2.1")
        except (Unanswerable, EvpkiError, ValueError):
            return None, []  # provision() decodes it again and says why
        try:
            request = expected_body(message, Action.INSTALL)
            claimed = common_name(x509.load_der_x509_certificate(request.oem_provisioning_cert))  # type: ignore[union-attr]
            if claimed is None:
                return message, []
            seed_oem_roots(self._ctx)  # its own transaction (skipped while the setting is as applied)
            now = self._ctx.clock.now()
            with self._ctx.database.read() as session:
                stored = _stored_of(session, claimed)
                if not stored:
                    return message, []
                connection = session.connection()
                directory = self._ctx.ca_directory(connection)
                vehicle = verify_installation(self._ctx, connection, directory, message, request, now)  # type: ignore[arg-type]
                if common_name(vehicle) != claimed:  # the same certificate: never, but never answer another's
                    return message, []
        except (Refused, Unanswerable, EvpkiError, ValueError):
            return message, []
        answers = []
        for emaid, exi in stored:
            signed = decode_message(exi)
            renewed = V2GMessage(
                Header(session_id=message.header.session_id, signature=signed.header.signature), signed.body
            )
            answers.append(SignedContractData(base64.b64encode(encode_message(renewed)).decode(), emaid))
        return message, answers

    def provide(
        self,
        principal: Principal,
        emaid: str,
        pcid: str,
        *,
        session_id: str | None = None,
        xsd_msg_def_namespace: str | None = None,
        cps_root_id: str | None = None,
    ) -> dict[str, Any]:
        """``provideSignedContractData``: the stored signed contract data of (``emaid``, ``pcid``) for an OEM.

        The OEM backend installs it without the car's request, so the checks of [V2G2-894] (expiry,
        revocation) are the OEM's. ``session_id`` (hex, at most 8 bytes; default zero) goes into the
        header, which the CPS signature does not cover. :class:`NotFound` when the pool holds no
        signed contract data of the eMAID for that PCID (or below that V2G root).
        """
        authorize(principal, Operation.PROVIDE_SIGNED_CONTRACT_DATA)
        parse_pcid(pcid)
        normalised = normalise_emaid(emaid)
        authorize(principal, Operation.PROVIDE_SIGNED_CONTRACT_DATA, pcid=pcid)
        session_bytes = _session_id(session_id)
        if _namespace(xsd_msg_def_namespace) != ISO2_NAMESPACE:
            raise NotFound(f"the pool keeps signed contract data of {ISO2_NAMESPACE} only")
        with self._ctx.database.read() as session:
            row = session.execute(
                select(OpcpSignedContractDataRow).where(OpcpSignedContractDataRow.emaid == normalised)
            ).scalar_one_or_none()
            stored = (row.pcid, row.exi, row.root_id) if row is not None else None
        if stored is None or stored[0] != pcid or (cps_root_id is not None and stored[2] != cps_root_id):
            raise NotFound(f"The contract for the given EMAID not found ({normalised} for PCID {pcid}).")
        signed = decode_message(stored[1])
        message = V2GMessage(Header(session_id=session_bytes, signature=signed.header.signature), signed.body)
        body: dict[str, Any] = {
            "certificateInstallationRes": base64.b64encode(encode_message(message)).decode(),
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
        }
        if stored[2] is not None and _UUID.match(stored[2]):
            body["cpsV2GRootCertificateFingerprint"] = stored[2]
        return body

    # -- CPS and MO: stored signed contract data

    def store(
        self, principal: Principal, *, pcid: str, emaid: str, signed_data: str, root_id: str | None = None
    ) -> None:
        """``addSignedContractData``: keep a CPS-signed CertificateInstallationRes (base64 EXI) for the vehicle.

        The data must decode as a CertificateInstallationRes with ResponseCode OK whose eMAID and contract
        certificate CN are ``emaid``. Storing again under the eMAID replaces it; audited as ``opcp-ccp-put``.
        """
        authorize(principal, Operation.ADD_SIGNED_CONTRACT_DATA)
        parse_pcid(pcid)
        normalised = normalise_emaid(emaid)
        authorize(principal, Operation.ADD_SIGNED_CONTRACT_DATA, emaid=normalised)
        try:
            raw = base64.b64decode(signed_data, validate=True)
            message = decode_message(raw)
        except (binascii.Error, ValueError, TypeError, ExiError):
            raise InvalidInput("signedContractDataXML : not a base64 EXI CertificateInstallationRes") from None
        body = message.body
        if not isinstance(body, CertificateInstallationRes) or body.response_code is not ResponseCode.OK:
            raise InvalidInput("signedContractDataXML : must be a CertificateInstallationRes with ResponseCode OK")
        if message.header.signature is None:
            raise InvalidInput("signedContractDataXML : the CPS signature is missing")
        try:
            contract = x509.load_der_x509_certificate(body.contract_signature_cert_chain.certificate)
        except ValueError:
            raise InvalidInput("signedContractDataXML : the contract certificate is not DER") from None
        if (
            body.emaid.value.replace("-", "").upper() != normalised
            or (common_name(contract) or "").replace("-", "").upper() != normalised
        ):
            raise InvalidInput(f"signedContractDataXML : its eMAID and contract certificate are not {normalised}")
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            created = put_signed_contract_data(
                session, pcid=pcid, emaid=normalised, exi=raw, root_id=root_id, at=now, actor=principal.actor
            )
            audit.append(
                session,
                at=now,
                actor=principal.actor,
                action="opcp-ccp-put",
                details={"emaid": normalised, "pcid": pcid, "created": created, "contract": fingerprints(contract)[0]},
            )

    # -- MO

    def lookup_contract(
        self, principal: Principal, emaid: str, xsd_msg_def_namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """``lookupContract``: the MO's contract by eMAID (404 when the pool holds none)."""
        authorize(principal, Operation.LOOKUP_CONTRACT)
        _namespace(xsd_msg_def_namespace)
        normalised = normalise_emaid(emaid)
        authorize(principal, Operation.LOOKUP_CONTRACT, emaid=normalised)
        now = self._ctx.clock.now()
        with self._ctx.database.read() as session:
            row = row_by_emaid(session, normalised)
            if row is None or row.status == "revoked":
                stored = session.execute(
                    select(OpcpSignedContractDataRow).where(OpcpSignedContractDataRow.emaid == normalised)
                ).scalar_one_or_none()
                if stored is None:
                    raise NotFound(f"no contract with eMAID {normalised} in the pool")
                return [_stored_entry(stored)]
            default = self._default_emaid(session, row.pcid, now)
            return [self._entry(session, row, default)]

    def delete(self, principal: Principal, emaid: str, *, skip_revocation: bool = False) -> None:
        """``deleteSignedContractData``: revoke the contract and its certificates (one transaction)."""
        authorize(principal, Operation.DELETE_SIGNED_CONTRACT_DATA)
        normalised = normalise_emaid(emaid)
        authorize(principal, Operation.DELETE_SIGNED_CONTRACT_DATA, emaid=normalised)
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            row = row_by_emaid(session, normalised)
            registered = row is not None and row.status != "revoked"
            if registered and skip_revocation:
                raise InvalidInput(
                    "X-Skip-Revocation : evpki removes a registered contract from the pool by revoking it; "
                    "send false or omit it"
                )
            stored = session.execute(
                select(OpcpSignedContractDataRow).where(OpcpSignedContractDataRow.emaid == normalised).with_for_update()
            ).scalar_one_or_none()
            if stored is None and not registered:
                raise NotFound(f"no contract with eMAID {normalised} in the pool")
            if stored is not None:
                session.delete(stored)
                audit.append(
                    session,
                    at=now,
                    actor=principal.actor,
                    action="opcp-ccp-delete",
                    details={"emaid": normalised, "pcid": stored.pcid},
                )
        if registered:
            revoke_contract(self._ctx, normalised, note="deleted from the OPCP contract pool", actor=principal.actor)

    # -- OEM

    def contracts_of(
        self, principal: Principal, pcid: str, xsd_msg_def_namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """``getContracts``: the vehicle's unrevoked contracts, the default one first."""
        authorize(principal, Operation.GET_CONTRACTS)
        parse_pcid(pcid)
        _namespace(xsd_msg_def_namespace)
        authorize(principal, Operation.GET_CONTRACTS, pcid=pcid)
        now = self._ctx.clock.now()
        with self._ctx.database.read() as session:
            rows = self._rows_of(session, pcid)
            default = self._default_emaid(session, pcid, now)
            entries = [self._entry(session, row, default) for row in rows]
            stored = session.execute(
                select(OpcpSignedContractDataRow)
                .where(OpcpSignedContractDataRow.pcid == pcid)
                .order_by(OpcpSignedContractDataRow.id)  # type: ignore[arg-type]
            ).scalars()
            known = {entry["emaid"] for entry in entries}
            return entries + [_stored_entry(row) for row in stored if row.emaid not in known]

    def set_default(self, principal: Principal, pcid: str, emaid: str) -> None:
        """``setDefaultContract``: ``emaid`` gets priority 0, the PCID's other contracts come after it."""
        authorize(principal, Operation.SET_DEFAULT_CONTRACT)
        parse_pcid(pcid)
        normalised = normalise_emaid(emaid)
        authorize(principal, Operation.SET_DEFAULT_CONTRACT, pcid=pcid)
        now = self._ctx.clock.now()
        with self._ctx.database.write() as session:
            rows = self._rows_of(session, pcid, lock=True)
            target = next((row for row in rows if row.emaid == normalised), None)
            if target is None:
                raise NotFound(f"PCID {pcid} holds no contract {normalised}")
            previous = {row.emaid: row.priority for row in rows}
            for row in rows:
                if row is target:
                    row.priority = 0
                elif row.priority <= 0:
                    row.priority = 1
                row.updated_at = now if row.priority != previous[row.emaid] else row.updated_at
            session.flush()
            audit.append(
                session,
                at=now,
                actor=principal.actor,
                action="contract-priority",
                details={
                    "pcid": pcid,
                    "default": normalised,
                    "priorities": {row.emaid: row.priority for row in rows},
                },
            )

    # -- CPS signers

    def cps_signers(self, principal: Principal) -> list[dict[str, Any]]:
        """``getAllCpsSigners``: the usable CPS leaf certificates with their sub-CAs and V2G root."""
        authorize(principal, Operation.GET_ALL_CPS_SIGNERS)
        now = self._ctx.clock.now()
        signers: list[dict[str, Any]] = []
        with self._ctx.database.read() as session:
            directory = self._ctx.ca_directory(session.connection())
            rows = session.execute(
                select(CertificateRow)
                .where(
                    CertificateRow.profile == ProfileName.CPS_LEAF.value,
                    CertificateRow.status == "valid",
                    CertificateRow.not_after > now,
                )
                .order_by(CertificateRow.id.desc())  # type: ignore[union-attr]
            ).scalars()
            for row in rows:
                if row.issuer_id not in directory.cas:
                    continue
                leaf = x509.load_der_x509_certificate(row.der)
                subs = directory.presented(row.issuer_id)
                root = directory.anchor(row.issuer_id)
                organisation = leaf.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
                entry: dict[str, Any] = {
                    "cpsDistinguishedName": leaf.subject.rfc4514_string(),
                    "cpsCertificate": b64_der(leaf),
                    "validFrom": _iso(leaf.not_valid_before_utc),
                    "validTo": _iso(leaf.not_valid_after_utc),
                    # the published schema's "fingerprint" is a UUID: the root's id in the RCP
                    "cpsV2GRootCertificateFingerprint": root_certificate_id(RootUse.V2G, fingerprints(root)[0]),
                    "cpsRootDistinguishedName": root.subject.rfc4514_string(),
                    "xsdMsgDefNamespace": ISO20_NAMESPACE
                    if directory.cas[row.issuer_id].standard == "iso15118-20"
                    else ISO2_NAMESPACE,
                }
                entry["organizationName"] = (
                    str(organisation[0].value) if organisation else entry["cpsDistinguishedName"]
                )
                for name, certificate in zip(("cpsSubCa2Certificate", "cpsSubCa1Certificate"), subs, strict=False):
                    entry[name] = b64_der(certificate)
                signers.append(entry)
        return signers

    # -- helpers

    @staticmethod
    def _rows_of(session: Any, pcid: str, *, lock: bool = False) -> list[ContractRow]:
        query = (
            select(ContractRow)
            .where(ContractRow.pcid == pcid, ContractRow.status != "revoked")
            .order_by(ContractRow.priority, ContractRow.created_at, ContractRow.id)  # type: ignore[arg-type]
        )
        if lock:
            query = query.with_for_update()
        return list(session.execute(query).scalars())

    def _default_emaid(self, session: Any, pcid: str, now: dt.datetime) -> str | None:
        """The contract an ISO 15118-2 installation would take now: the first active by priority."""
        for row in self._rows_of(session, pcid):
            start = utc(row.valid_from)
            end = utc(row.valid_until) if row.valid_until else None
            if start <= now and (end is None or now < end):
                return str(row.emaid)
        return None

    @staticmethod
    def _entry(session: Any, row: ContractRow, default: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "pcid": row.pcid,
            "emaid": row.emaid,
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
            "defaultContract": row.emaid == default,
        }
        if row.current_certificate_issuer and row.current_certificate_serial:
            certificate = session.execute(
                select(CertificateRow.der).where(
                    CertificateRow.issuer_id == row.current_certificate_issuer,
                    CertificateRow.serial == row.current_certificate_serial,
                )
            ).scalar_one_or_none()
            if certificate is not None:
                parsed = x509.load_der_x509_certificate(certificate)
                entry["contractCertificate"] = b64_der(parsed)
                entry["certValidFrom"] = _iso(parsed.not_valid_before_utc)
                entry["certValidTo"] = _iso(parsed.not_valid_after_utc)
        return entry
