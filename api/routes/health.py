"""``/healthz`` (the process is up and answers) and ``/readyz`` (it can do its work). Both public.

``/readyz`` runs a trivial query on the database and asks the key store whether a CA key is
there (a key file, or an object on the PKCS#11 token): 200 when both answer, else 503 with a
problem body naming what is missing, so a load balancer stops sending traffic to the worker.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import pki_of, public
from api.problems import problem_response
from pki.core import EvpkiError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness", **public())
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database and key store reachable",
    response_model=None,
    responses={503: {"description": "not ready", "content": {"application/problem+json": {}}}},
    **public(),
)
async def readyz(request: Request) -> Response | dict[str, str]:
    try:
        await run_in_threadpool(pki_of(request).check_ready)
    except EvpkiError as error:
        return problem_response(503, "unavailable", "Not ready", error.message, "/readyz")
    return {"status": "ready"}
