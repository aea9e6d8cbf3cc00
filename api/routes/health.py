"""``/healthz``: the process is up and answers (readiness with database checks is issue 6's ``/readyz``)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import public

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness", **public())
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
