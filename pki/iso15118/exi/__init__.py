"""Pure-Python EXI codec for the ISO 15118-2 certificate messages (schema-informed, bit-packed,
non-strict grammars, no string table — the options every ISO 15118-2 peer uses).

Handles whole ``V2G_Message`` documents whose body is CertificateInstallationReq/Res or
CertificateUpdateReq/Res, the ISO-2 fragments that get signed (the two requests,
ContractSignatureCertChain, ContractSignatureEncryptedPrivateKey, DHpublickey, eMAID) and the
xmldsig ``SignedInfo`` fragment. Anything else is refused with :class:`ExiError` /
:class:`UnsupportedMessage`.

Modules: :mod:`.bits` (bit streams, EXI primitives), :mod:`.grammar` (grammar tables as data),
:mod:`.engine` (the schema-independent type walk with facets, shared with the ISO 15118-20 codec
:mod:`pki.iso15118.exi20`), :mod:`.codec` (the ISO-2 adapters and framings), :mod:`.elements` (a
decoded message under the schema's element names, as its XML reads), :mod:`.errors`.

Decisions worth knowing:

- Decoding is defensive: input above :data:`MAX_INPUT_BYTES` is refused, lengths are checked
  against the remaining input before allocation, Unsigned Integers are read in at most 5 groups
  (lengths) or 64 groups (X509SerialNumber, i.e. ≤ 448 bits — RFC 5280 serials need 160).
- Padding bits in the last byte are ignored (EXI says they carry no information), but whole
  extra bytes after the end of the document or fragment are an error.
- Empty simple content (an empty SessionID, Certificate, FaultMsg, ...) is written the way
  EXIficient writes it — the state's escape code followed by the second-level EE — and decoded
  in that form as well as in the plain "CH with length 0" form.
- Schema facets are enforced in both directions; ``Id`` values must be NCNames (xs:ID).
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
