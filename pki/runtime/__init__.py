"""What every operation runs on, above the store and the key backends: the context (database, key
store, settings, clock and the cached CA directory) and the read-only views the edges receive.
"""

from __future__ import annotations

from pki.runtime.context import CaDirectory, CaEntry, Context, IssuerContext
from pki.runtime.gc_tuning import settle as settle_gc
from pki.runtime.views import CaView, CertificateView, CrlView, InitReport, IssuedCertificate, pem

__all__ = [
    "CaDirectory",
    "CaEntry",
    "CaView",
    "CertificateView",
    "Context",
    "CrlView",
    "InitReport",
    "IssuedCertificate",
    "IssuerContext",
    "pem",
    "settle_gc",
]
