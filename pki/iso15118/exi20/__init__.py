"""Pure-Python EXI codec for the ISO 15118-20 certificate installation (CommonMessages subset).

Handles the documents ``CertificateInstallationReq`` and ``CertificateInstallationRes`` (root
elements of ``urn:iso:std:iso:15118:-20:CommonMessages`` with their CommonTypes ``Header``:
SessionID, TimeStamp, optional xmldsig Signature), the two fragments that get signed —
``OEMProvisioningCertificateChain`` (the EV's signature, [V2G20-1548]) and
``SignedInstallationData`` (the CPS's) — and the xmldsig ``SignedInfo`` fragment, whatever its
algorithms (SHA-512 / ecdsa-sha512 or Ed448, constants in :mod:`pki.iso15118.messages20`). Other
-20 messages raise :class:`UnsupportedMessage` (with the SessionID when their Header decodes);
anything malformed raises :class:`ExiError`, never another exception. :func:`element_tree` gives a
decoded value under the schema's element names (for XML / JSON renderings, ``evpki exi decode --iso20``).

It is the ISO 15118-2 codec's engine (:class:`pki.iso15118.exi.engine.SchemaCodec`, the same
bit primitives and grammar compiler) over the -20 tables in :mod:`.grammar`, with the same
defences: input above 64 KiB refused, lengths checked against the remaining input before
allocation, Unsigned Integers read in a capped number of groups (10 for xs:unsignedLong),
nesting bounded by the acyclic tables, whole extra bytes after the end refused, schema facets
(lengths, bounds, enumerations, choice and sequence order, maxOccurs) enforced on encode and
on decode, ``Id`` values checked as NCNames.

What was established empirically (EXIficient 1.55 in Josev's ``EXICodec.jar``, the grammar
``ISO15118_20_V2G_CI_CommonMessages``; ``tests/interop/test_exi20_differential.py`` keeps
checking it), as reference iso15118.md §3.1 did for -2:

- **Header and options**: every -20 stream, from the jar's JSON codec
  (``EXICodec.encode(json, "urn:iso:std:iso:15118:-20:CommonMessages")``, what Josev peers send) and
  from EXIficient's core with the jar's factory options, starts with the single byte ``0x80``
  (distinguishing bits, no options in the header, no ``$EXI`` cookie); the two produce identical
  bytes. Grammars are schema-informed and **non-strict** (EXIficient's default fidelity): every
  state reserves the escape code, so k productions take ⌈log2(k + 1)⌉ bits. The same message
  encoded with ``FidelityOptions.createStrict()`` gives other bytes; these tables reproduce the
  non-strict ones. No value string table: every string is a literal.
- **Roots and namespaces**: there is no ``V2G_Message`` wrapper; DocContent offers the 54 global
  elements of CommonMessages, CommonTypes and xmldsig sorted by (local name, namespace), then SE(*):
  6-bit codes, ``CertificateInstallationReq`` = 7, ``CertificateInstallationRes`` = 8 (EVerest
  libcbv2g's ``encode_iso20_exiDocument`` uses the same codes). Both schemas qualify elements and
  attributes: ``Header``, ``SessionID``, ``TimeStamp``, ``ResponseCode`` and ``RootCertificateID``
  are CommonTypes elements, ``Signature`` and ``X509IssuerSerial`` content xmldsig, the rest and
  the ``Id`` attributes CommonMessages.
- **Signed fragments**: the -20 fragment grammar lists the 281 element names of the schema set
  sorted the same way, then SE(*) and ED: 9-bit codes, ``OEMProvisioningCertificateChain`` = 128,
  ``SignedInstallationData`` = 231, ED = 282. Each of the two names has one type in the schema
  set, so their typed grammars apply (no element-fragment-grammar case like -2's eMAID).
  EXIficient's fragment mode and libcbv2g's ``encode_iso20_exiFragment`` agree.
- **SignedInfo**: encoded with the xmldsig schema alone, as for -2 (6-bit SE(SignedInfo) = 32,
  ED = 46; libcbv2g's ``encode_iso20_xmldsigFragment`` uses the same codes), so
  :func:`encode_signed_info` is the -2 function; EXIficient's xmldsig grammar agrees for -20
  algorithm URIs too.
- **maxOccurs**: EXIficient's -20 grammar expands all bounded repetitions of this subset —
  SubCertificates' 3 Certificates, PrioritizedEMAIDs' 8 EMAIDs and the 20 RootCertificateIDs
  (after the 20th only a 1-bit EE follows, where its -2 grammar keeps looping).
- **Choice order**: the encrypted-key choice of SignedInstallationData is coded in schema order
  (SECP521 = 0, X448 = 1, TPM = 2), not sorted by name.
"""

from __future__ import annotations

from pki.iso15118.exi import ExiError, UnsupportedMessage, decode_signed_info, encode_signed_info
from pki.iso15118.exi20.codec import (
    Message,
    SignedFragment,
    decode_fragment,
    decode_message,
    element_tree,
    encode_fragment,
    encode_message,
)

__all__ = [
    "ExiError",
    "Message",
    "SignedFragment",
    "UnsupportedMessage",
    "decode_fragment",
    "decode_message",
    "decode_signed_info",
    "element_tree",
    "encode_fragment",
    "encode_message",
    "encode_signed_info",
]
