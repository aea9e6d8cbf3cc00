"""OPCP access tokens: OAuth2 client credentials (RFC 6749 §4.4) in, an ES256-signed JWT (RFC 7519) out.

The signing keys live in the key store like every CA key (encrypted files or a PKCS#11 token; the
private half never leaves it): PyJWT builds and parses the JWS, and its ES256 signature is made by
our :class:`~pki.keys.base.Signer` (``sign_bytes``; DER turned into the JWS's raw r||s, RFC 7518
§3.4). The newest signing key not retired signs; :func:`rotate_signing_key` makes a new one and
retires the others, which stay in the JWKS (RFC 7517) for one token lifetime so tokens they signed
keep working until they expire. The first token creates the first key when none exists.

The token carries what OPCP ``04_authentication.md`` says it does -- the role, which PCIDs (WMIs)
and eMAIDs (provider prefixes) the client may touch, and the services (``scope``) -- but a request
is judged by the client's current record: a removed client's tokens stop working (at once through
this process, within :data:`pki.opcp.service.AUTH_CACHE_SECONDS` through another one).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select

from pki.core.clock import utc
from pki.core.errors import InvalidInput, Unauthenticated
from pki.keys.base import Signer
from pki.opcp.access import OpcpRole, Principal
from pki.opcp.clients import ClientView, find_principal
from pki.operations import audit
from pki.runtime.context import Context
from pki.store.models import OpcpSigningKeyRow

__all__ = [
    "TokenGrant",
    "VerifiedToken",
    "audience_of",
    "issue_token",
    "jwks",
    "rotate_signing_key",
    "verify_token",
]

ALGORITHM = "ES256"
_KEY_ALGORITHM = "ec-p256"
_MAX_TOKEN_CHARS = 4096
_IAT_LEEWAY = 60  # seconds a token's iat may be ahead of our clock
# The services each role's token names (OPCP's scope strings: rcpservice, pcpservice, ...).
_SERVICES: dict[OpcpRole, tuple[str, ...]] = {
    OpcpRole.OEM: ("rcpservice", "pcpservice", "webhookservice"),
    OpcpRole.CPO: ("rcpservice", "webhookservice"),
    OpcpRole.MO_OWN_PKI: ("rcpservice", "pcpservice", "webhookservice"),
    OpcpRole.MO_V2G_PKI: ("rcpservice", "pcpservice", "webhookservice"),
    OpcpRole.CPS: ("rcpservice", "pcpservice", "webhookservice"),
    OpcpRole.ADMIN: ("rcpservice", "webhookservice"),
}


class _StoreSigned(ECAlgorithm):
    """ES256 whose private key is a key-store :class:`Signer` (verification stays PyJWT's own)."""

    def prepare_key(self, key: Any) -> Any:
        if hasattr(key, "sign_bytes"):
            return key
        return super().prepare_key(key)

    def check_key_length(self, key: Any) -> str | None:
        return None

    def sign(self, msg: bytes, key: Any) -> bytes:
        signer: Signer = key
        r, s = decode_dss_signature(signer.sign_bytes(msg, rsa_pss=False))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


_jws = jwt.PyJWS(algorithms=[])
_jws.register_algorithm(ALGORITHM, _StoreSigned(ECAlgorithm.SHA256))
_verifier = jwt.PyJWT()
_public_keys: dict[str, ec.EllipticCurvePublicKey] = {}  # kid -> key: a kid never changes its key
_keys_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """The token endpoint's answer (``accessToken.v1.json``)."""

    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type

    def as_dict(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "scope": self.scope,
            "token_type": self.token_type,
        }


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token that verified: its client's principal and the times (POSIX seconds) it is good between."""

    principal: Principal
    issued_at: float
    expires_at: float

    def current(self, now: float) -> bool:
        """Whether the token is still within its lifetime at ``now`` (the checks :func:`verify_token` makes)."""
        return self.expires_at > now and self.issued_at <= now + _IAT_LEEWAY


def audience_of(ctx: Context) -> str:
    """The audience a client asks for: ``EVPKI_OPCP_AUDIENCE``, else the public URL + ``/opcp``."""
    return (ctx.settings.opcp_audience or f"{ctx.settings.public_base_url}/opcp").rstrip("/")


def _lifetime(ctx: Context) -> dt.timedelta:
    return ctx.settings.duration("opcp_token_lifetime")


def _new_key(ctx: Context, session: Any, now: dt.datetime) -> OpcpSigningKeyRow:
    kid = secrets.token_hex(8)
    signer = ctx.keys.generate(f"opcp-jwt-{kid}", _KEY_ALGORITHM)
    public = signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    row = OpcpSigningKeyRow(kid=kid, key_id=signer.key_id, public_pem=public.decode(), created_at=now)
    session.add(row)
    session.flush()
    return row


def _signing_key(ctx: Context) -> tuple[str, Signer]:
    with ctx.database.read() as session:
        row = session.execute(
            select(OpcpSigningKeyRow)
            .where(OpcpSigningKeyRow.retired_at.is_(None))  # type: ignore[union-attr]
            .order_by(OpcpSigningKeyRow.id.desc())  # type: ignore[union-attr]
            .limit(1)
        ).scalar_one_or_none()
    if row is None:
        # Two workers may both create one at the same moment: both are valid, the newest signs.
        now = ctx.clock.now()
        with ctx.database.write() as session:
            row = _new_key(ctx, session, now)
            audit.append(session, at=now, actor="system:opcp", action="opcp-key-create", details={"kid": row.kid})
    return row.kid, ctx.keys.load(row.key_id)


def rotate_signing_key(ctx: Context, *, actor: str) -> str:
    """A new signing key signs from now on; the previous ones verify for one more token lifetime. Its kid."""
    now = ctx.clock.now()
    with ctx.database.write() as session:
        previous = (
            session.execute(
                select(OpcpSigningKeyRow).where(OpcpSigningKeyRow.retired_at.is_(None))  # type: ignore[union-attr]
            )
            .scalars()
            .all()
        )
        row = _new_key(ctx, session, now)
        for old in previous:
            old.retired_at = now
        audit.append(
            session,
            at=now,
            actor=actor,
            action="opcp-key-rotate",
            details={"kid": row.kid, "retired": sorted(old.kid for old in previous)},
        )
        return row.kid


def _published(ctx: Context) -> list[OpcpSigningKeyRow]:
    horizon = ctx.clock.now() - _lifetime(ctx)
    with ctx.database.read() as session:
        rows = session.execute(select(OpcpSigningKeyRow).order_by(OpcpSigningKeyRow.id.desc())).scalars().all()  # type: ignore[union-attr]
    return [row for row in rows if row.retired_at is None or utc(row.retired_at) > horizon]


def jwks(ctx: Context) -> dict[str, Any]:
    """The verification keys (RFC 7517 JWK Set): the signing key and those retired within a token lifetime."""
    keys = []
    for row in _published(ctx):
        jwk = ECAlgorithm.to_jwk(serialization.load_pem_public_key(row.public_pem.encode()), as_dict=True)  # type: ignore[arg-type]
        keys.append({**jwk, "kid": row.kid, "use": "sig", "alg": ALGORITHM})
    return {"keys": keys}


def issue_token(ctx: Context, client: ClientView, *, audience: str) -> TokenGrant:
    """A token for an authenticated client; ``audience`` must be this pool's (:func:`audience_of`)."""
    expected = audience_of(ctx)
    if audience.rstrip("/") != expected:
        raise InvalidInput(f"unknown audience; this pool is {expected}")
    kid, signer = _signing_key(ctx)
    now = ctx.clock.now()
    lifetime = int(_lifetime(ctx).total_seconds())
    scope = " ".join(_SERVICES[client.role])
    claims = {
        "iss": expected,
        "sub": f"{client.client_id}@clients",
        "aud": expected,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "azp": client.client_id,
        "gty": "client-credentials",
        "scope": scope,
        "role": client.role.value,
        "wmis": list(client.wmis),
        "providerIds": list(client.providers),
        "client_name": client.name,
    }
    payload = json.dumps(claims, separators=(",", ":")).encode()
    token = _jws.encode(payload, signer, algorithm=ALGORITHM, headers={"kid": kid})
    return TokenGrant(token, lifetime, scope)


def _public_key(ctx: Context, kid: str) -> ec.EllipticCurvePublicKey:
    with _keys_lock:
        cached = _public_keys.get(kid)
    if cached is not None:
        return cached
    for row in _published(ctx):
        if row.kid == kid:
            key = serialization.load_pem_public_key(row.public_pem.encode())
            assert isinstance(key, ec.EllipticCurvePublicKey)
            if row.retired_at is None:
                with _keys_lock:
                    _public_keys[kid] = key
            return key
    raise Unauthenticated("the access token's signing key is unknown or retired")


def verify_token(ctx: Context, token: str) -> VerifiedToken:
    """The caller a Bearer token names; :class:`Unauthenticated` for a bad, expired or foreign token."""
    if len(token) > _MAX_TOKEN_CHARS:
        raise Unauthenticated("malformed access token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("malformed access token") from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str):
        raise Unauthenticated("the access token is not one of this pool's")
    audience = audience_of(ctx)
    try:
        claims = _verifier.decode(
            token,
            _public_key(ctx, kid),
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=audience,
            # Time is judged below by our clock (injectable), not PyJWT's.
            options={"require": ["exp", "iat", "aud", "iss", "azp"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise Unauthenticated("the access token does not verify") from None
    issued_at, expires_at = claims["iat"], claims["exp"]
    now = ctx.clock.now().timestamp()
    if expires_at <= now or issued_at > now + _IAT_LEEWAY:  # our clock, which tests move
        raise Unauthenticated("the access token has expired")
    principal = find_principal(ctx, str(claims["azp"]))
    if principal is None or principal.role.value != claims.get("role"):
        raise Unauthenticated("the access token's client no longer exists")
    return VerifiedToken(principal, float(issued_at), float(expires_at))
