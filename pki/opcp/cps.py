"""The Certificate Provisioning Service for MOs with their own PKI (OPCP ``cps.v1.json``,
``03_certificate-provisioning-service.md``): the MO supplies the contract data -- its contract
certificate chain, the contract key it encrypted for the vehicle and the DH public key of that
encryption (ISO 15118-2 [V2G2-818]) -- and the CPS signs it with its CPS leaf.

Checked before anything is signed, first failure wins (:class:`InvalidInput`, HTTP 400):

1. the eMAID is the MO's (else 403) and is the contract certificate's CN;
2. the contract certificate chains through the supplied sub-CAs to a trusted MO root (the trust
   store's ``MORootCertificate`` or one of our MO roots), none expired;
3. the encrypted key is 48 bytes and the DH public key an uncompressed P-256 point (65 bytes);
4. a usable ISO 15118-2 CPS leaf exists below the V2G root asked for (the RCP id of
   ``cpsV2GRootCertificateFingerprint``) or any V2G root.

The answer is a CertificateInstallationRes, base64 EXI like every other OPCP signed contract data:
the four Id-carrying elements signed by the CPS leaf (ISO 15118-2 [V2G2-771]). Its header's
SessionID is zero: the signature does not cover the header, so whoever hands the response to the
car puts the session's id in. Nothing is stored; each signing has its audit record
(``opcp-cps-sign``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from pki.ca.profiles import ProfileName
from pki.ca.root_uses import RootUse
from pki.ca.trust_store import trusted_roots
from pki.core.errors import InvalidInput
from pki.iso15118.chains import ChainRejected, TrustStore, validate_path
from pki.iso15118.cps import cps_signed_fields
from pki.iso15118.exi import encode_message
from pki.iso15118.keywrap import DH_PUBLIC_KEY_BYTES, ENCRYPTED_KEY_BYTES
from pki.iso15118.trust_anchors import own_trust
from pki.opcp.access import Operation, Principal, authorize, normalise_emaid, parse_pcid
from pki.opcp.ccp import ContractPool
from pki.opcp.certinfo import ISO2_NAMESPACE, common_name, der, fingerprints, load_b64_certificate
from pki.opcp.generate import ContractRequestIn, GeneratedContract, generate_contract_data
from pki.opcp.rcp import root_certificate_id
from pki.opcp.signers import cps_chain_below
from pki.operations import audit
from pki.runtime.context import Context

__all__ = ["ContractDataIn", "ProvisioningService", "SignedContractDataOut"]

_SESSION_ID = b"\x00" * 8
_ISO15118_2 = "iso15118-2"


@dataclass(frozen=True, slots=True)
class ContractDataIn:
    """What an MO with its own PKI supplies: Base64 DER certificates, Base64 key and DH public key."""

    emaid: str | None  # None: the contract certificate's CN
    contract_certificate: str
    sub_certificates: tuple[str, ...]  # MO sub-CA 2 first, then sub-CA 1
    encrypted_private_key: str
    dh_public_key: str
    pcid: str | None = None
    xsd_msg_def_namespace: str = ISO2_NAMESPACE
    cps_root_id: str | None = None  # the RCP id of the V2G root whose CPS shall sign


@dataclass(frozen=True, slots=True)
class SignedContractDataOut:
    emaid: str
    pcid: str | None
    signed_data: str  # base64 EXI CertificateInstallationRes
    root_id: str
    root_name: str

    def as_opcp(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "emaid": self.emaid,
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
            "signedData": self.signed_data,
            "cpsV2GRootCertificateFingerprint": self.root_id,
            "cpsRootDistinguishedName": self.root_name,
        }
        if self.pcid is not None:
            body["pcid"] = self.pcid
        return body


def _b64(text: str, field: str, size: int) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidInput(f"{field} : not Base64") from None
    if len(value) != size:
        raise InvalidInput(f"{field} : must be {size} bytes (ISO 15118-2), not {len(value)}")
    return value


class ProvisioningService:
    """``pki.opcp.cps``: contract data of MOs with their own PKI, signed by our CPS."""

    def __init__(self, ctx: Context, pool: ContractPool) -> None:
        self._ctx = ctx
        self._pool = pool

    def generate(self, principal: Principal, data: ContractRequestIn) -> GeneratedContract:
        """``generateSignedContractData`` (MO without its own PKI): :mod:`pki.opcp.generate`."""
        return generate_contract_data(self._ctx, principal, data)

    def forward(self, principal: Principal, data: ContractDataIn) -> SignedContractDataOut:
        """``createAndForwardSignedContractData``: sign (see :meth:`sign`) and store the result in the CCP."""
        authorize(principal, Operation.CREATE_AND_FORWARD_SIGNED_CONTRACT_DATA)
        if data.pcid is None:
            raise InvalidInput("pcid : the vehicle the signed contract data is forwarded for is required")
        signed = self.sign(principal, data)
        assert signed.pcid is not None
        self._pool.store(
            principal, pcid=signed.pcid, emaid=signed.emaid, signed_data=signed.signed_data, root_id=signed.root_id
        )
        return signed

    def sign(self, principal: Principal, data: ContractDataIn) -> SignedContractDataOut:
        """``createSignedContractData`` / ``contractData/signed``: see the module for the checks."""
        authorize(principal, Operation.CREATE_SIGNED_CONTRACT_DATA)
        contract = load_b64_certificate(data.contract_certificate)
        if contract is None:
            raise InvalidInput("Invalid certificate format on contractCertificate")
        emaid = normalise_emaid(data.emaid if data.emaid is not None else common_name(contract) or "")
        authorize(principal, Operation.CREATE_SIGNED_CONTRACT_DATA, emaid=emaid)
        if data.xsd_msg_def_namespace != ISO2_NAMESPACE:
            raise InvalidInput(f"xsdMsgDefNamespace : the CPS signs supplied contract data for {ISO2_NAMESPACE}")
        pcid = parse_pcid(data.pcid) if data.pcid is not None else None
        subs: list[x509.Certificate] = []
        for n, text in enumerate(data.sub_certificates[:2]):
            sub = load_b64_certificate(text)
            if sub is None:
                raise InvalidInput(f"Invalid certificate format on a contract sub-CA certificate ({n + 1})")
            subs.append(sub)
        if not subs:
            raise InvalidInput("the contract certificate's sub-CA certificates are missing")
        if (common_name(contract) or "").replace("-", "").upper() != emaid:
            raise InvalidInput(f"the contract certificate's CN is not the eMAID {emaid}")
        if not isinstance(contract.public_key(), ec.EllipticCurvePublicKey):
            raise InvalidInput("the contract certificate's key must be an ISO 15118-2 P-256 key")
        encrypted = _b64(data.encrypted_private_key, "contractSignatureEncryptedPrivateKey", ENCRYPTED_KEY_BYTES)
        dh_public_key = _b64(data.dh_public_key, "dHpublickey", DH_PUBLIC_KEY_BYTES)
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh_public_key)
        except ValueError:
            raise InvalidInput("dHpublickey : not a P-256 point") from None
        now = self._ctx.clock.now()
        with self._ctx.database.read() as session:
            directory = self._ctx.ca_directory(session.connection())
            own = own_trust(directory, ProfileName.CONTRACT)
            anchors = (*own.anchors, *(r for r in trusted_roots(session, RootUse.MO, now) if r not in own.anchors))
            try:
                path = validate_path(
                    contract, subs, TrustStore(anchors, own.intermediates), now, what="contractCertificate"
                )
            except ChainRejected as exc:
                raise InvalidInput(f"the contract chain does not lead to a trusted MO root: {exc.message}") from None
            cps, root = cps_chain_below(self._ctx, session, directory, data.cps_root_id, now)
        signed = cps_signed_fields(
            self._ctx, cps, der(contract), tuple(der(s) for s in subs), encrypted, dh_public_key, emaid
        )
        exi = encode_message(signed.installation_res(_SESSION_ID))
        root_id = root_certificate_id(RootUse.V2G, fingerprints(root)[0])
        with self._ctx.database.write() as session:
            audit.append(
                session,
                at=now,
                actor=principal.actor,
                action="opcp-cps-sign",
                details={
                    "emaid": emaid,
                    "pcid": pcid,
                    "contractCertificate": fingerprints(contract)[0],
                    "moRoot": fingerprints(path[-1])[0],
                    "cps": fingerprints(cps.leaf)[0],
                },
            )
        return SignedContractDataOut(
            emaid, pcid, base64.b64encode(exi).decode(), root_id, root.subject.rfc4514_string()
        )
