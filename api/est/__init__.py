"""The EST edge (RFC 7030): the ASGI app, its TLS listener and the client certificate in the ASGI scope."""

from __future__ import annotations

from api.est.app import PKCS7_CERTS_ONLY, create_est_app
from api.est.server import EstServer
from api.est.tls import TlsHttpToolsProtocol

__all__ = ["PKCS7_CERTS_ONLY", "EstServer", "TlsHttpToolsProtocol", "create_est_app"]
