"""``pki.contracts``: the contract registry and contract provisioning (OCPP Get15118EVCertificate)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pki.iso15118 import authorization, contract_registry, contract_revocation
from pki.iso15118.contract_views import ContractRevocation, ContractView
from pki.iso15118.provisioning import ProvisioningResult, provision
from pki.revocation.services import Crls
from pki.runtime.context import Context

__all__ = ["Contracts"]


class Contracts:
    """``pki.contracts``: which vehicle holds which contract, and the contract certificates it gets."""

    def __init__(self, ctx: Context, crls: Crls) -> None:
        self._ctx = ctx
        self._crls = crls

    def add(
        self,
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
        """Record that vehicle ``pcid`` holds contract ``emaid`` (ISO 15118).

        One contract per PCID at a time, unless ``concurrent``: then it may overlap the PCID's others
        (ISO 15118-20 hands a car several). ``priority`` orders a PCID's contracts, lower first.
        """
        return contract_registry.add_contract(
            self._ctx,
            emaid=emaid,
            pcid=pcid,
            valid_from=valid_from,
            valid_until=valid_until,
            validity=validity,
            note=note,
            priority=priority,
            concurrent=concurrent,
            actor=actor,
        )

    def list(
        self, *, pcid: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ContractView]:
        return contract_registry.list_contracts(self._ctx, pcid=pcid, status=status, limit=limit, offset=offset)

    def get(self, emaid: str) -> ContractView:
        """By eMAID, with or without separators."""
        return contract_registry.get_contract(self._ctx, emaid)

    def revoke(
        self, emaid: str, *, note: str | None = None, actor: str = "system", publish_crls: bool = True
    ) -> ContractRevocation:
        """Revoke the contract and its usable contract certificates (cessationOfOperation), then the CRLs."""
        result = contract_revocation.revoke_contract(self._ctx, emaid, note=note, actor=actor)
        if publish_crls:
            for ca_id in sorted({ref.issuer_id for ref in result.revoked_certificates}):
                self._crls.publish(ca_id)
        return result

    def authorize(
        self,
        *,
        certificate: str | None = None,
        hash_data: Sequence[authorization.HashEntry] = (),
        id_token: str | None = None,
        foreign: authorization.ForeignStatus,
    ) -> authorization.AuthorizationDecision:
        """OCPP C07 Plug & Charge authorization of a contract chain (PEM) or its OCSP hash data.

        ``foreign`` answers the revocation status of certificates of CAs that are not ours (the
        edge asks their OCSP responders); see :mod:`pki.iso15118.authorization`.
        """
        if certificate:
            return authorization.authorize_chain(self._ctx, certificate, id_token=id_token, foreign=foreign)
        return authorization.authorize_hashes(self._ctx, hash_data, id_token=id_token, foreign=foreign)

    def provision(
        self,
        *,
        iso15118_schema_version: str,
        action: str,
        exi_request: str,
        ocpp_version: str = "2.0.1",
        max_response_chars: int | None = None,
        maximum_contract_certificate_chains: int | None = None,
        prioritized_emaids: Sequence[str] | None = None,
        actor: str = "csms",
    ) -> ProvisioningResult:
        """Answer an OCPP Get15118EVCertificate request (see :mod:`pki.iso15118.provisioning`).

        Never raises for the request's content: every outcome is an OCPP status (Accepted with an
        EXI response, possibly carrying a FAILED_* ResponseCode, or Failed with a reason). ISO 15118-20
        (``iso15118_schema_version`` ``urn:iso:std:iso:15118:-20:CommonMessages``) hands out one of the
        car's contracts per request and says how many remain (``remaining_contracts``);
        ``maximum_contract_certificate_chains`` and ``prioritized_emaids`` are OCPP 2.1's copies of
        what its EXI request carries.
        """
        return provision(
            self._ctx,
            iso15118_schema_version=iso15118_schema_version,
            action=action,
            exi_request=exi_request,
            ocpp_version=ocpp_version,
            max_response_chars=max_response_chars,
            maximum_contract_certificate_chains=maximum_contract_certificate_chains,
            prioritized_emaids=prioritized_emaids,
            actor=actor,
        )
