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

Ahead of all of this, :mod:`pki.revocation.ocsp_cache` keeps pre-signed answers in memory, keyed by
the request's DER, and drops them as :mod:`pki.revocation.status_feed` reports status changes: the
common request costs no parsing and no database round trip.

The request side lives in :mod:`pki.revocation.ocsp_requests`, response building and signing in
:mod:`pki.revocation.ocsp_responses`, the statuses, the pre-signed store and bulk pre-signing in
:mod:`pki.revocation.ocsp_store`; this module owns the engine that decides which path answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field, replace

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from pki.core.clock import utc
from pki.core.errors import EvpkiError
from pki.revocation.ocsp_cache import OcspAnswerCache
from pki.revocation.ocsp_der import sign_single_der
from pki.revocation.ocsp_requests import (
    CERT_ID_HASHES,
    MAX_REQUEST_BYTES,
    CertId,
    MalformedRequest,
    issuer_hashes,
    parse_request,
)
from pki.revocation.ocsp_responses import CertStatus, response_window, sign_multi_response, sign_single_response
from pki.revocation.ocsp_signers import RECHECK_INTERVAL, Responder, ResponderDirectory
from pki.revocation.ocsp_store import presign_responses, read_presigned, read_statuses, store_response, stored_status
from pki.revocation.status_feed import Changes, open_feed, watch_local_changes
from pki.runtime.context import Context
from pki.store import repository

__all__ = ["OcspAnswer", "OcspResponder"]

log = logging.getLogger("evpki.ocsp")

_DIRECTORY_RETRY = 5.0  # seconds between re-reads of the CA list for an unknown issuer hash


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
    # What an edge derives from a cached answer (its HTTP head, say) lives here, as long as the answer.
    memo: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def etag(self) -> str:
        etag = self.memo.get("etag")
        if not isinstance(etag, str):
            etag = self.memo["etag"] = f'"{hashlib.sha256(self.der).hexdigest()[:32]}"'
        return etag


_ANSWER_MALFORMED = OcspAnswer(_MALFORMED, "malformedRequest")
_ANSWER_UNAUTHORIZED = OcspAnswer(_UNAUTHORIZED, "unauthorized")
_ANSWER_INTERNAL_ERROR = OcspAnswer(_INTERNAL_ERROR, "internalError")
_ANSWER_TRY_LATER = OcspAnswer(_TRY_LATER, "tryLater")


class OcspResponder:
    """Answers OCSP requests for every CA of one PKI; safe to share between threads."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.responders = ResponderDirectory(ctx)
        self._issuers: dict[tuple[str, bytes, bytes], str] = {}
        self._issuers_read_at = float("-inf")
        self._issuers_lock = threading.Lock()
        self.cache = OcspAnswerCache()
        self._feed_lock = threading.Lock()
        self._feed_tried = False
        self._local_watch: object = None

    def close(self) -> None:
        with self._feed_lock:
            feed, self.cache.feed = self.cache.feed, None
            if feed is not None:
                feed.close()
            self.cache.clear()

    def _changed(self, changes: Changes) -> None:
        self.cache.invalidate(changes)
        self.responders.forget(changes)

    def _cache_token(self) -> int | None:
        if self.cache.feed is None and not self._feed_tried:
            with self._feed_lock:
                if not self._feed_tried:
                    self._feed_tried = True
                    # Local commits first: a change between the two is then caught by one or the other.
                    self._local_watch = watch_local_changes(self._ctx.database, self._changed)
                    try:
                        self.cache.feed = open_feed(self._ctx.database, self._changed)
                    except Exception as exc:  # no feed, no cache: every answer comes from the database
                        log.warning("OCSP answer cache off: %s", exc)
        return self.cache.token()

    # -- entry point ----------------------------------------------------------------------

    def respond(self, request_der: bytes) -> OcspAnswer:
        """Answer one DER ``OCSPRequest``; never raises for bad input."""
        if not request_der or len(request_der) > MAX_REQUEST_BYTES:
            return _ANSWER_MALFORMED
        cached = self.cache.get(request_der, self._ctx.clock.now())
        if cached is not None:
            return cached
        token = self._cache_token()  # before anything is read: see OcspAnswerCache.put
        try:
            cert_ids, nonce = parse_request(request_der)
        except MalformedRequest as exc:
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
                return self._single_presigned(ca_id, cert_ids[0], request_der, token)
            return self._signed_now(ca_id, cert_ids, nonce, token)
        except EvpkiError as exc:
            # The CA cannot get a responder (revoked or expired chain, key unavailable).
            log.warning("OCSP for %s unavailable: %s", ca_id, exc.message)
            return _ANSWER_TRY_LATER
        except Exception:
            log.exception("OCSP responder failure")
            return _ANSWER_INTERNAL_ERROR

    # -- pre-signed path ------------------------------------------------------------------

    def _single_presigned(self, ca_id: str, cert_id: CertId, request_der: bytes, token: int | None) -> OcspAnswer:
        ctx = self._ctx
        now = ctx.clock.now()
        responder = self.responders.get(ca_id)
        row = read_presigned(ctx, ca_id, cert_id)
        if row is None:
            # Not ours: answered "unknown", signed each time, never stored.
            return self._sign_single(responder, cert_id, CertStatus("unknown"), None, now, store=False)
        status = stored_status(row[0], row[1], row[2], row[3])
        stored_version, stored_responder, stored_this, stored_next, stored_der = row[4:9]
        refresh_before = ctx.settings.duration("ocsp_refresh_before")
        if (
            stored_der is not None
            and stored_version == status.version
            and stored_responder == responder.serial
            and now < utc(stored_next) - refresh_before
        ):
            answer = OcspAnswer(
                stored_der,
                "successful",
                (status.name,),
                cacheable=True,
                this_update=utc(stored_this),
                next_update=utc(stored_next),
                from_store=True,
            )
            kept = answer
        else:
            answer = self._sign_single(responder, cert_id, status, None, now, store=True)
            kept = replace(answer, from_store=True)  # once stored, that is what it is
        assert kept.next_update is not None
        self.cache.put_status(
            ca_id, format(cert_id.serial, "X"), token, status, responder.checked_at + RECHECK_INTERVAL
        )
        self.cache.put(
            request_der,
            token,
            kept,
            ca_id=ca_id,
            serial=format(cert_id.serial, "X"),
            responder_serial=responder.serial,
            valid_until=min(responder.checked_at + RECHECK_INTERVAL, kept.next_update - refresh_before),
        )
        return answer

    def _sign_single(
        self,
        responder: Responder,
        cert_id: CertId,
        status: CertStatus,
        nonce: bytes | None,
        now: dt.datetime,
        *,
        store: bool,
    ) -> OcspAnswer:
        this_update, next_update = response_window(self._ctx, responder, now)
        if nonce is not None:  # signed for this request only: the cheaper DER assembly
            der = sign_single_der(responder, cert_id, status, nonce, this_update, next_update)
        else:
            der = sign_single_response(responder, cert_id, status, nonce, this_update, next_update)
        if store:
            store_response(self._ctx, responder, cert_id, status, this_update, next_update, der)
        return OcspAnswer(
            der,
            "successful",
            (status.name,),
            cacheable=nonce is None,
            this_update=this_update,
            next_update=next_update,
        )

    # -- signed-now path (nonce, several CertIDs) -----------------------------------------

    def _signed_now(self, ca_id: str, cert_ids: list[CertId], nonce: bytes | None, token: int | None) -> OcspAnswer:
        now = self._ctx.clock.now()
        responder = self.responders.get(ca_id)
        if len(cert_ids) == 1:
            serial = format(cert_ids[0].serial, "X")
            status = self.cache.status(ca_id, serial, now)
            if status is None:
                status = read_statuses(self._ctx, ca_id, [cert_ids[0].serial])[serial]
                self.cache.put_status(ca_id, serial, token, status, responder.checked_at + RECHECK_INTERVAL)
            return self._sign_single(responder, cert_ids[0], status, nonce, now, store=False)
        statuses = read_statuses(self._ctx, ca_id, [cert_id.serial for cert_id in cert_ids])
        this_update, next_update = response_window(self._ctx, responder, now)
        der = sign_multi_response(
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

    # -- pre-signing in bulk ----------------------------------------------------------------

    def presign(self, ca_id: str, *, batch: int = 500) -> int:
        """Sign and store responses for every unexpired certificate of ``ca_id`` that lacks a current one.

        Returns how many responses were signed. Run periodically (``evpki serve`` does) so that
        nonce-less requests never wait for a signature.
        """
        return presign_responses(self._ctx, self.responders, ca_id, batch=batch)

    # -- issuer lookup ------------------------------------------------------------------------

    def _issuer_of(self, cert_id: CertId) -> str | None:
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
                for hash_name, algorithm in CERT_ID_HASHES.items():
                    issuers[(hash_name, *issuer_hashes(certificate, algorithm))] = ca_id
            self._issuers = issuers
            self._issuers_read_at = time.monotonic()
