"""The OPCP caller: a Bearer access token from ``POST /oauth/token``, verified on every request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from pki import PKI
from pki.core import Unauthenticated
from pki.opcp import Principal

__all__ = ["SECURITY", "PkiDep", "PrincipalDep", "get_pki"]

SECURITY: dict[str, Any] = {"security": [{"opcpBearer": []}]}


def get_pki(request: Request) -> PKI:
    pki: PKI = request.app.state.pki_of()
    return pki


def _principal(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("this endpoint needs an access token: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use 'Authorization: Bearer <access token>'")
    return get_pki(request).opcp.authenticate(token.strip())


PkiDep = Annotated[PKI, Depends(get_pki)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
