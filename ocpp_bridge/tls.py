"""TLS for the station gateway: the listeners' SSL contexts (the server identity itself is pki's).

- TLS >= 1.2 (A00.FR.416), no compression (A00.FR.424), only AEAD suites (A00.FR.423), with both
  server certificates of :class:`pki.stations.ServerCertificates` (ECDSA and RSA, A00.FR.421/422).
- Profile 3 (mutual TLS): the client certificate must chain to a root of the CSO hierarchy
  (A00.FR.403, the CAs ``pki.stations.client_ca_certificates()`` names). OpenSSL checks signatures
  and the path; the *time* checks are left to admission (``X509_V_FLAG_NO_CHECK_TIME``), which
  judges expiry with the PKI's clock after the handshake, where the station's identity is known,
  so that an expired certificate is refused with a recorded security event instead of an
  anonymous TLS alert.
"""

from __future__ import annotations

import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.stations import ServerCertificates

__all__ = ["CIPHERS_TLS12", "server_context"]


# OCPP A00.FR.421 requires the four suites TLS_ECDHE_ECDSA_WITH_AES_{128,256}_GCM_SHA{256,384} and
# TLS_RSA_WITH_AES_{128,256}_GCM_SHA{256,384} (OpenSSL names AES128-GCM-SHA256, AES256-GCM-SHA384);
# ECDHE-RSA-GCM is added for RSA stations that offer forward secrecy. TLS 1.3 suites are OpenSSL's.
CIPHERS_TLS12 = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    ]
)
_NO_CHECK_TIME = 0x200000  # OpenSSL X509_V_FLAG_NO_CHECK_TIME (not named by Python's ssl module)


def server_context(
    certificates: ServerCertificates, *, client_cas: list[x509.Certificate] | None, optional: bool = False
) -> ssl.SSLContext:
    """A server context: TLS >= 1.2 with both certificates; mutual TLS when ``client_cas`` is given
    (``optional``: a client certificate is requested and checked when presented, not required)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # A00.FR.416
    context.options |= ssl.OP_NO_COMPRESSION  # A00.FR.424
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers(CIPHERS_TLS12)  # A00.FR.421/423
    certificates.load_into(context)
    if client_cas:
        # Security profile 3 (A00.FR.403/407): no handshake without a certificate of our CSO hierarchy.
        # One listener for profiles 2 and 3 (A05 keeps the station's URL): a certificate if any.
        context.verify_mode = ssl.CERT_OPTIONAL if optional else ssl.CERT_REQUIRED
        context.load_verify_locations(
            cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in client_cas)
        )
        context.verify_flags = ssl.VerifyFlags(int(context.verify_flags) | _NO_CHECK_TIME)
    else:
        context.verify_mode = ssl.CERT_NONE  # profile 2: the station authenticates with HTTP Basic auth
    return context
