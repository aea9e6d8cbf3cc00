"""ISO 15118-20 contract provisioning: CertificateInstallationReq (-20) in, CertificateInstallationRes out.

:func:`~pki.iso15118.provisioning.provision` sends every Get15118EVCertificate whose
``iso15118SchemaVersion`` names -20 here. The pipeline, in order:

1. base64 → -20 EXI → :class:`~pki.iso15118.messages20.CertificateInstallationReq` (``Install`` only:
   -20 has no CertificateUpdate);
2. the car's signature over ``OEMProvisioningCertificateChain`` ([V2G20-1548]) with the OEM
   provisioning certificate's key (ECDSA P-521 / SHA-512 or Ed448), and that certificate's path,
   through the sub-CAs the chain carries, to a trusted OEM root: the roots -2 trusts
   (:func:`~pki.iso15118.trust_anchors.oem_trust`: the setting and the trust store) and our own
   CAs that issue OEM provisioning certificates; the revocation status where we issued them;
3. the car's curve: a P-521 OEM key is the ECDH peer (SECP521); an Ed448 one names its X448 peer in
   the *alternate subject public key* ([V2G20-2534], :data:`pki.ca.profiles.ALT_PUBLIC_KEY_OID`);
4. the contracts of the PCID (the certificate's CN), several per car: the car's
   ``PrioritizedEMAIDs`` first, in its order, then the registry's priority. The next one *to hand
   out* is the first without a valid -20 contract certificate; ``RemainingContractCertificateChains``
   counts the others, capped by ``MaximumContractCertificateChains`` − 1 (the car asks again while
   it is > 0, each time saying how many more it takes). When every contract already has its -20
   certificate (a car asking again, e.g. after a reset), the first one gets a fresh certificate;
5. a CPS chain of ours below a -20 V2G root the car lists, the contract certificate (P-521 or Ed448,
   by the car's curve) from our -20 MO CA, its key encrypted for the car (:mod:`.keywrap20`), the
   CPS signature over ``SignedInstallationData`` (:mod:`.signing20`), the request's SessionID.

As for -2, the response is built and its size checked before the certificate is stored; the
certificate row, its audit record and the contract's new current certificate commit in one
transaction. The contract key, the ephemeral key and the session key live only inside that
response's construction ([V2G20-2496/2522]).

ResponseCodes (the -20 ``responseCodeType``; the standard's list for this message was not
available, so this mapping is evpki's reading, [unverified]):

========================================  =================================================
the car's signature does not verify        ``FAILED_SignatureError``
OEM chain expired / revoked / untrusted     ``WARNING_CertificateExpired`` / ``…Revoked`` /
                                            ``WARNING_CertificateValidationError``
no active contract for the PCID             ``WARNING_NoContractMatchingPCIDFound``
no CPS chain below the car's roots, no      ``WARNING_NoCertificateAvailable``
-20 MO CA, issuance refused, ``Maximum…``
= 0, the contract revoked meanwhile
========================================  =================================================

A refusal carries placeholders in the elements the schema requires, no signature, and
``RemainingContractCertificateChains`` = 0. OCPP ``Failed`` is for what cannot be answered in EXI.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from pki.ca.authority import serial_hex
from pki.ca.issuance import IssueRequest, issue
from pki.ca.policy import RequestIdentity
from pki.ca.profiles import ALT_PUBLIC_KEY_OID, ProfileName, get_profile
from pki.core.clock import utc
from pki.core.errors import Conflict, EvpkiError
from pki.iso15118 import contract_registry, exi20
from pki.iso15118.chains import ChainRejected, TrustStore, readable_certificate, validate_path
from pki.iso15118.contract_views import ContractView
from pki.iso15118.cps import CpsChain, ResponseTooLarge, common_name, der, find_cps_chain
from pki.iso15118.exi import ExiError
from pki.iso15118.keywrap20 import AgreementKey, ContractKey, encrypt_contract_key, new_contract_key
from pki.iso15118.messages import ResponseCode as ResponseCode2
from pki.iso15118.messages20 import (
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    ContractCertificateChain,
    ECDHCurve,
    EncryptedKeyType,
    EncryptedPrivateKey,
    MessageHeader,
    Processing,
    ResponseCode,
    SignedInstallationData,
)
from pki.iso15118.provisioning_request import (
    Action,
    Refused,
    Unanswerable,
    check_revocation,
    parse_action,
    request_bytes,
)
from pki.iso15118.provisioning_result import ProvisioningResult
from pki.iso15118.signing20 import sign_fragment, verify_fragment
from pki.iso15118.trust_anchors import oem_trust, own_trust, seed_oem_roots
from pki.runtime.context import ISO15118_20, CaDirectory, Context
from pki.store import repository
from pki.store.models import CertificateRow

__all__ = ["provision20"]

log = logging.getLogger("evpki.iso15118")

_DATA_ID = "id1"
_PLACEHOLDER = b"\x00"


class Refused20(Exception):
    """Understood, answered with a -20 ResponseCode that is not OK (and no contract)."""

    def __init__(self, response_code: ResponseCode, reason: str, reason_code: str) -> None:
        super().__init__(reason)
        self.response_code = response_code
        self.reason = reason
        self.reason_code = reason_code


@dataclass(frozen=True, slots=True)
class _Car:
    pcid: str
    curve: ECDHCurve
    agreement_key: AgreementKey


def provision20(
    ctx: Context,
    *,
    action: str,
    exi_request: str,
    ocpp_version: str,
    limit: int,
    maximum_contract_certificate_chains: int | None = None,
    prioritized_emaids: Sequence[str] | None = None,
    actor: str = "csms",
) -> ProvisioningResult:
    """Answer one -20 Get15118EVCertificate; never raises for anything the request contains.

    The EXI request is the authority; the OCPP 2.1 copies of its ``MaximumContractCertificateChains``
    and ``PrioritizedEMAIDs`` are used only where the EXI carries none (no PrioritizedEMAIDs).
    """
    try:
        if parse_action(action) is not Action.INSTALL:
            raise Unanswerable("ISO 15118-20 has no CertificateUpdate: renewal is another Install", "InvalidAction")
        request = _decode(exi_request, ocpp_version)
        try:
            return _provision(ctx, request, limit, prioritized_emaids, actor)
        except Refused20 as refusal:
            log.warning("-20 Get15118EVCertificate refused with %s: %s", refusal.response_code.value, refusal.reason)
            exi = _failure_response(request.header.session_id, refusal.response_code, ctx.clock.now())
            return ProvisioningResult(
                "Accepted", exi, refusal.response_code, refusal.reason, refusal.reason_code, remaining_contracts=0
            )
    except Unanswerable as failure:
        log.warning("-20 Get15118EVCertificate failed: %s", failure.reason)
        return ProvisioningResult("Failed", "", None, failure.reason, failure.reason_code)


def _decode(exi_request: str, ocpp_version: str) -> CertificateInstallationReq:
    data = request_bytes(exi_request, ocpp_version)
    try:
        message = exi20.decode_message(data)
    except ExiError as exc:  # UnsupportedMessage included
        raise Unanswerable(f"exiRequest is not a usable ISO 15118-20 message: {exc.message}", "InvalidExi") from None
    if not isinstance(message, CertificateInstallationReq):
        raise Unanswerable(
            f"action Install needs a -20 CertificateInstallationReq, not a {type(message).__name__}", "ActionMismatch"
        )
    return message


# -- the pipeline ----------------------------------------------------------------------------------


def _provision(
    ctx: Context,
    request: CertificateInstallationReq,
    limit: int,
    ocpp_emaids: Sequence[str] | None,
    actor: str,
) -> ProvisioningResult:
    seed_oem_roots(ctx)  # its own transaction, before the snapshot the request is answered from
    now = ctx.clock.now()
    with ctx.database.read() as session:
        connection = session.connection()
        directory = ctx.ca_directory(connection)
        car = _verified_car(ctx, connection, directory, request, now)
        ranked = _ranked_contracts(connection, car.pcid, request.prioritized_emaids or tuple(ocpp_emaids or ()), now)
        awaiting = [c for c in ranked if not _has_current_certificate(session, directory, c, now)] or ranked[:1]
        maximum = request.maximum_contract_certificate_chains
        if maximum < 1:
            raise Refused20(
                ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE,
                "the vehicle accepts no contract certificate chain (MaximumContractCertificateChains = 0)",
                "NoRoom",
            )
        contract, remaining = awaiting[0], min(len(awaiting) - 1, maximum - 1)
        cps = find_cps_chain(ctx, session, directory, request.root_certificate_ids, now, standard=ISO15118_20)
        if cps is None:
            listed = "; ".join(f"{r.issuer_name} #{r.serial_number:X}" for r in request.root_certificate_ids[:5])
            raise Refused20(
                ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE,
                f"no ISO 15118-20 CPS certificate below any V2G root the vehicle trusts ({listed})",
                "NoCpsChain",
            )
        mo_ca = _contract_issuer(directory)
        renew = repository.has_current_for_identity(session, ProfileName.CONTRACT.value, contract.emaid)
    mo_subs = tuple(der(c) for c in directory.presented(mo_ca))
    return _issue(ctx, request, car, contract, remaining, cps, mo_ca, mo_subs, renew, now, limit, actor)


def _issue(
    ctx: Context,
    request: CertificateInstallationReq,
    car: _Car,
    contract: ContractView,
    remaining: int,
    cps: CpsChain,
    mo_ca: str,
    mo_subs: tuple[bytes, ...],
    renew: bool,
    now: dt.datetime,
    limit: int,
    actor: str,
) -> ProvisioningResult:
    # [V2G20-2496]: the contract key lives in this call only; the response holds it encrypted.
    contract_key = new_contract_key(car.curve)
    signed: dict[str, str] = {}

    def before_store(certificate: x509.Certificate) -> None:
        # From the certificate signed last, as for -2: issuance signs again when it retries.
        signed["serial"] = serial_hex(certificate.serial_number)
        signed["exi"] = _signed_response(ctx, request, car, cps, certificate, mo_subs, contract_key, remaining, now)
        if len(signed["exi"]) > limit:
            raise ResponseTooLarge(
                f"the exiResponse would be {len(signed['exi'])} characters, over the limit of {limit}: use OCPP 2.1 "
                "(17,000) or a station that advertises a larger Get15118EVCertificateResponse.exiResponse field"
            )

    def link_contract(connection: Connection, _row_id: int) -> None:
        contract_registry.record_contract_certificate(
            connection, contract, mo_ca, signed["serial"], at=now, actor=actor
        )

    try:
        issued = issue(
            ctx,
            IssueRequest(
                profile=ProfileName.CONTRACT.value,
                csr=_contract_csr(contract.emaid, contract_key),
                identity=RequestIdentity(emaid=contract.emaid),
                ca_id=mo_ca,
                validity=_contract_validity(contract, now),
                renew=renew,
                before_store=before_store,
                in_transaction=link_contract,
            ),
            actor,
        )
    except ResponseTooLarge as exc:
        raise Unanswerable(str(exc), "TooLarge") from None
    except Conflict as exc:  # the contract was revoked while this request was being answered
        raise Refused20(ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE, exc.message, "ContractCanceled") from None
    except EvpkiError as exc:
        raise Refused20(
            ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE,
            f"the contract certificate could not be issued: {exc.message}",
            "IssuanceFailed",
        ) from None
    log.info(
        "-20 contract certificate %s/%s issued for %s (%s, %d more to hand out)",
        issued.certificate.issuer_id,
        issued.certificate.serial,
        contract.emaid,
        car.curve.value,
        remaining,
    )
    return ProvisioningResult(
        "Accepted",
        signed["exi"],
        ResponseCode.OK,
        None,
        emaid=contract.emaid,
        contract_certificate_serial=issued.certificate.serial,
        contract_certificate_issuer=issued.certificate.issuer_id,
        remaining_contracts=remaining,
    )


def _verified_car(
    ctx: Context, connection: Connection, directory: CaDirectory, request: CertificateInstallationReq, now: dt.datetime
) -> _Car:
    chain = request.oem_provisioning_certificate_chain
    oem = _parse(chain.certificate, "the OEM provisioning certificate")
    subs = tuple(_parse(d, "an OEM sub-CA certificate") for d in chain.sub_certificates)
    try:
        verify_fragment(
            request.header.signature, chain, oem.public_key(), what="the vehicle's OEM provisioning signature"
        )
    except EvpkiError as exc:
        raise Refused20(ResponseCode.FAILED_SIGNATURE_ERROR, exc.message, "SignatureError") from None
    what = "the OEM provisioning certificate"
    try:
        path = validate_path(oem, subs, _oem_trust20(ctx, directory, connection, now), now, what=what)
        check_revocation(connection, directory, path, what)
    except ChainRejected as exc:
        expired = exc.response_code is ResponseCode2.FAILED_CERTIFICATE_EXPIRED
        code = (
            ResponseCode.WARNING_CERTIFICATE_EXPIRED if expired else ResponseCode.WARNING_CERTIFICATE_VALIDATION_ERROR
        )
        raise Refused20(code, exc.message, "Expired" if expired else "CertChainError") from None
    except Refused as exc:
        revoked = exc.response_code is ResponseCode2.FAILED_CERTIFICATE_REVOKED
        code = (
            ResponseCode.WARNING_CERTIFICATE_REVOKED if revoked else ResponseCode.WARNING_CERTIFICATE_VALIDATION_ERROR
        )
        raise Refused20(code, exc.reason, exc.reason_code) from None
    curve, agreement_key = _agreement(oem)
    return _Car(common_name(oem), curve, agreement_key)


def _parse(data: bytes, what: str) -> x509.Certificate:
    certificate = readable_certificate(data)
    if certificate is None:
        raise Refused20(ResponseCode.WARNING_CERTIFICATE_VALIDATION_ERROR, f"{what} is not DER", "BadCertificate")
    return certificate


def _agreement(oem: x509.Certificate) -> tuple[ECDHCurve, AgreementKey]:
    """[V2G20-2534]: P-521 agrees with the certificate's key, Ed448 with its alternate X448 key."""
    key = oem.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ECDHCurve.SECP521, key  # the signature check accepted P-521 only
    assert isinstance(key, ed448.Ed448PublicKey)
    try:
        value = oem.extensions.get_extension_for_oid(ALT_PUBLIC_KEY_OID).value
        alternate = serialization.load_der_public_key(value.value)  # type: ignore[attr-defined]
    except (x509.ExtensionNotFound, ValueError, AttributeError):
        alternate = None
    if not isinstance(alternate, x448.X448PublicKey):
        raise Refused20(
            ResponseCode.WARNING_CERTIFICATE_VALIDATION_ERROR,
            "the Ed448 OEM provisioning certificate carries no X448 alternate public key ([V2G20-2534])",
            "NoAgreementKey",
        )
    return ECDHCurve.X448, alternate


def _oem_trust20(ctx: Context, directory: CaDirectory, connection: Connection, now: dt.datetime) -> TrustStore:
    """The -2 OEM trust (setting, trust store) and our own OEM provisioning CAs, whatever the setting names."""
    configured = oem_trust(ctx, directory, connection, now)
    own = own_trust(directory, ProfileName.OEM_PROVISIONING)
    anchors = (*configured.anchors, *(a for a in own.anchors if a not in configured.anchors))
    return TrustStore(anchors, (*configured.intermediates, *own.intermediates))


def _ranked_contracts(
    connection: Connection, pcid: str, prioritized: Sequence[str], now: dt.datetime
) -> list[ContractView]:
    try:
        contracts = contract_registry.active_for_pcid(connection, pcid, now)
    except EvpkiError as exc:  # a CN that is not a PCID
        raise Refused20(ResponseCode.WARNING_NO_CONTRACT_MATCHING_PCID_FOUND, exc.message, "NoContract") from None
    if not contracts:
        raise Refused20(
            ResponseCode.WARNING_NO_CONTRACT_MATCHING_PCID_FOUND,
            f"no active contract for the vehicle {pcid}",
            "NoContract",
        )
    wanted = {emaid.replace("-", "").upper(): n for n, emaid in enumerate(prioritized)}
    # Stable: the car's order first, then the registry's (priority, then the oldest).
    return sorted(contracts, key=lambda c: wanted.get(c.emaid, len(wanted)))


def _has_current_certificate(
    session: Session, directory: CaDirectory, contract: ContractView, now: dt.datetime
) -> bool:
    """Whether the contract's current certificate is a valid -20 one (the car has had it)."""
    current = contract.current_certificate
    if current is None or current.issuer_id not in directory.cas:
        return False
    if directory.cas[current.issuer_id].standard != ISO15118_20:
        return False
    found = repository.core_connection(session).execute(
        _CERTIFICATE_STATUS, {"issuer_id": current.issuer_id, "serial": current.serial}
    )
    row = found.first()
    return row is not None and row.status == "valid" and utc(row.not_after) > now


_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
_CERTIFICATE_STATUS = select(_CERTIFICATE.c.status, _CERTIFICATE.c.not_after).where(
    _CERTIFICATE.c.issuer_id == bindparam("issuer_id"), _CERTIFICATE.c.serial == bindparam("serial")
)


def _contract_issuer(directory: CaDirectory) -> str:
    issuers = [
        entry.id
        for entry in directory.cas.values()
        if ProfileName.CONTRACT.value in entry.issues and entry.standard == ISO15118_20
    ]
    if len(issuers) != 1:
        raise Refused20(
            ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE,
            f"this PKI needs exactly one ISO 15118-20 CA issuing contract certificates, not {len(issuers)} "
            "(`evpki init --iso15118-20`)",
            "NoContractCa",
        )
    return issuers[0]


def _contract_validity(contract: ContractView, now: dt.datetime) -> dt.timedelta | None:
    if contract.valid_until is None:
        return None
    left = contract.valid_until - now
    if left <= dt.timedelta(0):
        raise Refused20(
            ResponseCode.WARNING_NO_CERTIFICATE_AVAILABLE, f"the contract {contract.emaid} has ended", "Ended"
        )
    return min(get_profile(ProfileName.CONTRACT.value).default_validity, left)


def _contract_csr(emaid: str, key: ContractKey) -> bytes:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, emaid), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "MO")]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    csr = builder.sign(key, hashes.SHA512() if isinstance(key, ec.EllipticCurvePrivateKey) else None)
    return csr.public_bytes(Encoding.DER)


# -- the response ----------------------------------------------------------------------------------


def _signed_response(
    ctx: Context,
    request: CertificateInstallationReq,
    car: _Car,
    cps: CpsChain,
    certificate: x509.Certificate,
    mo_subs: tuple[bytes, ...],
    contract_key: ContractKey,
    remaining: int,
    now: dt.datetime,
) -> str:
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    wrapped = encrypt_contract_key(contract_key, car.agreement_key, pcid=car.pcid, ski=ski)
    data = SignedInstallationData(
        id=_DATA_ID,
        contract_certificate_chain=ContractCertificateChain(certificate=der(certificate), sub_certificates=mo_subs),
        ecdh_curve=wrapped.curve,
        dh_public_key=wrapped.dh_public_key,
        encrypted_private_key=EncryptedPrivateKey(wrapped.key_type, wrapped.encrypted_private_key),
    )
    signer = ctx.keys.load(cps.key_id)
    signature = sign_fragment(data, lambda b: signer.sign_bytes(b, rsa_pss=False), cps.leaf.public_key())
    response = CertificateInstallationRes(
        header=MessageHeader(session_id=request.header.session_id, timestamp=_timestamp(now), signature=signature),
        response_code=ResponseCode.OK,
        evse_processing=Processing.FINISHED,
        cps_certificate_chain=CertificateChain(certificate=der(cps.leaf), sub_certificates=cps.sub_certificates),
        signed_installation_data=data,
        remaining_contract_certificate_chains=remaining,
    )
    return base64.b64encode(exi20.encode_message(response)).decode("ascii")


def _failure_response(session_id: bytes, response_code: ResponseCode, now: dt.datetime) -> str:
    """An unsigned response carrying only ``response_code``; the elements the schema requires are placeholders."""
    data = SignedInstallationData(
        id=_DATA_ID,
        contract_certificate_chain=ContractCertificateChain(certificate=_PLACEHOLDER, sub_certificates=(_PLACEHOLDER,)),
        ecdh_curve=ECDHCurve.SECP521,
        dh_public_key=bytes(133),
        encrypted_private_key=EncryptedPrivateKey(EncryptedKeyType.SECP521, bytes(94)),
    )
    response = CertificateInstallationRes(
        header=MessageHeader(session_id=session_id, timestamp=_timestamp(now)),
        response_code=response_code,
        evse_processing=Processing.FINISHED,
        cps_certificate_chain=CertificateChain(certificate=_PLACEHOLDER),
        signed_installation_data=data,
        remaining_contract_certificate_chains=0,
    )
    return base64.b64encode(exi20.encode_message(response)).decode("ascii")


def _timestamp(now: dt.datetime) -> int:
    return int(now.timestamp())
