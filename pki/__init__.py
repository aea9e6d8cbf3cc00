"""evpki's domain: profiles, hierarchy, CSR policy, issuance, revocation, CRLs, audit, store and keys.

Edges use :class:`pki.service.PKI`; errors come from :mod:`pki.core.errors`.
"""

from pki.ca.policy import RequestIdentity
from pki.core.errors import Conflict, EvpkiError, IntegrityError, InvalidInput, NotFound, PolicyViolation, Unavailable
from pki.core.settings import Settings
from pki.service import PKI

__all__ = [
    "PKI",
    "Conflict",
    "EvpkiError",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "PolicyViolation",
    "RequestIdentity",
    "Settings",
    "Unavailable",
]
