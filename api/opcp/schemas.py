"""Request bodies of the OPCP routes, with the field names the published specs use on the wire.

Unknown fields are accepted and ignored, as the published schemas allow them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EndpointIn",
    "EndpointUpdateIn",
    "ProvisioningCertificateBody",
    "RootCaIn",
    "SignedContractDataRequestBody",
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
