"""``pki.est``: EST enrollment (RFC 7030) as the EST edge and the CLI need it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from pki.enrollment import bootstrap, secrets, targets
from pki.enrollment.enroll import Enrolled, EnrollmentRequest, certs_only, enroll
from pki.enrollment.secrets import SecretView
from pki.enrollment.targets import Target
from pki.runtime.context import Context
from pki.stations.server_identity import SERVER_CERTIFICATE_VALIDITY, ServerCertificates
from pki.store import repository

__all__ = ["Est"]


class Est:
    """``pki.est``: one-time enrollment secrets, the CA an EST URL names, its CA certificates, enrollment."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    # -- secrets (the operator) ------------------------------------------------------------------

    def add_secret(
        self,
        *,
        identity: str,
        profile: str,
        ttl: dt.timedelta | None = None,
        ca_id: str | None = None,
        actor: str = "system",
    ) -> tuple[SecretView, str]:
        """Register a one-time secret for ``identity``; the secret is returned once and stored hashed."""
        return secrets.add_secret(self._ctx, identity=identity, profile=profile, ttl=ttl, ca_id=ca_id, actor=actor)

    def secrets(self, *, identity: str | None = None, include_inactive: bool = False) -> list[SecretView]:
        """The registered secrets, oldest first: active ones, or every one with ``include_inactive``."""
        return secrets.list_secrets(self._ctx, identity=identity, include_inactive=include_inactive)

    def revoke_secret(self, secret_id: int, *, actor: str = "system") -> SecretView:
        return secrets.revoke_secret(self._ctx, secret_id, actor=actor)

    # -- the EST operations ------------------------------------------------------------------------

    def target(self, label: str | None = None) -> Target:
        """The CA of an RFC 7030 label (one of our issuing CA ids), or the default without one."""
        return targets.default_target() if label is None else targets.label_target(self._ctx, label)

    def opcp_target(self, role: str, iso_version: str, algorithm: str | None = None) -> Target:
        """The CA of an OPCP path: role cpo|mo|oem|cps, ISO15118-2|ISO15118-20, optionally the key algorithm."""
        return targets.opcp_target(self._ctx, role, iso_version, algorithm)

    def cacerts(self, target: Target) -> bytes:
        """``/cacerts``: the target's CA chain (issuing CA first, root last) as DER PKCS#7 certs-only."""
        return certs_only(targets.cacerts(self._ctx, target))

    def enroll(
        self,
        target: Target,
        body: bytes,
        *,
        renew: bool,
        client_certificate: bytes | None = None,
        basic: tuple[str, str] | None = None,
    ) -> Enrolled:
        """``/simpleenroll`` (``renew=False``) or ``/simplereenroll``: authenticate, then issue under policy."""
        request = EnrollmentRequest(target, body, renew, client_certificate, basic)
        return enroll(self._ctx, request)

    # -- what the EST listener needs ---------------------------------------------------------------

    def client_ca_certificates(self) -> list[x509.Certificate]:
        """Every CA certificate a client certificate may chain to at the TLS layer: ours and the bootstrap CAs.

        Only a pre-filter; the decision is :meth:`enroll`'s.
        """
        with self._ctx.database.read() as session:
            ours = [self._ctx.ca_certificate(row) for row in repository.list_cas(session)]
        foreign = list(bootstrap.bootstrap_anchors(self._ctx).foreign)
        return ours + [c for c in foreign if c not in ours]

    def server_certificates(
        self, *, server_name: str, directory: Path, validity: dt.timedelta = SERVER_CERTIFICATE_VALIDITY
    ) -> ServerCertificates:
        """The EST listener's TLS identity: ``csms-server`` certificates (ECDSA and RSA), rotated as the bridge's."""
        return ServerCertificates(self._ctx, server_name=server_name, directory=directory, validity=validity)
