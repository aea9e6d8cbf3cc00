"""The authority: certificate profiles, CSR policy, the hierarchy and its bootstrap, building and
issuing certificates, root rollover, and which root serves which OCPP certificate use. Facade
services: ``pki.cas`` and ``pki.certificates``.
"""

from __future__ import annotations

from pki.ca.policy import MAX_CSR_CHARS, RequestIdentity, load_csr
from pki.ca.profiles import ProfileName
from pki.ca.root_uses import RootUse
from pki.ca.services import CertificateAuthorities, Certificates
from pki.store.repository import CERTIFICATE_STATUSES, CertificateFilter

__all__ = [
    "CERTIFICATE_STATUSES",
    "MAX_CSR_CHARS",
    "CertificateAuthorities",
    "CertificateFilter",
    "Certificates",
    "ProfileName",
    "RequestIdentity",
    "RootUse",
    "load_csr",
]
