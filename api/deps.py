"""Request-scoped dependencies: the PKI of this app and the caller's identity and role.

Every route declares who may call it with :func:`allow` (roles) or :func:`public`; both also
write the rule into the OpenAPI document (``x-evpki-roles`` / ``x-evpki-public``), which is
what ``tests/api/test_access.py`` walks. ``admin`` may do everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from api.problems import AUTH_RESPONSES, Forbidden
from pki import PKI
from pki.core import Unauthenticated
from pki.operations import Role

__all__ = ["Caller", "CallerDep", "PkiDep", "allow", "get_pki", "pki_of", "public"]


# The dependencies are ``async`` on purpose: a sync dependency costs a threadpool hop per
# request, more than the token lookup itself (one indexed read, done on the event loop).


async def get_pki(request: Request) -> PKI:
    pki: PKI = request.app.state.pki
    return pki


PkiDep = Annotated[PKI, Depends(get_pki)]


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"token:{self.name}"


def pki_of(request: Request) -> PKI:
    pki: PKI = request.app.state.pki
    return pki


async def _caller(request: Request) -> Caller:
    return _authenticate(request)


def _authenticate(request: Request) -> Caller:
    caller = getattr(request.state, "caller", None)
    if caller is not None:
        return caller  # type: ignore[no-any-return]
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("this endpoint needs an API token: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use 'Authorization: Bearer <token>'")
    view = pki_of(request).tokens.authenticate(token.strip())
    caller = Caller(view.name, view.role)
    request.state.caller = caller
    return caller


class _RoleGuard:
    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = frozenset((Role.ADMIN, *roles))

    async def __call__(self, request: Request) -> Caller:
        caller = _authenticate(request)
        if caller.role not in self.roles:
            allowed = ", ".join(sorted(r.value for r in self.roles))
            raise Forbidden(f"role {caller.role.value!r} may not call this endpoint (allowed: {allowed})")
        return caller


def allow(*roles: Role) -> dict[str, Any]:
    """Route keyword arguments: authenticate, require one of ``roles`` (or admin), document it."""
    guard = _RoleGuard(roles)
    return {
        "dependencies": [Depends(guard)],
        # openapi_extra is merged deeply into the operation: these join the route's own responses.
        "openapi_extra": {
            "x-evpki-roles": sorted(r.value for r in guard.roles),
            "security": [{"bearer": []}],
            "responses": AUTH_RESPONSES,
        },
    }


def public() -> dict[str, Any]:
    return {"openapi_extra": {"x-evpki-public": True, "security": []}}


CallerDep = Annotated[Caller, Depends(_caller)]
