"""PKCS#11 key backend: CA and responder keys generated inside a token (an HSM, SoftHSM2 in tests) and used there.

Keys are created on the token as sensitive, non-extractable private keys whose label and
CKA_ID are the key id; nothing ever reads them back. ``cryptography`` cannot sign with a key it
does not hold, so certificates, CRLs and OCSP responses are first built and signed by its
builders with a throw-away key of the same type and size (so every AlgorithmIdentifier is
already right), then the to-be-signed part is signed again by the token and the structure is
reassembled around the token's signature with asn1crypto. Digests are computed here and the token
signs them with its raw mechanisms (CKM_ECDSA, CKM_RSA_PKCS over a DigestInfo, CKM_RSA_PKCS_PSS),
which every PKCS#11 module offers. EdDSA keys are not supported by this backend.

One session per key store, opened on first use (read-only commands never need the PIN) and
serialised by a lock: a PKCS#11 session runs one operation at a time. A forked child reinitialises
the module, as PKCS#11 requires.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
from collections.abc import Callable
from typing import Any

import pkcs11
from asn1crypto import core as asn1_core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509 import ocsp
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11_errors

from pki.core.algorithms import (
    EC_CURVES,
    RSA_BITS,
    describe_key,
    generate_private_key,
    signature_hash,
    signature_padding,
)
from pki.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from pki.keys.base import check_key_id

__all__ = ["PKCS11_ALGORITHMS", "Pkcs11KeyStore", "Pkcs11Signer"]

PKCS11_ALGORITHMS = (*EC_CURVES, *RSA_BITS)  # EdDSA is not generated on tokens

# DER DigestInfo prefixes (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs DigestInfo(hash) as given.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PSS_PARAMS = {
    "sha256": (Mechanism.SHA256, pkcs11.MGF.SHA256),
    "sha384": (Mechanism.SHA384, pkcs11.MGF.SHA384),
    "sha512": (Mechanism.SHA512, pkcs11.MGF.SHA512),
}

_DER = serialization.Encoding.DER

_dummy_keys: dict[str, CertificateIssuerPrivateKeyTypes] = {}
_dummy_lock = threading.Lock()


def _dummy_key(algorithm: str) -> CertificateIssuerPrivateKeyTypes:
    """A throw-away in-memory key of ``algorithm``; only its signature's *shape* is ever used."""
    with _dummy_lock:
        key = _dummy_keys.get(algorithm)
        if key is None:
            key = _dummy_keys[algorithm] = generate_private_key(algorithm)
        return key


_dummy_certificates: dict[str, x509.Certificate] = {}


def _dummy_certificate(algorithm: str) -> x509.Certificate:
    """A self-signed certificate of :func:`_dummy_key`; only the OCSP builder's key check ever sees it."""
    with _dummy_lock:
        cached = _dummy_certificates.get(algorithm)
    if cached is not None:
        return cached
    key = _dummy_key(algorithm)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "evpki pkcs11 shaping key")])
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(epoch)
        .not_valid_after(epoch + dt.timedelta(days=1))
        .sign(key, signature_hash(key.public_key()))
    )
    with _dummy_lock:
        return _dummy_certificates.setdefault(algorithm, certificate)


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _header(der: bytes, offset: int) -> tuple[int, int]:
    """(offset of the content, offset after the element) of the DER element at ``offset``."""
    first = der[offset + 1]
    if first < 0x80:
        return offset + 2, offset + 2 + first
    count = first & 0x7F
    size = int.from_bytes(der[offset + 2 : offset + 2 + count], "big")
    return offset + 2 + count, offset + 2 + count + size


def _content(element: bytes) -> bytes:
    start, end = _header(element, 0)
    return element[start:end]


def _children(element: bytes) -> list[bytes]:
    """The encoded elements inside a constructed DER element (our own builder's output: well-formed)."""
    inner, out, offset = _content(element), [], 0
    while offset < len(inner):
        _, end = _header(inner, offset)
        out.append(inner[offset:end])
        offset = end
    return out


def _signed(tbs: bytes, algorithm: bytes, signature: bytes, *extra: bytes) -> bytes:
    """SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature, extra... }: certificate, CRL, BasicOCSPResponse."""
    return _tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature) + b"".join(extra))


@functools.lru_cache(maxsize=64)
def _responder_id(certificate: x509.Certificate, encoding: ocsp.OCSPResponderEncoding) -> bytes:
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(_DER))
    if encoding is ocsp.OCSPResponderEncoding.HASH:
        return asn1_ocsp.ResponderId(name="by_key", value=parsed.public_key.sha1).dump()
    return asn1_ocsp.ResponderId(name="by_name", value=parsed.subject).dump()


_module_pids: dict[str, int] = {}  # module path -> the process that initialised it
_module_lock = threading.Lock()


class _Token:
    """One logged-in session on one token, opened lazily and shared by the store's signers."""

    def __init__(self, module: str, token_label: str, pin: Callable[[], str]) -> None:
        self.module = module
        self.token_label = token_label
        self._pin = pin
        self._session: Any = None
        self._pid = 0
        self.generation = 0  # bumped whenever a new session replaces the old one (object handles go stale)
        self.lock = threading.RLock()

    def session(self) -> Any:
        """The session (call with :attr:`lock` held)."""
        if self._session is not None and self._pid == os.getpid():
            return self._session
        try:
            lib = pkcs11.lib(self.module)
            with _module_lock:
                if _module_pids.setdefault(self.module, os.getpid()) != os.getpid():
                    lib.reinitialize()  # a forked child must C_Initialize again, once per module (PKCS#11 §5.4)
                    _module_pids[self.module] = os.getpid()
        except (OSError, RuntimeError) as exc:
            raise Unavailable(f"cannot load the PKCS#11 module {self.module}: {exc}") from None
        try:
            token = lib.get_token(token_label=self.token_label)
        except p11_errors.NoSuchToken:
            raise Unavailable(f"no PKCS#11 token labelled {self.token_label!r} in {self.module}") from None
        except p11_errors.PKCS11Error as exc:
            raise Unavailable(f"PKCS#11 token {self.token_label!r}: {type(exc).__name__}") from None
        try:
            session = token.open(rw=True, user_pin=self._pin())
        except p11_errors.UserAlreadyLoggedIn:
            session = token.open(rw=True)  # login state is per token and process; this one shares it
        except (p11_errors.PinIncorrect, p11_errors.PinInvalid, p11_errors.PinLenRange):
            raise Unavailable(f"PKCS#11 login to token {self.token_label!r} failed: wrong PIN") from None
        except p11_errors.PinLocked:
            raise Unavailable(f"PKCS#11 token {self.token_label!r}: the user PIN is locked") from None
        except p11_errors.PKCS11Error as exc:
            raise Unavailable(f"PKCS#11 login to token {self.token_label!r} failed: {type(exc).__name__}") from None
        self._session, self._pid = session, os.getpid()
        self.generation += 1
        return session

    def private_key(self, key_id: str) -> Any | None:
        with self.lock:
            found = list(
                self.session().get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: key_id})
            )
        if len(found) > 1:
            raise Conflict(f"token {self.token_label!r} holds {len(found)} private keys labelled {key_id!r}")
        return found[0] if found else None

    def public_key(self, key_id: str) -> Any | None:
        with self.lock:
            found = list(self.session().get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: key_id}))
        return found[0] if found else None


def _public_from_token(public: Any) -> CertificatePublicKeyTypes:
    with_type = public[Attribute.KEY_TYPE]
    if with_type == KeyType.RSA:
        n = int.from_bytes(public[Attribute.MODULUS], "big")
        e = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if with_type == KeyType.EC:
        curve_oid = asn1_core.ObjectIdentifier.load(public[Attribute.EC_PARAMS]).dotted
        point = asn1_core.OctetString.load(public[Attribute.EC_POINT]).native
        curve = ec.get_curve_for_oid(x509.ObjectIdentifier(curve_oid))
        return ec.EllipticCurvePublicKey.from_encoded_point(curve(), point)
    raise InvalidInput(f"unsupported PKCS#11 key type {with_type!r}")


class Pkcs11Signer:
    """Signs with a private key that never leaves its token."""

    __slots__ = ("_algorithm", "_generation", "_key_id", "_private", "_public", "_token")

    def __init__(self, token: _Token, key_id: str, private: Any, public: CertificatePublicKeyTypes) -> None:
        self._token = token
        self._key_id = key_id
        self._private = private
        self._generation = token.generation
        self._public = public
        self._algorithm = describe_key(public).name

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> CertificatePublicKeyTypes:
        return self._public

    def _padding_hash(self, rsa_pss: bool) -> tuple[hashes.HashAlgorithm, Any]:
        digest = signature_hash(self._public)
        assert digest is not None
        return digest, signature_padding(self._public, rsa_pss)

    def sign_certificate(self, builder: x509.CertificateBuilder, *, rsa_pss: bool) -> x509.Certificate:
        digest, pad = self._padding_hash(rsa_pss)
        shaped = builder.sign(_dummy_key(self._algorithm), digest, rsa_padding=pad).public_bytes(_DER)
        tbs, algorithm, _ = _children(shaped)
        return x509.load_der_x509_certificate(_signed(tbs, algorithm, self.sign_bytes(tbs, rsa_pss=rsa_pss)))

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder, *, rsa_pss: bool
    ) -> x509.CertificateRevocationList:
        digest, pad = self._padding_hash(rsa_pss)
        shaped = builder.sign(_dummy_key(self._algorithm), digest, rsa_padding=pad).public_bytes(_DER)
        tbs, algorithm, _ = _children(shaped)
        return x509.load_der_x509_crl(_signed(tbs, algorithm, self.sign_bytes(tbs, rsa_pss=rsa_pss)))

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        # OCSPResponseBuilder.sign refuses a key that does not match the responder certificate, so the
        # shape is signed for a throw-away certificate of the throw-away key, and the real ResponderID
        # and certificates are put back before the token signs. The builder keeps them in private
        # attributes (constructor arguments since cryptography 2.4); the OCSP tests catch any change.
        digest, _ = self._padding_hash(False)
        responder: tuple[x509.Certificate, ocsp.OCSPResponderEncoding] | None = builder._responder_id  # type: ignore[attr-defined]
        if responder is None:
            raise InvalidInput("an OCSP response needs a responder id")
        real_certificate, encoding = responder
        certificates: list[x509.Certificate] | None = builder._certs  # type: ignore[attr-defined]
        shaping = ocsp.OCSPResponseBuilder(
            builder._response,  # type: ignore[attr-defined]
            (_dummy_certificate(self._algorithm), encoding),
            None,
            builder._extensions,  # type: ignore[attr-defined]
        )
        shaped = shaping.sign(_dummy_key(self._algorithm), digest).public_bytes(_DER)
        # OCSPResponse ::= SEQUENCE { status, [0] EXPLICIT ResponseBytes { OID, OCTET STRING BasicOCSPResponse } }
        status, explicit = _children(shaped)
        response_type, basic_octets = _children(_content(explicit))
        tbs, algorithm, *_ = _children(_content(basic_octets))
        # ResponseData ::= SEQUENCE { [0] version OPTIONAL, responderID ([1] byName | [2] byKey), ... }
        fields = _children(tbs)
        index = next(i for i, field in enumerate(fields) if field[0] in (0xA1, 0xA2))
        fields[index] = _responder_id(real_certificate, encoding)
        tbs = _tlv(0x30, b"".join(fields))
        extra: tuple[bytes, ...] = ()
        if certificates:
            extra = (_tlv(0xA0, _tlv(0x30, b"".join(c.public_bytes(_DER) for c in certificates))),)
        basic = _signed(tbs, algorithm, self.sign_bytes(tbs, rsa_pss=False), *extra)
        response_bytes = _tlv(0x30, response_type + _tlv(0x04, basic))
        return ocsp.load_der_ocsp_response(_tlv(0x30, status + _tlv(0xA0, response_bytes)))

    def sign_bytes(self, data: bytes, *, rsa_pss: bool) -> bytes:
        algorithm = signature_hash(self._public)
        assert algorithm is not None
        hasher = hashes.Hash(algorithm)
        hasher.update(data)
        return self.sign_digest(hasher.finalize(), algorithm, rsa_pss=rsa_pss)

    def sign_digest(self, digest: bytes, algorithm: hashes.HashAlgorithm, *, rsa_pss: bool) -> bytes:
        if len(digest) != algorithm.digest_size:
            raise InvalidInput(f"a {algorithm.name} digest has {algorithm.digest_size} bytes, not {len(digest)}")
        if isinstance(self._public, ec.EllipticCurvePublicKey):
            raw = self._sign(digest, Mechanism.ECDSA, None)
            half = len(raw) // 2
            return asym_utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
        if algorithm.name not in _DIGEST_INFO:
            raise InvalidInput(f"the PKCS#11 backend signs SHA-2 digests, not {algorithm.name}")
        if rsa_pss:
            # The salt is as long as the digest, like signature_padding()'s PSS.DIGEST_LENGTH.
            hash_mechanism, mgf = _PSS_PARAMS[algorithm.name]
            return self._sign(digest, Mechanism.RSA_PKCS_PSS, (hash_mechanism, mgf, algorithm.digest_size))
        return self._sign(_DIGEST_INFO[algorithm.name] + digest, Mechanism.RSA_PKCS, None)

    def _sign(self, data: bytes, mechanism: Mechanism, param: Any) -> bytes:
        with self._token.lock:
            self._token.session()
            if self._generation != self._token.generation:  # a new session (after a fork): find the key again
                private = self._token.private_key(self._key_id)
                if private is None:
                    raise NotFound(f"key {self._key_id!r} is no longer on token {self._token.token_label!r}")
                self._private, self._generation = private, self._token.generation
            try:
                return bytes(self._private.sign(data, mechanism=mechanism, mechanism_param=param))
            except p11_errors.PKCS11Error as exc:
                raise Unavailable(f"PKCS#11 signing with key {self._key_id!r} failed: {type(exc).__name__}") from None

    def __repr__(self) -> str:
        return f"Pkcs11Signer(key_id={self._key_id!r}, token={self._token.token_label!r})"


class Pkcs11KeyStore:
    """Keys on one PKCS#11 token, found by label (= key id); generated there, never exported."""

    backend = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str | Callable[[], str]) -> None:
        self._token = _Token(module, token_label, pin if callable(pin) else (lambda: pin))
        self._cache: dict[str, Pkcs11Signer] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(module={self._token.module!r}, token={self._token.token_label!r})"

    def exists(self, key_id: str) -> bool:
        check_key_id(key_id)
        with self._lock:
            if key_id in self._cache:
                return True
        return self._token.private_key(key_id) is not None

    def generate(self, key_id: str, algorithm: str) -> Pkcs11Signer:
        check_key_id(key_id)
        if algorithm not in PKCS11_ALGORITHMS:
            raise InvalidInput(f"the PKCS#11 key store generates {', '.join(PKCS11_ALGORITHMS)}; not {algorithm!r}")
        if self.exists(key_id):
            raise Conflict(
                f"key {key_id!r} already exists on token {self._token.token_label!r}; keys are never replaced"
            )
        common = {Attribute.TOKEN: True, Attribute.LABEL: key_id, Attribute.ID: key_id.encode()}
        private_template = {
            **common,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public_template = {**common, Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}
        with self._token.lock:
            session = self._token.session()
            try:
                if algorithm in EC_CURVES:
                    params = session.create_domain_parameters(
                        KeyType.EC,
                        {Attribute.EC_PARAMS: pkcs11.util.ec.encode_named_curve_parameters(EC_CURVES[algorithm].name)},
                        local=True,
                    )
                    public, private = params.generate_keypair(
                        store=True, public_template=public_template, private_template=private_template
                    )
                else:
                    public, private = session.generate_keypair(
                        KeyType.RSA,
                        RSA_BITS[algorithm],
                        store=True,
                        public_template={**public_template, Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"},
                        private_template=private_template,
                    )
            except p11_errors.PKCS11Error as exc:
                raise Unavailable(
                    f"token {self._token.token_label!r} cannot generate a {algorithm} key: {type(exc).__name__}"
                ) from None
            signer = Pkcs11Signer(self._token, key_id, private, _public_from_token(public))
        with self._lock:
            self._cache[key_id] = signer
        return signer

    def load(self, key_id: str) -> Pkcs11Signer:
        check_key_id(key_id)
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        private = self._token.private_key(key_id)
        public = self._token.public_key(key_id)
        if private is None or public is None:
            raise NotFound(f"key {key_id!r} is not on PKCS#11 token {self._token.token_label!r}")
        with self._token.lock:
            signer = Pkcs11Signer(self._token, key_id, private, _public_from_token(public))
        with self._lock:
            self._cache[key_id] = signer
        return signer
