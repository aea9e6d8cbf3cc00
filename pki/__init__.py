"""evpki's domain: profiles, hierarchy, CSR policy, issuance, revocation, CRLs, audit, store and keys.

Edges use :class:`pki.service.PKI`; errors come from :mod:`pki.errors`.
"""

from pki.errors import Conflict, EvpkiError, IntegrityError, InvalidInput, NotFound, PolicyViolation, Unavailable
from pki.policy import RequestIdentity
from pki.service import PKI
from pki.settings import Settings

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
