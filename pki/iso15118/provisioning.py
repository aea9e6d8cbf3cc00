"""ISO 15118-2 contract provisioning: the one entry point behind OCPP Get15118EVCertificate.

:func:`provision` takes the three OCPP fields (``iso15118SchemaVersion``, ``action``,
``exiRequest``) and returns the OCPP answer. The pipeline, in order:

1. base64 → EXI → :class:`~pki.iso15118.messages.V2GMessage`; the body must be the request the
   action names (Install ↔ CertificateInstallationReq, Update ↔ CertificateUpdateReq);
2. the car's signature over its request, made with the OEM provisioning key (Install) or the
   current contract key (Update), and that certificate's path to a trusted root plus its
   revocation status where we issued it (:mod:`pki.iso15118.chains`);
3. the contract: the active one of the PCID (Install) or the one of the eMAID (Update), from the
   registry (:mod:`pki.iso15118.contract_registry`);
4. a CPS chain below one of the V2G roots the car lists in ``ListOfRootCertificateIDs``;
5. a new contract certificate (CN = eMAID, DC=MO) through the issuance pipeline, its key
   encrypted for the car ([V2G2-818]: the OEM key on Install, the old contract key on Update),
   the four elements signed by the CPS leaf, the response encoded with the request's SessionID.

Steps 1 and 2, the car's request read and verified, are :mod:`pki.iso15118.provisioning_request`;
this module holds the pipeline and steps 3 to 5.

The response is built and its size checked *before* the certificate is stored, so a response
that would break the OCPP field limit fails clearly and leaves nothing behind; the certificate
row, its audit record and the contract's new current certificate commit in one transaction.

OCPP status and ISO ResponseCode: ``Accepted`` means an EXI response is included (OCPP 2.0.1
Iso15118EVCertificateStatusEnumType) -- also when it carries a ``FAILED_*`` ResponseCode the car
must see. ``Failed`` (with ``exiResponse = ""``, which the schema still requires) is for a
request we cannot answer in EXI at all: not base64, not EXI, another body, another schema, an
answer that would not fit the field.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection

from pki.ca.authority import serial_hex
from pki.ca.issuance import IssueRequest, issue
from pki.ca.policy import RequestIdentity
from pki.ca.profiles import ProfileName, get_profile
from pki.core.errors import Conflict, EvpkiError
from pki.iso15118 import contract_input, contract_registry
from pki.iso15118.contract_views import ContractView
from pki.iso15118.cps import ResponseTooLarge, common_name, der, failure_response, find_cps_chain, signed_response
from pki.iso15118.messages import CertificateInstallationReq, CertificateUpdateReq, ResponseCode, V2GMessage
from pki.iso15118.provisioning20 import provision20
from pki.iso15118.provisioning_request import (
    Refused,
    Unanswerable,
    decode_request,
    expected_body,
    is_iso15118_20,
    parse_action,
    response_limit,
    verify_installation,
    verify_update,
)
from pki.iso15118.provisioning_result import ProvisioningResult
from pki.iso15118.trust_anchors import seed_oem_roots
from pki.runtime.context import ISO15118_2, CaDirectory, Context
from pki.store import repository

__all__ = ["ProvisioningResult", "contract_csr", "contract_issuers", "provision"]

log = logging.getLogger("evpki.iso15118")


def provision(
    ctx: Context,
    *,
    iso15118_schema_version: str,
    action: str,
    exi_request: str,
    ocpp_version: str = "2.0.1",
    max_response_chars: int | None = None,
    maximum_contract_certificate_chains: int | None = None,
    prioritized_emaids: Sequence[str] | None = None,
    actor: str = "csms",
    decoded: V2GMessage | None = None,
) -> ProvisioningResult:
    """Answer one Get15118EVCertificate request; never raises for anything the request contains.

    An ``iso15118_schema_version`` naming ISO 15118-20 goes to :mod:`pki.iso15118.provisioning20`
    (with OCPP 2.1's ``maximumContractCertificateChains`` and ``prioritizedEMAIDs``). ``decoded``
    is an ISO 15118-2 caller's own ``decode_request(exi_request, iso15118_schema_version,
    ocpp_version)``, when it has made it already (the OPCP contract pool does).
    """
    try:
        limit = response_limit(ocpp_version, max_response_chars)
        if is_iso15118_20(iso15118_schema_version):
            return provision20(
                ctx,
                action=action,
                exi_request=exi_request,
                ocpp_version=ocpp_version,
                limit=limit,
                maximum_contract_certificate_chains=maximum_contract_certificate_chains,
                prioritized_emaids=prioritized_emaids,
                actor=actor,
            )
        parsed_action = parse_action(action)
        message = decoded if decoded is not None else decode_request(exi_request, iso15118_schema_version, ocpp_version)
        request = expected_body(message, parsed_action)
        try:
            return _provision(ctx, message, request, limit, actor)
        except Refused as refusal:
            log.warning("Get15118EVCertificate refused with %s: %s", refusal.response_code.value, refusal.reason)
            emaid = request.emaid if isinstance(request, CertificateUpdateReq) else None
            exi = failure_response(request, message.header.session_id, refusal.response_code, emaid)
            return ProvisioningResult(
                "Accepted", exi, refusal.response_code, refusal.reason, refusal.reason_code, emaid=emaid
            )
    except Unanswerable as failure:
        log.warning("Get15118EVCertificate failed: %s", failure.reason)
        return ProvisioningResult("Failed", "", None, failure.reason, failure.reason_code)


# -- the pipeline ----------------------------------------------------------------------------------


def _provision(
    ctx: Context,
    message: V2GMessage,
    request: CertificateInstallationReq | CertificateUpdateReq,
    limit: int,
    actor: str,
) -> ProvisioningResult:
    if isinstance(request, CertificateInstallationReq):
        seed_oem_roots(ctx)  # its own transaction, before the snapshot the request is answered from
    now = ctx.clock.now()
    with ctx.database.read() as session:
        directory = ctx.ca_directory(session.connection())
        if isinstance(request, CertificateInstallationReq):
            car_certificate = verify_installation(ctx, session.connection(), directory, message, request, now)
            pcid = common_name(car_certificate)
            contract = _contract_for_pcid(session.connection(), pcid, now)
        else:
            car_certificate = verify_update(ctx, session.connection(), directory, message, request, now)
            contract = _contract_for_update(session.connection(), request, car_certificate, now)
        cps = find_cps_chain(ctx, session, directory, request.root_certificate_ids, now, standard=ISO15118_2)
        if cps is None:
            listed = "; ".join(f"{r.issuer_name} #{r.serial_number:X}" for r in request.root_certificate_ids[:5])
            raise Refused(
                ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE,
                f"no CPS certificate below any V2G root the vehicle trusts ({listed})",
                "NoCpsChain",
            )
        mo_ca = _contract_issuer(directory)
        renew = repository.has_current_for_identity(session, ProfileName.CONTRACT.value, contract.emaid)
    mo_subs = tuple(der(certificate) for certificate in directory.presented(mo_ca))
    peer = car_certificate.public_key()
    assert isinstance(peer, ec.EllipticCurvePublicKey)  # checked by the signature verification
    contract_key = ec.generate_private_key(ec.SECP256R1())
    # From the certificate signed last: issuance signs again when it retries (a CA changed, a serial
    # collided), and only the last certificate signed is the one stored and linked to the contract.
    signed: dict[str, str] = {}

    def before_store(certificate: x509.Certificate) -> None:
        signed["serial"] = serial_hex(certificate.serial_number)
        signed["exi"] = signed_response(ctx, request, message, cps, certificate, mo_subs, contract_key, peer, limit)

    def link_contract(connection: Connection, _row_id: int) -> None:
        contract_registry.record_contract_certificate(
            connection, contract, mo_ca, signed["serial"], at=now, actor=actor
        )

    try:
        issued = issue(
            ctx,
            IssueRequest(
                profile=ProfileName.CONTRACT.value,
                csr=contract_csr(contract.emaid, contract_key),
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
        raise Refused(ResponseCode.FAILED_CONTRACT_CANCELED, exc.message, "ContractCanceled") from None
    except EvpkiError as exc:
        raise Refused(
            ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE,
            f"the contract certificate could not be issued: {exc.message}",
            "IssuanceFailed",
        ) from None
    log.info(
        "contract certificate %s/%s issued for %s (%s)",
        issued.certificate.issuer_id,
        issued.certificate.serial,
        contract.emaid,
        type(request).__name__,
    )
    return ProvisioningResult(
        "Accepted",
        signed["exi"],
        ResponseCode.OK,
        None,
        emaid=contract.emaid,
        contract_certificate_serial=issued.certificate.serial,
        contract_certificate_issuer=issued.certificate.issuer_id,
    )


def _contract_for_pcid(connection: Connection, pcid: str, now: dt.datetime) -> ContractView:
    try:
        contract = contract_registry.find_active_for_pcid(connection, pcid, now)
    except EvpkiError as exc:  # a CN that is not a PCID
        raise Refused(ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE, exc.message, "NoContract") from None
    if contract is None:
        raise Refused(
            ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE, f"no active contract for the vehicle {pcid}", "NoContract"
        )
    return contract


def _contract_for_update(
    connection: Connection, request: CertificateUpdateReq, leaf: x509.Certificate, now: dt.datetime
) -> ContractView:
    try:
        emaid = contract_input.normalise_emaid(request.emaid)
    except EvpkiError as exc:
        raise Refused(ResponseCode.FAILED, exc.message, "BadEmaid") from None
    if contract_input.normalise_emaid(common_name(leaf)) != emaid:
        raise Refused(
            ResponseCode.FAILED_CERT_CHAIN_ERROR,
            f"the request's eMAID {emaid} is not the CN of its contract certificate ({common_name(leaf)})",
            "EmaidMismatch",
        )
    contract = contract_registry.find_for_emaid(connection, emaid, now)
    if contract is None:
        raise Refused(ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE, f"no contract with eMAID {emaid}", "NoContract")
    if contract.status != "active":
        raise Refused(
            ResponseCode.FAILED_CONTRACT_CANCELED, f"the contract {emaid} is {contract.status}", "ContractCanceled"
        )
    return contract


def contract_issuers(directory: CaDirectory, standard: str) -> list[str]:
    """Our CAs of that ISO 15118 edition that issue contract certificates."""
    return [
        entry.id
        for entry in directory.cas.values()
        if ProfileName.CONTRACT.value in entry.issues and entry.standard == standard
    ]


def _contract_issuer(directory: CaDirectory) -> str:
    issuers = contract_issuers(directory, ISO15118_2)
    if len(issuers) != 1:
        raise Refused(
            ResponseCode.FAILED_NO_CERTIFICATE_AVAILABLE,
            f"this PKI needs exactly one ISO 15118-2 CA issuing contract certificates, not {len(issuers)}",
            "NoContractCa",
        )
    return issuers[0]


def _contract_validity(contract: ContractView, now: dt.datetime) -> dt.timedelta | None:
    """The profile's default, cut to the contract's end (RISE-V2G: 4 weeks to 2 years)."""
    default = get_profile(ProfileName.CONTRACT.value).default_validity
    if contract.valid_until is None:
        return None
    left = contract.valid_until - now
    if left <= dt.timedelta(0):
        raise Refused(ResponseCode.FAILED_CONTRACT_CANCELED, f"the contract {contract.emaid} has ended", "Ended")
    return min(default, left)


def contract_csr(emaid: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    # Compact on purpose: six certificates share one exiResponse (reference/iso15118.md §6 risk 2).
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, emaid),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "MO"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(Encoding.DER)
