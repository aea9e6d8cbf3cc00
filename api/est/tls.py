"""TLS for the EST listener: its SSL context, and the client certificate handed to the app in the ASGI scope.

uvicorn does not put the TLS peer certificate into the scope. :class:`TlsHttpToolsProtocol` is
uvicorn's own httptools protocol (HTTP parsing stays uvicorn's) that, once per connection, reads
the peer certificate from the transport's ``ssl_object`` and adds it to every request's scope as
the ASGI TLS extension (``scope["extensions"]["tls"]``: ``client_cert_chain`` as PEM strings,
``client_cert_name`` RFC 4514, ``tls_version``). asyncio and uvloop call ``connection_made``
only after the handshake, so the certificate is known by then.

The context (:func:`est_ssl_context`): TLS >= 1.2, AEAD suites only, no compression or
renegotiation, the two ``csms-server`` certificates (ECDSA and RSA) of
:class:`pki.stations.ServerCertificates`. Client certificates are *optional* at the TLS layer
(RFC 7030 §3.3.2: a first enrollment may authenticate with HTTP Basic instead) and, when sent,
must chain to one of our CAs or a bootstrap CA (``pki.est.client_ca_certificates()``); partial
chains are accepted and time is not checked, because that is only a pre-filter: whether the
certificate may enroll -- ours and current, or a valid bootstrap certificate -- is decided by
``pki.est.enroll`` with the PKI's clock and store.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pki.stations import ServerCertificates

__all__ = ["CIPHERS_TLS12", "TlsHttpToolsProtocol", "client_certificate_der", "est_ssl_context", "tls_extension"]

CIPHERS_TLS12 = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ]
)
_NO_CHECK_TIME = 0x200000  # OpenSSL X509_V_FLAG_NO_CHECK_TIME (not named by Python's ssl module)
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def est_ssl_context(certificates: ServerCertificates, client_cas: list[x509.Certificate]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers(CIPHERS_TLS12)
    context.set_alpn_protocols(["http/1.1"])
    certificates.load_into(context)
    context.verify_mode = ssl.CERT_OPTIONAL
    add_client_cas(context, client_cas)
    context.verify_flags = ssl.VerifyFlags(
        int(context.verify_flags) | _NO_CHECK_TIME | int(ssl.VerifyFlags.VERIFY_X509_PARTIAL_CHAIN)
    )
    return context


def add_client_cas(context: ssl.SSLContext, certificates: list[x509.Certificate]) -> None:
    """Trust more client CAs (OpenSSL only adds; a CA leaves trust through revocation, judged in pki)."""
    if certificates:
        context.load_verify_locations(
            cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)
        )


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection, or None for plain TCP."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    name = None
    if der:
        try:
            name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except ValueError:
            name = None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": name,
        "client_cert_error": None,  # a certificate that failed verification ended the handshake
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,  # Python's ssl names the suite but does not give its IANA number
    }


def client_certificate_der(scope: dict[str, Any]) -> bytes | None:
    """The DER client certificate the TLS extension of ``scope`` carries, if any."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return ssl.PEM_cert_to_DER_cert(chain[0]) if chain else None


class TlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the ASGI TLS extension in every request's scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}  # type: ignore[typeddict-unknown-key]
