"""evpki's domain, one package per capability (core, runtime, ca, revocation, stations, firmware,
operations, iso15118; store and keys underneath; the README's "Architecture" has the map).

Edges hold one :class:`PKI`, composed of the capability services (``pki.certificates.issue(...)``,
``pki.revocation.revoke(...)``, ...); errors come from :mod:`pki.core`.
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
