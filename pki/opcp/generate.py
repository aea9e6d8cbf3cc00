"""Contract data generated for an MO without its own PKI (OPCP ``generateSignedContractData``).

The MO (role ``MO_V2G_PKI``, its provider prefixes) names a vehicle (PCID) and a contract (eMAID,
``contractBegins`` .. ``contractEnds``); evpki makes the rest, as contract provisioning does for a
car's request (:mod:`pki.iso15118.provisioning`):

1. checks, first failure wins, nothing made on any (:class:`InvalidInput`, HTTP 400): the ids, the
   ISO 15118-2 namespace (-20 generation is not offered), the dates (``contractEnds`` not in the
   past, after ``contractBegins``), the vehicle's OEM provisioning certificate in the PCP (valid
   now, P-256), the eMAID not used by another PCID (the contract registry and the CCP) nor revoked;
2. a fresh P-256 contract key and a contract certificate (CN = eMAID, DC=MO) from our one ISO
   15118-2 MO CA, valid from ``max(now, contractBegins)`` for the profile's default at most, cut
   to ``contractEnds`` and to the issuer's notAfter;
3. the contract key encrypted for the provisioning certificate's key (ECDH + AES-128-CBC, ISO
   15118-2 [V2G2-818], :mod:`pki.iso15118.keywrap`), the four Id elements signed by our CPS leaf
   (:func:`pki.iso15118.cps.cps_signed_fields`), SessionID zero (the header is not signed; the
   CCP puts the car's in when it hands the data out);
4. in the issuance's transaction: the contract in the registry (new, or the same PCID's with the
   new period; so ``deleteSignedContractData`` revokes its certificate and OCSP answers for it), the
   certificate as its current one, the signed contract data in the CCP (same eMAID replaces), and
   the audit record ``opcp-cps-generate``. A refusal there rolls all of it back, the certificate too.

The contract key lives only in this call's memory: it is never stored, and dropped when the call
ends (Python cannot wipe the memory it occupied).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from pki.ca.authority import serial_hex
from pki.ca.issuance import IssueRequest, issue
from pki.ca.policy import RequestIdentity
from pki.ca.profiles import ProfileName, get_profile
from pki.ca.root_uses import RootUse
from pki.core.errors import Conflict, InvalidInput, Unavailable
from pki.iso15118 import contract_registry
from pki.iso15118.cps import cps_signed_fields
from pki.iso15118.exi import encode_message
from pki.iso15118.keywrap import encrypt_contract_key
from pki.iso15118.provisioning import contract_csr, contract_issuers
from pki.opcp.access import Operation, Principal, authorize, normalise_emaid, parse_pcid
from pki.opcp.ccp import ISO20_NAMESPACE as CCP_ISO20_NAMESPACE
from pki.opcp.ccp import put_signed_contract_data, stored_pcid
from pki.opcp.certinfo import ISO2_NAMESPACE, ISO20_NAMESPACE, der, fingerprints
from pki.opcp.pcp import vehicle_entry
from pki.opcp.rcp import root_certificate_id
from pki.opcp.signers import cps_chain_below
from pki.operations import audit
from pki.runtime.context import ISO15118_2, Context
from pki.store import repository
from pki.store.db import joined_session

__all__ = ["EMAID_USED", "PCID_NOT_AVAILABLE", "ContractRequestIn", "GeneratedContract", "generate_contract_data"]

PCID_NOT_AVAILABLE = "The OEM provisioning certificate with the given PCID is not available."
EMAID_USED = "EMAID is already used by other PCID"
_SESSION_ID = b"\x00" * 8


@dataclass(frozen=True, slots=True)
class ContractRequestIn:
    """``GenerateSignedContractDataRequest``: the dates as the wire gives them (ISO 8601)."""

    pcid: str
    emaid: str
    contract_begins: str
    contract_ends: str
    xsd_msg_def_namespace: str = ISO2_NAMESPACE
    cps_root_id: str | None = None  # the RCP id of the V2G root whose CPS shall sign


@dataclass(frozen=True, slots=True)
class GeneratedContract:
    emaid: str
    pcid: str
    issuer_id: str
    serial: str
    contract_certificate: x509.Certificate
    root_id: str


def _instant(text: str, field: str) -> dt.datetime:
    """An ISO 8601 date-time; without an offset it is UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(
            f"The {field} does not match the specification (ISO 8601, e.g. 2027-05-11T00:00:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC).replace(microsecond=0)
    except OverflowError:
        raise InvalidInput(f"The {field} does not match the specification (out of range)") from None


def _namespace(text: str) -> None:
    if text in (ISO20_NAMESPACE, CCP_ISO20_NAMESPACE):
        raise InvalidInput(
            f"xsdMsgDefNamespace : evpki generates ISO 15118-2 contract data only ({ISO2_NAMESPACE}); "
            "ISO 15118-20 generation is not offered"
        )
    if text != ISO2_NAMESPACE:
        raise InvalidInput(f"xsdMsgDefNamespace : must be {ISO2_NAMESPACE}")


def _emaid_free(session: Session, emaid: str, pcid: str) -> None:
    """Refuse an eMAID that the registry or the CCP holds for another PCID, or that was revoked."""
    row = contract_registry.row_by_emaid(session, emaid)
    other = row.pcid if row is not None else stored_pcid(session, emaid)
    if other is not None and other != pcid:
        raise Conflict(f"{EMAID_USED}: {emaid} belongs to PCID {other}, not {pcid}")
    if row is not None and row.status == "revoked":
        raise Conflict(f"the contract {emaid} was revoked; an eMAID is not used again")


def generate_contract_data(ctx: Context, principal: Principal, data: ContractRequestIn) -> GeneratedContract:
    """``generateSignedContractData``: see the module for the steps."""
    authorize(principal, Operation.GENERATE_SIGNED_CONTRACT_DATA)
    pcid = parse_pcid(data.pcid)
    emaid = normalise_emaid(data.emaid)
    authorize(principal, Operation.GENERATE_SIGNED_CONTRACT_DATA, emaid=emaid)
    _namespace(data.xsd_msg_def_namespace)
    begins = _instant(data.contract_begins, "contractBegins")
    ends = _instant(data.contract_ends, "contractEnds")
    now = ctx.clock.now()
    if ends <= now:
        raise InvalidInput("The given contractEnds date is in the past.")
    if ends <= begins:
        raise InvalidInput("contractEnds must be after contractBegins")
    try:
        with ctx.database.read() as session:
            vehicle = vehicle_entry(session, pcid)
            if vehicle is None:
                raise InvalidInput(PCID_NOT_AVAILABLE)
            if not vehicle.vehicle.not_valid_before_utc <= now < vehicle.vehicle.not_valid_after_utc:
                raise InvalidInput(f"{PCID_NOT_AVAILABLE} (its OEM provisioning certificate is not valid now)")
            _emaid_free(session, emaid, pcid)
            directory = ctx.ca_directory(session.connection())
            cps, root = cps_chain_below(ctx, session, directory, data.cps_root_id, now)
            issuers = contract_issuers(directory, ISO15118_2)
            if len(issuers) != 1:
                raise Unavailable(
                    f"this PKI needs exactly one ISO 15118-2 CA issuing contract certificates, not {len(issuers)}"
                )
            mo_ca = issuers[0]
            renew = bool(repository.current_for_identity(session, ProfileName.CONTRACT.value, emaid))
    except Conflict as exc:
        raise InvalidInput(exc.message) from None
    peer = vehicle.vehicle.public_key()
    if not isinstance(peer, ec.EllipticCurvePublicKey) or not isinstance(peer.curve, ec.SECP256R1):
        raise InvalidInput(f"{PCID_NOT_AVAILABLE} (its key is not the P-256 key ISO 15118-2 encrypts for)")
    start = max(begins, now)
    validity = min(get_profile(ProfileName.CONTRACT.value).default_validity, ends - start)
    mo_subs = tuple(der(certificate) for certificate in directory.presented(mo_ca))
    root_id = root_certificate_id(RootUse.V2G, fingerprints(root)[0])
    actor = principal.actor
    contract_key: ec.EllipticCurvePrivateKey | None = ec.generate_private_key(ec.SECP256R1())
    assert contract_key is not None
    made: list[tuple[x509.Certificate, bytes]] = []  # (certificate, signed contract data EXI)

    def before_store(certificate: x509.Certificate) -> None:
        # From the certificate signed last: issuance signs again when it retries.
        assert contract_key is not None
        wrapped = encrypt_contract_key(contract_key, peer)
        fields = cps_signed_fields(
            ctx, cps, der(certificate), mo_subs, wrapped.encrypted_private_key, wrapped.dh_public_key, emaid
        )
        made.append((certificate, encode_message(fields.installation_res(_SESSION_ID))))

    def in_transaction(connection: Connection, _row_id: int) -> None:
        session = joined_session(connection)  # the issuance's transaction (a SAVEPOINT in a batch)
        _emaid_free(session, emaid, pcid)  # again: another call may have taken it since the checks
        certificate, exi = made[-1]
        serial = serial_hex(certificate.serial_number)
        new = contract_registry.put_contract(
            session, emaid=emaid, pcid=pcid, valid_from=begins, valid_until=ends, at=now, actor=actor
        )
        contract_registry.record_contract_certificate(
            session, emaid, mo_ca, serial, at=now, actor=actor, allow_pending=True
        )
        stored_before = not put_signed_contract_data(
            session, pcid=pcid, emaid=emaid, exi=exi, root_id=root_id, at=now, actor=actor
        )
        audit.append(
            session,
            at=now,
            actor=actor,
            action="opcp-cps-generate",
            ca_id=mo_ca,
            serial=serial,
            details={
                "emaid": emaid,
                "pcid": pcid,
                "contractBegins": begins.isoformat(),
                "contractEnds": ends.isoformat(),
                "newContract": new,
                "replaced": stored_before,
                "vehicle": fingerprints(vehicle.vehicle)[0],
                "cps": fingerprints(cps.leaf)[0],
            },
        )

    try:
        issued = issue(
            ctx,
            IssueRequest(
                profile=ProfileName.CONTRACT.value,
                csr=contract_csr(emaid, contract_key),
                identity=RequestIdentity(emaid=emaid),
                ca_id=mo_ca,
                validity=validity,
                renew=renew,
                before_store=before_store,
                in_transaction=in_transaction,
                not_before=start if start > now else None,
            ),
            actor,
        )
    except Conflict as exc:  # the eMAID was taken or revoked meanwhile: nothing of this call is stored
        raise InvalidInput(exc.message) from None
    finally:
        contract_key = None  # the only reference: the key is gone with this call
    return GeneratedContract(
        emaid,
        pcid,
        issued.certificate.issuer_id,
        issued.certificate.serial,
        made[-1][0],
        root_id,
    )
