"""The OPCP caller: a Bearer access token from ``POST /oauth/token``, verified on every request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from pki import PKI
from pki.core import Unauthenticated
from pki.opcp import Principal

__all__ = ["SECURITY", "PkiDep", "PrincipalDep", "get_pki"]

SECURITY: dict[str, Any] = {"security": [{"opcpBearer": []}]}


async def get_pki(request: Request) -> PKI:
    """The open PKI (async: nothing to wait for, so no thread hop)."""
    return _pki_of(request)


def _pki_of(request: Request) -> PKI:
    pki: PKI = request.app.state.pki_of()
    return pki


async def _principal(request: Request) -> Principal:
    """A token accepted moments ago is answered on the event loop; any other is verified in a thread."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("this endpoint needs an access token: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use 'Authorization: Bearer <access token>'")
    opcp = _pki_of(request).opcp
    known = opcp.cached_principal(token.strip())
    if known is not None:
        return known
    return await run_in_threadpool(opcp.authenticate, token.strip())


PkiDep = Annotated[PKI, Depends(get_pki)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
