"""The one exception tree of the evpki domain.

Every error the domain raises on purpose derives from :class:`EvpkiError`. The edges map
them in one place each: the CLI to an exit code, the API to an RFC 9457 problem type and
HTTP status, the OCPP handlers to ``Rejected``/``Failed`` with a ``statusInfo`` reason.

- :class:`InvalidInput` -- the input cannot be parsed or is out of range (malformed PEM/DER,
  an unknown reason name, an oversized payload). Nothing was changed.
- :class:`PolicyViolation` -- the input is well formed but a rule forbids it (weak key, wrong
  subject, unknown profile for this CA). ``rule`` names the rule. Nothing was changed.
- :class:`NotFound` -- the named CA or certificate does not exist.
- :class:`Conflict` -- the request contradicts the current state (revoking twice, an
  ambiguous serial, re-using the key being renewed).
- :class:`Unavailable` -- a dependency is missing or unreachable (no key passphrase, a
  database that does not answer, a key that cannot be decrypted).
- :class:`IntegrityError` -- stored state fails a consistency check (a broken audit chain).
- :class:`Unauthenticated` -- an API token is missing, unknown or revoked.
- :class:`VerificationFailed` -- a signature, chain or revocation check failed (a tampered
  firmware file, a signing certificate that is not ours or is revoked).
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "EvpkiError",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "PolicyViolation",
    "Unauthenticated",
    "Unavailable",
    "VerificationFailed",
]


class EvpkiError(Exception):
    """Base of every deliberate evpki error; ``code`` is a stable machine-readable name."""

    code = "evpki-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(EvpkiError, ValueError):
    code = "invalid-input"


class PolicyViolation(EvpkiError, ValueError):
    """A certificate request broke an issuance rule; ``rule`` names it (e.g. ``key.rsa-min-bits``)."""

    code = "policy-violation"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} [rule {rule}]")
        self.rule = rule


class NotFound(EvpkiError, LookupError):
    code = "not-found"


class Conflict(EvpkiError):
    code = "conflict"


class Unavailable(EvpkiError):
    code = "unavailable"


class IntegrityError(EvpkiError):
    code = "integrity-error"


class Unauthenticated(EvpkiError):
    code = "unauthenticated"


class VerificationFailed(EvpkiError):
    code = "verification-failed"
