"""What a station presents on the WebSocket upgrade, as the transport reads it (HTTP Basic, RFC 7617)."""

from __future__ import annotations

import base64
import binascii

__all__ = ["parse_basic_authorization"]


def parse_basic_authorization(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic`` header (RFC 7617), or None."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        # OCPP 1.6 AuthorizationKey may be raw bytes; latin-1 keeps every byte.
        text = decoded.decode("latin-1")
    user, colon, password = text.partition(":")
    if not colon:
        return None
    return user, password
