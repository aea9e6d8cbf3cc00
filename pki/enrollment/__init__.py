"""EST enrollment (RFC 7030): one-time enrollment secrets, bootstrap certificates, the CA an EST URL
names (labels and the OPCP role paths), and the enrollment decision that feeds the one issuance
pipeline. Facade service: ``pki.est``. The HTTP and TLS side is the EST edge's (``api/est``).
"""

from __future__ import annotations

from pki.enrollment.enroll import MAX_BODY_BYTES, REENROLL_PROFILES, Enrolled
from pki.enrollment.secrets import SECRET_PROFILES, SecretView
from pki.enrollment.service import Est
from pki.enrollment.targets import OPCP_ALGORITHMS, OPCP_ROLES, Target

__all__ = [
    "MAX_BODY_BYTES",
    "OPCP_ALGORITHMS",
    "OPCP_ROLES",
    "REENROLL_PROFILES",
    "SECRET_PROFILES",
    "Enrolled",
    "Est",
    "SecretView",
    "Target",
]
