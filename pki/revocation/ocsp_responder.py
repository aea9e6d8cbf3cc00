"""The OCSP responder core (RFC 6960, lightweight profile RFC 5019): DER request in, DER response out.

Nothing here knows HTTP. :meth:`OcspResponder.respond` answers one request:

* a single CertID without a nonce (the RFC 5019 case, and what OCPP stations send through the
  CSMS) is served from the pre-signed store when the stored response still states the
  certificate's current status (its ``status_version``), was signed by the CA's current
  responder and is not within ``ocsp_refresh_before`` of its nextUpdate; otherwise it is signed
  now and stored. A revocation bumps the certificate's ``status_version`` in its own
  transaction, so from the moment it commits no process serves the old answer -- there is no
  batch window;
* a nonce (RFC 8954: 1 to 32 octets) is echoed and the response signed on the spot;
* several CertIDs (all of one issuer) get one response with one SingleResponse each, built with
  asn1crypto because ``cryptography`` builds single responses only.

Status: ``good`` for a certificate we issued that is not revoked (expired ones included: their
status is still known), ``revoked`` with time and reason (``certificateHold`` while on hold),
``unknown`` for a serial the CA never issued. A CertID naming an issuer we do not run gets
``unauthorized`` (RFC 6960 §2.3); undecodable input gets ``malformedRequest``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509 import ocsp
from sqlalchemy import and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from pki.core.algorithms import signature_hash
from pki.core.clock import utc
from pki.core.errors import EvpkiError
from pki.revocation.ocsp_signers import Responder, ResponderDirectory
from pki.revocation.reasons import RevocationReason, reason_flag
from pki.runtime.context import Context
from pki.store import repository
from pki.store.models import CertificateRow, OcspResponseRow

__all__ = ["MAX_CERT_IDS", "MAX_NONCE", "MAX_REQUEST_BYTES", "OcspAnswer", "OcspResponder", "issuer_hashes"]

log = logging.getLogger("evpki.ocsp")

MAX_REQUEST_BYTES = 64 * 1024
MAX_CERT_IDS = 64
MAX_NONCE = 32  # RFC 8954 §2.1
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303 -- RFC 5019 §2.1.1: CertIDs use SHA-1; it only names the issuer
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_PRESIGNED_HASHES = ("sha1", "sha256")
_DIRECTORY_RETRY = 5.0  # seconds between re-reads of the CA list for an unknown issuer hash

_CERTIFICATE = CertificateRow.__table__  # type: ignore[attr-defined]
_STORED = OcspResponseRow.__table__  # type: ignore[attr-defined]
_STATUS_COLUMNS = (
    _CERTIFICATE.c.status,
    _CERTIFICATE.c.revoked_at,
    _CERTIFICATE.c.revocation_reason,
    _CERTIFICATE.c.status_version,
)
# Built once: the hot path only binds values (building a statement per request costs more than
# running it). A certificate joined with its stored response for one CertID hash, if any.
_WITH_STORED = _CERTIFICATE.outerjoin(
    _STORED,
    and_(
        _STORED.c.ca_id == _CERTIFICATE.c.issuer_id,
        _STORED.c.serial == _CERTIFICATE.c.serial,
        _STORED.c.hash_algorithm == bindparam("hash_algorithm"),
    ),
)
_PRESIGNED_QUERY = (
    select(
        *_STATUS_COLUMNS,
        _STORED.c.status_version,
        _STORED.c.responder_serial,
        _STORED.c.this_update,
        _STORED.c.next_update,
        _STORED.c.der,
    )
    .select_from(_WITH_STORED)
    .where(_CERTIFICATE.c.issuer_id == bindparam("ca_id"), _CERTIFICATE.c.serial == bindparam("serial"))
)
# Unexpired certificates whose stored response is missing, outdated, by another responder or due.
_STALE_QUERY = (
    select(_CERTIFICATE.c.serial, *_STATUS_COLUMNS)
    .select_from(_WITH_STORED)
    .where(
        _CERTIFICATE.c.issuer_id == bindparam("ca_id"),
        _CERTIFICATE.c.not_after > bindparam("now"),
        (_STORED.c.der.is_(None))
        | (_STORED.c.status_version != _CERTIFICATE.c.status_version)
        | (_STORED.c.responder_serial != bindparam("responder_serial"))
        | (_STORED.c.next_update <= bindparam("refresh_at")),
    )
)
_STATUS_QUERY = select(_CERTIFICATE.c.serial, *_STATUS_COLUMNS).where(
    _CERTIFICATE.c.issuer_id == bindparam("ca_id"), _CERTIFICATE.c.serial == bindparam("serial")
)
_STATUSES_QUERY = select(_CERTIFICATE.c.serial, *_STATUS_COLUMNS).where(
    _CERTIFICATE.c.issuer_id == bindparam("ca_id"), _CERTIFICATE.c.serial.in_(bindparam("serials", expanding=True))
)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


_MALFORMED = _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
_UNAUTHORIZED = _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
_INTERNAL_ERROR = _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
_TRY_LATER = _unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)


@dataclass(frozen=True, slots=True)
class OcspAnswer:
    """A DER OCSPResponse and what an HTTP edge needs to set RFC 5019 §6 cache headers."""

    der: bytes
    status: str  # successful | malformedRequest | unauthorized | internalError | tryLater
    cert_statuses: tuple[str, ...] = ()  # good | revoked | unknown, one per CertID
    cacheable: bool = False  # True for a pre-signed single response (no nonce)
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    from_store: bool = False

    @property
    def etag(self) -> str:
        return f'"{hashlib.sha256(self.der).hexdigest()[:32]}"'


_ANSWER_MALFORMED = OcspAnswer(_MALFORMED, "malformedRequest")
_ANSWER_UNAUTHORIZED = OcspAnswer(_UNAUTHORIZED, "unauthorized")
_ANSWER_INTERNAL_ERROR = OcspAnswer(_INTERNAL_ERROR, "internalError")
_ANSWER_TRY_LATER = OcspAnswer(_TRY_LATER, "tryLater")


@dataclass(frozen=True, slots=True)
class _CertId:
    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    asn1: asn1_ocsp.CertId | None = None  # kept for the asn1crypto (several CertIDs) path


@dataclass(frozen=True, slots=True)
class _Status:
    name: str  # good | revoked | unknown
    revoked_at: dt.datetime | None = None
    reason: str | None = None
    version: int = 0


class _Malformed(Exception):
    pass


class OcspResponder:
    """Answers OCSP requests for every CA of one PKI; safe to share between threads."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.responders = ResponderDirectory(ctx)
        self._issuers: dict[tuple[str, bytes, bytes], str] = {}
        self._issuers_read_at = float("-inf")
        self._issuers_lock = threading.Lock()

    # -- entry point ----------------------------------------------------------------------

    def respond(self, request_der: bytes) -> OcspAnswer:
        """Answer one DER ``OCSPRequest``; never raises for bad input."""
        if not request_der or len(request_der) > MAX_REQUEST_BYTES:
            return _ANSWER_MALFORMED
        try:
            cert_ids, nonce = _parse(request_der)
        except _Malformed as exc:
            log.info("malformed OCSP request: %s", exc)
            return _ANSWER_MALFORMED
        ca_ids = {self._issuer_of(cert_id) for cert_id in cert_ids}
        if None in ca_ids or len(ca_ids) != 1:
            # RFC 6960 §2.3: we are not authoritative for (all of) the named issuers.
            return _ANSWER_UNAUTHORIZED
        ca_id = ca_ids.pop()
        assert ca_id is not None
        try:
            if len(cert_ids) == 1 and nonce is None:
                return self._single_presigned(ca_id, cert_ids[0])
            return self._signed_now(ca_id, cert_ids, nonce)
        except EvpkiError as exc:
            # The CA cannot get a responder (revoked or expired chain, key unavailable).
            log.warning("OCSP for %s unavailable: %s", ca_id, exc.message)
            return _ANSWER_TRY_LATER
        except Exception:
            log.exception("OCSP responder failure")
            return _ANSWER_INTERNAL_ERROR

    # -- pre-signed path ------------------------------------------------------------------

    def _single_presigned(self, ca_id: str, cert_id: _CertId) -> OcspAnswer:
        ctx = self._ctx
        now = ctx.clock.now()
        responder = self.responders.get(ca_id)
        serial = format(cert_id.serial, "X")
        with ctx.database.engine.connect() as connection:
            row = connection.execute(
                _PRESIGNED_QUERY, {"ca_id": ca_id, "serial": serial, "hash_algorithm": cert_id.hash_algorithm}
            ).first()
        if row is None:
            # Not ours: answered "unknown", signed each time, never stored.
            return self._sign_single(responder, cert_id, _Status("unknown"), None, now, store=False)
        status = _status(row[0], row[1], row[2], row[3])
        stored_version, stored_responder, stored_this, stored_next, stored_der = row[4:9]
        if (
            stored_der is not None
            and stored_version == status.version
            and stored_responder == responder.serial
            and now < utc(stored_next) - ctx.settings.duration("ocsp_refresh_before")
        ):
            return OcspAnswer(
                stored_der,
                "successful",
                (status.name,),
                cacheable=True,
                this_update=utc(stored_this),
                next_update=utc(stored_next),
                from_store=True,
            )
        return self._sign_single(responder, cert_id, status, None, now, store=True)

    def _sign_single(
        self,
        responder: Responder,
        cert_id: _CertId,
        status: _Status,
        nonce: bytes | None,
        now: dt.datetime,
        *,
        store: bool,
    ) -> OcspAnswer:
        this_update, next_update = self._window(responder, now)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=cert_id.issuer_name_hash,
                issuer_key_hash=cert_id.issuer_key_hash,
                serial_number=cert_id.serial,
                algorithm=_HASHES[cert_id.hash_algorithm],
                cert_status=_CERT_STATUS[status.name],
                this_update=this_update,
                next_update=next_update,
                revocation_time=status.revoked_at,
                revocation_reason=reason_flag(status.reason),
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)  # RFC 5019 §2.2.3
            .certificates([responder.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        der = responder.signer.sign_ocsp_response(builder).public_bytes(serialization.Encoding.DER)
        if store:
            self._store(responder, cert_id, status, this_update, next_update, der)
        return OcspAnswer(
            der,
            "successful",
            (status.name,),
            cacheable=nonce is None,
            this_update=this_update,
            next_update=next_update,
        )

    def _window(self, responder: Responder, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        this_update = now.replace(microsecond=0)
        # A response must not outlive the certificate that vouches for it.
        next_update = min(this_update + self._ctx.settings.duration("ocsp_validity"), responder.not_after)
        return this_update, next_update

    def _store(
        self,
        responder: Responder,
        cert_id: _CertId,
        status: _Status,
        this_update: dt.datetime,
        next_update: dt.datetime,
        der: bytes,
    ) -> None:
        self._upsert([_stored_values(responder, cert_id, status, this_update, next_update, der)])

    def _upsert(self, rows: list[dict[str, object]]) -> None:
        # A response stored from a status that changed meanwhile carries the old version and is
        # never served, so storing needs no lock against revocations.
        engine = self._ctx.database.engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(_STORED)
        statement = statement.on_conflict_do_update(
            index_elements=["ca_id", "serial", "hash_algorithm"],
            set_={
                name: statement.excluded[name]
                for name in ("status_version", "responder_serial", "this_update", "next_update", "der")
            },
        )
        try:
            with self._ctx.database.transaction() as connection:
                connection.execute(statement, rows)
        except (EvpkiError, OperationalError) as exc:  # busy: the answer is still right, just not kept
            log.info("pre-signed OCSP response not stored: %s", exc)

    # -- signed-now path (nonce, several CertIDs) -----------------------------------------

    def _signed_now(self, ca_id: str, cert_ids: list[_CertId], nonce: bytes | None) -> OcspAnswer:
        now = self._ctx.clock.now()
        responder = self.responders.get(ca_id)
        statuses = self._statuses(ca_id, [cert_id.serial for cert_id in cert_ids])
        if len(cert_ids) == 1:
            status = statuses[format(cert_ids[0].serial, "X")]
            return self._sign_single(responder, cert_ids[0], status, nonce, now, store=False)
        this_update, next_update = self._window(responder, now)
        der = _build_multi(
            responder, cert_ids, [statuses[format(c.serial, "X")] for c in cert_ids], nonce, this_update, next_update
        )
        return OcspAnswer(
            der,
            "successful",
            tuple(statuses[format(c.serial, "X")].name for c in cert_ids),
            cacheable=False,
            this_update=this_update,
            next_update=next_update,
        )

    def _statuses(self, ca_id: str, serials: Iterable[int]) -> dict[str, _Status]:
        wanted = {format(serial, "X") for serial in serials}
        found: dict[str, _Status] = dict.fromkeys(wanted, _Status("unknown"))
        with self._ctx.database.engine.connect() as connection:
            if len(wanted) == 1:
                rows = connection.execute(_STATUS_QUERY, {"ca_id": ca_id, "serial": next(iter(wanted))})
            else:
                rows = connection.execute(_STATUSES_QUERY, {"ca_id": ca_id, "serials": sorted(wanted)})
            for row in rows:
                found[row[0]] = _status(row[1], row[2], row[3], row[4])
        return found

    # -- pre-signing in bulk ----------------------------------------------------------------

    def presign(self, ca_id: str, *, batch: int = 500) -> int:
        """Sign and store responses for every unexpired certificate of ``ca_id`` that lacks a current one.

        Returns how many responses were signed. Run periodically (``evpki serve`` does) so that
        nonce-less requests never wait for a signature.
        """
        ctx = self._ctx
        now = ctx.clock.now()
        responder = self.responders.get(ca_id)
        refresh_at = now + ctx.settings.duration("ocsp_refresh_before")
        ca_certificate = self._ca_certificate(ca_id)
        signed = 0
        pending: list[dict[str, object]] = []
        for hash_name in _PRESIGNED_HASHES:
            algorithm = _HASHES[hash_name]
            name_hash, key_hash = issuer_hashes(ca_certificate, algorithm)
            with ctx.database.engine.connect() as connection:
                rows = connection.execute(
                    _STALE_QUERY,
                    {
                        "ca_id": ca_id,
                        "hash_algorithm": hash_name,
                        "now": now,
                        "refresh_at": refresh_at,
                        "responder_serial": responder.serial,
                    },
                ).all()
            for serial, status_name, revoked_at, reason, version in rows:
                status = _status(status_name, revoked_at, reason, version)
                cert_id = _CertId(hash_name, name_hash, key_hash, int(serial, 16))
                answer = self._sign_single(responder, cert_id, status, None, now, store=False)
                assert answer.this_update is not None and answer.next_update is not None
                pending.append(
                    _stored_values(responder, cert_id, status, answer.this_update, answer.next_update, answer.der)
                )
                signed += 1
                if len(pending) >= batch:
                    self._upsert(pending)
                    pending = []
        if pending:
            self._upsert(pending)
        return signed

    # -- issuer lookup ------------------------------------------------------------------------

    def _ca_certificate(self, ca_id: str) -> x509.Certificate:
        with self._ctx.database.read() as session:
            return self._ctx.ca_certificate(repository.get_ca(session, ca_id))

    def _issuer_of(self, cert_id: _CertId) -> str | None:
        key = (cert_id.hash_algorithm, cert_id.issuer_name_hash, cert_id.issuer_key_hash)
        ca_id = self._issuers.get(key)
        if ca_id is None and time.monotonic() - self._issuers_read_at > _DIRECTORY_RETRY:
            self._read_issuers()  # a CA created since the last read (rate-limited against floods)
            ca_id = self._issuers.get(key)
        return ca_id

    def _read_issuers(self) -> None:
        with self._issuers_lock:
            with self._ctx.database.read() as session:
                cas = repository.list_cas(session)
                certificates = [(row.id, self._ctx.ca_certificate(row)) for row in cas]
            issuers: dict[tuple[str, bytes, bytes], str] = {}
            for ca_id, certificate in certificates:
                for hash_name, algorithm in _HASHES.items():
                    issuers[(hash_name, *issuer_hashes(certificate, algorithm))] = ca_id
            self._issuers = issuers
            self._issuers_read_at = time.monotonic()


def _stored_values(
    responder: Responder,
    cert_id: _CertId,
    status: _Status,
    this_update: dt.datetime,
    next_update: dt.datetime,
    der: bytes,
) -> dict[str, object]:
    """One ``ocsp_response`` row: the response and the status version and responder it states."""
    return {
        "ca_id": responder.ca_id,
        "serial": format(cert_id.serial, "X"),
        "hash_algorithm": cert_id.hash_algorithm,
        "status_version": status.version,
        "responder_serial": responder.serial,
        "this_update": this_update,
        "next_update": next_update,
        "der": der,
    }


# -- parsing ------------------------------------------------------------------------------


def _parse(request_der: bytes) -> tuple[list[_CertId], bytes | None]:
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except (ValueError, NotImplementedError):
        # cryptography reads one CertID per request; several take the asn1crypto path.
        return _parse_several(request_der)
    try:
        hash_name = request.hash_algorithm.name
    except UnsupportedAlgorithm as exc:
        raise _Malformed(f"unsupported CertID hash: {exc}") from None
    if hash_name not in _HASHES:
        raise _Malformed(f"unsupported CertID hash {hash_name}")
    try:
        extensions = request.extensions
    except ValueError as exc:
        raise _Malformed(f"bad request extensions: {exc}") from None
    nonce = None
    for extension in extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            nonce = _check_nonce(extension.value.nonce)
        elif extension.critical:
            raise _Malformed(f"unsupported critical extension {extension.oid.dotted_string}")
    return [_CertId(hash_name, request.issuer_name_hash, request.issuer_key_hash, request.serial_number)], nonce


def _parse_several(request_der: bytes) -> tuple[list[_CertId], bytes | None]:
    try:
        request = asn1_ocsp.OCSPRequest.load(request_der, strict=True)
        tbs = request["tbs_request"]
        entries = list(tbs["request_list"])
        if not entries:
            raise _Malformed("the request names no certificate")
        if len(entries) > MAX_CERT_IDS:
            raise _Malformed(f"more than {MAX_CERT_IDS} CertIDs in one request")
        cert_ids = []
        for entry in entries:
            cert_id = entry["req_cert"]
            hash_name = cert_id["hash_algorithm"]["algorithm"].native
            if hash_name not in _HASHES:
                raise _Malformed(f"unsupported CertID hash {hash_name}")
            cert_ids.append(
                _CertId(
                    hash_name,
                    cert_id["issuer_name_hash"].native,
                    cert_id["issuer_key_hash"].native,
                    cert_id["serial_number"].native,
                    cert_id,
                )
            )
        nonce = None
        for extension in tbs["request_extensions"] or []:
            name = extension["extn_id"].native
            if name == "nonce":
                nonce = _check_nonce(extension["extn_value"].parsed.native)
            elif extension["critical"].native:
                raise _Malformed(f"unsupported critical extension {name}")
        return cert_ids, nonce
    except _Malformed:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _Malformed(f"not a DER OCSPRequest ({type(exc).__name__})") from None


def _check_nonce(nonce: object) -> bytes:
    if not isinstance(nonce, bytes) or not 1 <= len(nonce) <= MAX_NONCE:
        raise _Malformed(f"the nonce must be 1 to {MAX_NONCE} octets (RFC 8954 §2.1)")
    return nonce


# -- building -----------------------------------------------------------------------------

_CERT_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


def _status(stored: str, revoked_at: dt.datetime | None, reason: str | None, version: int) -> _Status:
    if stored in ("revoked", "on-hold") and revoked_at is not None:
        if stored == "on-hold":
            reason = RevocationReason.CERTIFICATE_HOLD.value
        return _Status("revoked", utc(revoked_at).replace(microsecond=0), reason, version)
    return _Status("good", version=version)


def issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """RFC 6960 §4.1.1 CertID issuerNameHash and issuerKeyHash of the certificates ``issuer`` signs.

    The name hash is over the issuer's DER subject; the key hash over its subjectPublicKey bits
    (not the whole SubjectPublicKeyInfo). OCPP CertificateHashDataType carries the same values in hex.
    """
    return _digest(algorithm, issuer.subject.public_bytes()), _digest(algorithm, _key_bits(issuer))


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value, which RFC 6960 §4.1.1 issuerKeyHash covers."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


def _signature_algorithm(responder: Responder) -> str:
    key = responder.certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"{signature_hash(key).name}_ecdsa"  # type: ignore[union-attr]  # the hash the signer uses
    if isinstance(key, rsa.RSAPublicKey):
        return "sha256_rsa"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448"
    raise TypeError(f"no OCSP signature algorithm for {type(key).__name__}")


# asn1crypto's names for the reasons OCSP states (``unspecified`` is left out, as in CRLs).
_ASN1_REASONS = {r.value: r.flag.name for r in RevocationReason if r is not RevocationReason.UNSPECIFIED}


def _asn1_status(status: _Status) -> asn1_ocsp.CertStatus:
    if status.name == "good":
        return asn1_ocsp.CertStatus(name="good", value=asn1_core.Null())
    if status.name == "unknown":
        return asn1_ocsp.CertStatus(name="unknown", value=asn1_core.Null())
    info: dict[str, object] = {"revocation_time": status.revoked_at}
    if status.reason in _ASN1_REASONS:
        info["revocation_reason"] = _ASN1_REASONS[status.reason]
    return asn1_ocsp.CertStatus(name="revoked", value=asn1_ocsp.RevokedInfo(info))


def _build_multi(
    responder: Responder,
    cert_ids: list[_CertId],
    statuses: list[_Status],
    nonce: bytes | None,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    certificate_der = responder.certificate.public_bytes(serialization.Encoding.DER)
    asn1_certificate = asn1_x509.Certificate.load(certificate_der)
    data: dict[str, object] = {
        "responder_id": asn1_ocsp.ResponderId(name="by_key", value=asn1_certificate.public_key.sha1),
        "produced_at": this_update,
        "responses": [
            {
                "cert_id": cert_id.asn1,
                "cert_status": _asn1_status(status),
                "this_update": this_update,
                "next_update": next_update,
            }
            for cert_id, status in zip(cert_ids, statuses, strict=True)
        ],
    }
    if nonce is not None:
        data["response_extensions"] = [{"extn_id": "nonce", "extn_value": nonce}]
    response_data = asn1_ocsp.ResponseData(data)
    signature = responder.signer.sign_bytes(response_data.dump(), rsa_pss=False)
    basic = asn1_ocsp.BasicOCSPResponse(
        {
            "tbs_response_data": response_data,
            "signature_algorithm": {"algorithm": _signature_algorithm(responder)},
            "signature": signature,
            "certs": [asn1_certificate],
        }
    )
    return asn1_ocsp.OCSPResponse(
        {
            "response_status": "successful",
            "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
        }
    ).dump()
