"""The authority: certificate profiles, CSR policy, the hierarchy and its bootstrap, building and
issuing certificates, root rollover, CAs under external parents (their requests and installation),
which root serves which OCPP certificate use, and the trust store of foreign roots.
Facade services: ``pki.cas``, ``pki.certificates`` and ``pki.trust``.
"""

from __future__ import annotations

from pki.ca.ca_requests import CaRequestView
from pki.ca.hierarchy import ISO15118_20_HIERARCHY
from pki.ca.policy import MAX_CSR_CHARS, RequestIdentity, load_csr
from pki.ca.profiles import ProfileName
from pki.ca.root_uses import RootUse
from pki.ca.services import BATCH_LIMIT, CertificateAuthorities, CertificateRequest, Certificates, InstallReport
from pki.ca.trust_files import MAX_TRUST_FILE_BYTES
from pki.ca.trust_store import ImportRefusal, ImportReport, TrustedRootView, TrustStore
from pki.ca.trust_sync import MAX_POOL_ENTRIES, SyncChange, SyncReport
from pki.store.repository import CERTIFICATE_STATUSES, CertificateFilter

__all__ = [
    "BATCH_LIMIT",
    "CERTIFICATE_STATUSES",
    "ISO15118_20_HIERARCHY",
    "MAX_CSR_CHARS",
    "MAX_POOL_ENTRIES",
    "MAX_TRUST_FILE_BYTES",
    "CaRequestView",
    "CertificateAuthorities",
    "CertificateFilter",
    "CertificateRequest",
    "Certificates",
    "ImportRefusal",
    "ImportReport",
    "InstallReport",
    "ProfileName",
    "RequestIdentity",
    "RootUse",
    "SyncChange",
    "SyncReport",
    "TrustStore",
    "TrustedRootView",
    "load_csr",
]
