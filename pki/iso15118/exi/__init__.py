"""Pure-Python EXI codec for the ISO 15118-2 certificate messages (schema-informed, bit-packed,
non-strict grammars, no string table — the options every ISO 15118-2 peer uses).

Handles whole ``V2G_Message`` documents whose body is CertificateInstallationReq/Res or
CertificateUpdateReq/Res, the ISO-2 fragments that get signed (the two requests,
ContractSignatureCertChain, ContractSignatureEncryptedPrivateKey, DHpublickey, eMAID) and the
xmldsig ``SignedInfo`` fragment. Anything else is refused with :class:`ExiError` /
:class:`UnsupportedMessage`.

Modules: :mod:`.bits` (bit streams, EXI primitives), :mod:`.grammar` (grammar tables as data),
:mod:`.codec` (the engine and framings), :mod:`.errors`.

Decoding is defensive: input above :data:`MAX_INPUT_BYTES` is refused, lengths are checked
against the remaining input before allocation, integers are read in a bounded number of groups.
Padding bits in the last byte are ignored (EXI says they carry no information), but whole extra
bytes after the end of the document or fragment are an error.
"""

from __future__ import annotations

from pki.iso15118.exi.codec import (
    MAX_INPUT_BYTES,
    Fragment,
    decode_fragment,
    decode_message,
    decode_signed_info,
    encode_fragment,
    encode_message,
    encode_signed_info,
)
from pki.iso15118.exi.errors import ExiError, UnsupportedMessage

__all__ = [
    "MAX_INPUT_BYTES",
    "ExiError",
    "Fragment",
    "UnsupportedMessage",
    "decode_fragment",
    "decode_message",
    "decode_signed_info",
    "encode_fragment",
    "encode_message",
    "encode_signed_info",
]
