"""Request bodies of the OPCP routes, with the field names the published specs use on the wire.

Unknown fields are accepted and ignored, as the published schemas allow them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CreateSignedContractDataBody",
    "EndpointIn",
    "EndpointUpdateIn",
    "GenerateSignedContractDataBody",
    "ProvisioningCertificateBody",
    "RootCaIn",
    "SignContractDataBody",
    "SignedContractDataRequestBody",
    "StoredContractDataBody",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class RootCaIn(_Body):
    """``saveRootCa``: a root (Base64 DER) and its type."""

    ca_certificate: str = Field(alias="caCertificate", max_length=8192)
    root_type: str = Field(alias="rootType", max_length=8)


class ProvisioningCertificateBody(_Body):
    """``addOEMProvCert``: the vehicle's provisioning certificate and its sub-CAs, Base64 DER."""

    sub_ca1_certificate: str = Field(alias="subCA1Certificate", max_length=8192)
    sub_ca2_certificate: str | None = Field(default=None, alias="subCA2Certificate", max_length=8192)
    vehicle_certificate: str = Field(alias="vehicleCertificate", max_length=8192)
    xsd_msg_def_namespace: str = Field(default="urn:iso:15118:2:2013:MsgDef", alias="xsdMsgDefNamespace", max_length=64)
    v2g_root_authority_key_identifiers: list[str] = Field(
        default_factory=list, alias="v2gRootAuthorityKeyIdentifiers", max_length=20
    )
    previous_pcid: str | None = Field(default=None, alias="previousPcid", max_length=18)


class EndpointIn(_Body):
    """``create-webhook-endpoint``."""

    url: str = Field(max_length=2048)
    enabled_events: list[str] = Field(alias="enabledEvents", max_length=32)
    description: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] | None = None
    status: str | None = Field(default=None, max_length=16)
    api_version: str | None = Field(default=None, alias="apiVersion", max_length=16)


class EndpointUpdateIn(_Body):
    """``update-webhook-endpoint``: ``url`` always, the rest when given."""

    url: str = Field(max_length=2048)
    enabled_events: list[str] | None = Field(default=None, alias="enabledEvents", max_length=32)
    description: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] | None = None
    status: str | None = Field(default=None, max_length=16)
    api_version: str | None = Field(default=None, alias="apiVersion", max_length=16)


class SignedContractDataRequestBody(_Body):
    """``getSignedContractData``: the car's CertificateInstallationReq, base64 EXI, and its ISO edition."""

    certificate_installation_req: str = Field(alias="certificateInstallationReq", max_length=20_000)
    xsd_msg_def_namespace: str = Field(alias="xsdMsgDefNamespace", max_length=64)
    metadata: str | None = Field(default=None, max_length=1000)


_B64_CERT = 1400  # Base64 of an ISO 15118-2 certificate (at most 800 bytes DER) with room to spare
_ISO2 = "urn:iso:15118:2:2013:MsgDef"


class ContractSignatureCertChainIn(_Body):
    certificate: str = Field(alias="contractSignatureCertChainCertificate", max_length=_B64_CERT)
    sub_certificates: list[str] = Field(alias="contractSignatureCertChainSubCertificates", max_length=2)


class ContractDataChainIn(_Body):
    """``contract-data``: the contract chain, the encrypted contract key and the DH public key."""

    contract_signature_cert_chain: ContractSignatureCertChainIn = Field(alias="contractSignatureCertChain")
    encrypted_private_key: str = Field(alias="contractSignatureEncryptedPrivateKey", max_length=200)
    dh_public_key: str = Field(alias="dHpublickey", max_length=200)
    emaid: str | None = Field(default=None, max_length=20)


class CreateSignedContractDataBody(_Body):
    """``createSignedContractData``."""

    contract_data: ContractDataChainIn = Field(alias="contractData")
    emaid: str = Field(max_length=20)
    pcid: str | None = Field(default=None, max_length=18)
    xsd_msg_def_namespace: str = Field(default=_ISO2, alias="xsdMsgDefNamespace", max_length=64)
    cps_root_id: str | None = Field(default=None, alias="cpsV2GRootCertificateFingerprint", max_length=64)
    meta_data: str | None = Field(default=None, alias="metaData", max_length=1000)


class ContractDataFlatIn(_Body):
    """``ContractData``: the contract certificate and its sub-CAs as separate fields."""

    contract_certificate: str = Field(alias="contractCertificate", max_length=_B64_CERT)
    sub_ca2: str | None = Field(default=None, alias="contractSubCa2Certificate", max_length=_B64_CERT)
    sub_ca1: str = Field(alias="contractSubCa1Certificate", max_length=_B64_CERT)
    encrypted_private_key: str = Field(alias="contractSignatureEncryptedPrivateKey", max_length=200)
    dh_public_key: str = Field(alias="dHpublickey", max_length=200)


class SignContractDataBody(_Body):
    """``contractData/signed``."""

    contract_data: ContractDataFlatIn = Field(alias="contractData")
    pcid: str | None = Field(default=None, max_length=18)
    xsd_msg_def_namespace: str = Field(alias="xsdMsgDefNamespace", max_length=64)
    cps_root_id: str | None = Field(default=None, alias="cpsV2GRootCertificateFingerprint", max_length=64)


class StoredContractDataBody(_Body):
    """``addSignedContractData``: CPS-signed contract data (base64 EXI CertificateInstallationRes) for a vehicle."""

    xsd_msg_def_namespace: str = Field(alias="xsdMsgDefNamespace", max_length=64)
    emaid: str = Field(max_length=20)
    pcid: str = Field(max_length=18)
    signed_data: str = Field(alias="signedContractDataXML", max_length=20_000)
    metadata: str | None = Field(default=None, max_length=1000)
    cps_root_id: str | None = Field(default=None, alias="cpsV2GRootCertificateFingerprint", max_length=36)


class GenerateSignedContractDataBody(_Body):
    """``generateSignedContractData``: the contract our MO CA makes for the vehicle (dates ISO 8601)."""

    contract_begins: str = Field(alias="contractBegins", max_length=40)
    contract_ends: str = Field(alias="contractEnds", max_length=40)
    pcid: str = Field(max_length=18)
    emaid: str = Field(max_length=20)
    xsd_msg_def_namespace: str = Field(default=_ISO2, alias="xsdMsgDefNamespace", max_length=64)
    cps_root_id: str | None = Field(default=None, alias="cpsV2GRootCertificateFingerprint", max_length=64)
    subscription_url: str | None = Field(default=None, alias="subscriptionUrl", max_length=2048)
    meta_data: str | None = Field(default=None, alias="metaData", max_length=1000)
