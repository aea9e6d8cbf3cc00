"""The EXI codec's exceptions (re-exported by :mod:`pki.iso15118.exi`)."""

from __future__ import annotations

from pki.core.errors import InvalidInput

__all__ = ["ExiError", "UnsupportedMessage"]


class ExiError(InvalidInput):
    """EXI input is malformed, truncated, oversized or out of a schema facet's range (or a value to encode is)."""


class UnsupportedMessage(ExiError):
    """A well-formed ISO 15118-2 document whose body this codec does not handle (e.g. SessionSetupReq).

    ``body`` names the body element; ``session_id`` is the header's SessionID when the header was
    decoded before the body was refused (so a caller can still answer within the session).
    """

    def __init__(self, message: str, body: str, session_id: bytes | None = None) -> None:
        super().__init__(message)
        self.body = body
        self.session_id = session_id
