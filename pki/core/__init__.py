"""What every capability shares and nothing in pki/ is below: the error tree, the injectable clock,
settings, names, key algorithms, domain events and owner-only secret files. It imports nothing else
of pki.
"""

from __future__ import annotations

from pki.core import events
from pki.core.clock import Clock, FixedClock, SystemClock, parse_duration, utc
from pki.core.errors import (
    Conflict,
    EvpkiError,
    IntegrityError,
    InvalidInput,
    NotFound,
    PolicyViolation,
    Unauthenticated,
    Unavailable,
    VerificationFailed,
)
from pki.core.secret_files import write_private
from pki.core.settings import Settings

__all__ = [
    "Clock",
    "Conflict",
    "EvpkiError",
    "FixedClock",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "PolicyViolation",
    "Settings",
    "SystemClock",
    "Unauthenticated",
    "Unavailable",
    "VerificationFailed",
    "events",
    "parse_duration",
    "utc",
    "write_private",
]
