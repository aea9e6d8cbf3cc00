"""Certificate status for stations: OCPP CertIDs, our own CAs by CertID, and forwarding to foreign responders.

OCPP M06 (GetCertificateStatus) and 2.1 M07 (GetCertificateChainStatus) make the CSMS the OCSP
proxy of its stations. :class:`CertId` is the OCPP ``CertificateHashDataType`` /
``OCSPRequestDataType`` read as the RFC 6960 CertID it is. :class:`CaIndex` tells whether a CertID
names one of our CAs (then the PKI answers in-process). :class:`StatusForwarder` fetches OCSP
responses and CRLs from foreign URLs with httpx.

Security: ``responderURL`` and CRL URLs come from the station, i.e. they are untrusted input
(server-side request forgery). The forwarder only speaks http(s), never follows redirects, sends
nothing but an OCSP request (or a plain GET for a CRL), bounds the response size, and hands back
only bytes that parse as an OCSP response or CRL -- so a URL pointing into an internal network
can be probed but not read. ``allowed_hosts`` restricts the hosts further where that matters.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki.revocation import issuer_hashes

__all__ = ["CaIndex", "CertId", "StatusError", "StatusForwarder", "cert_id_of", "check_url"]

log = logging.getLogger("evpki.ocpp.status")

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
_MAX_RESPONSE_BYTES = 1 << 20  # an OCSP response is a few KB; a CRL of a Sub-CA at most a few hundred KB
_MAX_CRL_BYTES = 16 << 20


class StatusError(Exception):
    """Status could not be obtained; ``reason_code`` (≤ 20 characters) goes into OCPP statusInfo."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code[:20]
        self.message = message


@dataclass(frozen=True, slots=True)
class CertId:
    """An RFC 6960 CertID as OCPP carries it (hex strings, upper-case algorithm name)."""

    hash_algorithm: str  # SHA256 | SHA384 | SHA512
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int

    @classmethod
    def from_ocpp(cls, data: dict[str, Any]) -> CertId:
        """From ``CertificateHashDataType``; raises :class:`StatusError` for values that are not hex."""
        algorithm = data["hashAlgorithm"]
        try:
            name_hash = bytes.fromhex(data["issuerNameHash"])
            key_hash = bytes.fromhex(data["issuerKeyHash"])
            # OCPP 2.0.1 §2.6 / pitfall P-5: the serial is hex (radix 16), no 0x, no leading zeros.
            serial = int(data["serialNumber"], 16)
        except ValueError:
            raise StatusError("InvalidHashData", "issuerNameHash, issuerKeyHash and serialNumber must be hex") from None
        size = HASHES[algorithm].digest_size
        if len(name_hash) != size or len(key_hash) != size:
            raise StatusError("InvalidHashData", f"{algorithm} hashes have {size} bytes")
        return cls(algorithm, name_hash, key_hash, serial)

    @property
    def issuer_key(self) -> tuple[str, bytes, bytes]:
        return (self.hash_algorithm, self.issuer_name_hash, self.issuer_key_hash)

    def ocsp_request_der(self) -> bytes:
        # The hex values decode straight to the CertID octets (OCPP M06.FR.01, RFC 6960 §4.1.1).
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            self.issuer_name_hash, self.issuer_key_hash, self.serial_number, HASHES[self.hash_algorithm]()
        )
        return builder.build().public_bytes(serialization.Encoding.DER)


def _name_and_key_hash(issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    return issuer_hashes(issuer, HASHES[algorithm]())  # pitfall P-6: over the issuer's key bits


def cert_id_of(certificate: x509.Certificate, issuer: x509.Certificate, algorithm: str = "SHA256") -> dict[str, str]:
    """OCPP ``CertificateHashDataType`` of ``certificate`` (issued by ``issuer``; a root is its own issuer)."""
    name_hash, key_hash = _name_and_key_hash(issuer, algorithm)
    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": name_hash.hex(),
        "issuerKeyHash": key_hash.hex(),
        "serialNumber": format(certificate.serial_number, "X"),
    }


class CaIndex:
    """Which of our CAs a CertID's issuer hashes name, for each OCPP hash algorithm.

    Rebuilt only when the set of CAs changes (a new CA, a rollover), so a lookup costs one read.
    """

    def __init__(self, list_cas: Callable[[], list[Any]]) -> None:
        self._list_cas = list_cas
        self._lock = threading.Lock()
        self._signature: frozenset[str] = frozenset()
        self._by_hash: dict[tuple[str, bytes, bytes], tuple[str, x509.Certificate]] = {}

    def _refresh(self) -> None:
        cas = self._list_cas()
        signature = frozenset(ca.sha256 for ca in cas)
        with self._lock:
            if signature == self._signature:
                return
            by_hash: dict[tuple[str, bytes, bytes], tuple[str, x509.Certificate]] = {}
            for ca in cas:
                certificate = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
                for algorithm in HASHES:
                    name_hash, key_hash = _name_and_key_hash(certificate, algorithm)
                    by_hash[(algorithm, name_hash, key_hash)] = (ca.id, certificate)
            self._by_hash, self._signature = by_hash, signature

    def issuer(self, cert_id: CertId) -> tuple[str, x509.Certificate] | None:
        """(CA id, CA certificate) when the CertID's issuer is one of our CAs, else None."""
        self._refresh()
        return self._by_hash.get(cert_id.issuer_key)


def check_url(url: str, allowed_hosts: frozenset[str] | None = None) -> str:
    """Only absolute http(s) URLs (never file:, gopher:, ...) and, when configured, allowed hosts."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise StatusError("InvalidURL", f"{url[:100]!r} is not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise StatusError("InvalidURL", f"only http(s) URLs are fetched, not {url[:100]!r}")
    if parts.username or parts.password:
        raise StatusError("InvalidURL", "URLs with credentials are not fetched")
    if allowed_hosts is not None and parts.hostname.lower() not in allowed_hosts:
        raise StatusError("HostNotAllowed", f"{parts.hostname} is not an allowed responder host")
    return url


class _Cache:
    """A bounded LRU of values that are fresh until their own expiry (OCSP/CRL nextUpdate)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: collections.OrderedDict[Any, tuple[dt.datetime, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, now: dt.datetime) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= now:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: Any, value: Any, until: dt.datetime | None, now: dt.datetime) -> None:
        if until is None or until <= now or self._size <= 0:
            return  # no nextUpdate: newer information may appear at any time (RFC 6960 §4.2.2.1)
        with self._lock:
            self._items[key] = (until, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class StatusForwarder:
    """OCSP and CRL fetching for certificates of foreign CAs: timeouts, one retry, cached until nextUpdate."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        cache_size: int = 4096,
        now: Callable[[], dt.datetime] | None = None,
        allowed_hosts: frozenset[str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._allowed_hosts = allowed_hosts
        self._ocsp_cache = _Cache(cache_size)
        self._crl_cache = _Cache(max(cache_size // 64, 8))
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)

    def close(self) -> None:
        self._client.close()

    def _fetch(self, method: str, url: str, *, content: bytes | None, limit: int) -> bytes:
        check_url(url, self._allowed_hosts)
        headers = {"Content-Type": "application/ocsp-request"} if content is not None else {}
        last: str = "no attempt"
        for _attempt in range(2):  # one retry: a transient network error should not fail the station
            try:
                with self._client.stream(method, url, content=content, headers=headers) as response:
                    if response.status_code >= 500:
                        last = f"HTTP {response.status_code}"
                        continue
                    if response.status_code != 200:
                        raise StatusError("HttpError", f"{url[:200]} answered HTTP {response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise StatusError("TooLarge", f"{url[:200]} sent more than {limit} bytes")
                    return bytes(body)
            except httpx.HTTPError as error:
                last = type(error).__name__
        raise StatusError("Unreachable", f"{url[:200]}: {last}")

    def ocsp(self, url: str, cert_id: CertId) -> ocsp.OCSPResponse:
        """A successful OCSP response for ``cert_id`` from ``url``; raises :class:`StatusError` otherwise."""
        now = self._now()
        key = (url, cert_id)
        cached = self._ocsp_cache.get(key, now)
        if cached is not None:
            return ocsp.load_der_ocsp_response(cached)
        der = self._fetch("POST", url, content=cert_id.ocsp_request_der(), limit=_MAX_RESPONSE_BYTES)
        response = parse_ocsp(der, cert_id)
        single = matching_single(response, cert_id)
        self._ocsp_cache.put(key, der, single.next_update_utc, now)
        return response

    def crl(self, url: str) -> x509.CertificateRevocationList:
        now = self._now()
        cached = self._crl_cache.get(url, now)
        if cached is not None:
            return x509.load_der_x509_crl(cached)
        data = self._fetch("GET", url, content=None, limit=_MAX_CRL_BYTES)
        try:
            crl = (
                x509.load_der_x509_crl(data) if not data.lstrip().startswith(b"-----") else x509.load_pem_x509_crl(data)
            )
        except ValueError:
            raise StatusError("InvalidCrl", f"{url[:200]} did not return a CRL") from None
        self._crl_cache.put(url, crl.public_bytes(serialization.Encoding.DER), crl.next_update_utc, now)
        return crl


def parse_ocsp(der: bytes, cert_id: CertId) -> ocsp.OCSPResponse:
    """``der`` as a *successful* OCSP response that answers ``cert_id``; :class:`StatusError` otherwise."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise StatusError("InvalidOcspResponse", "the responder did not return an OCSP response") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise StatusError("OcspNotSuccessful", f"the responder answered {response.response_status.name}")
    matching_single(response, cert_id)
    return response


def matching_single(response: ocsp.OCSPResponse, cert_id: CertId) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        if single.serial_number != cert_id.serial_number:
            continue
        same_hash = single.hash_algorithm.name.upper() == cert_id.hash_algorithm
        if same_hash and single.issuer_key_hash != cert_id.issuer_key_hash:
            continue
        return single  # a responder may answer with another CertID hash (RFC 5019 §2.1.1 uses SHA-1)
    raise StatusError("OcspMismatch", "the OCSP response is not about the requested certificate")
