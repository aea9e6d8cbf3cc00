"""Webhook subscription routes (``webhooks.v1.json``) and each subscription's delivery log (evpki's own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from api.opcp.deps import SECURITY, PkiDep, PrincipalDep
from api.opcp.errors import responses
from api.opcp.schemas import EndpointIn, EndpointUpdateIn
from pki.opcp import SubscriptionIn

__all__ = ["router"]

router = APIRouter(tags=["webhooks"])
_ERRORS = (400, 401, 403, 404)


@router.post(
    "/v1/webhook/endpoints",
    summary="Create a webhook endpoint (its secret keys the HMAC of every delivery)",
    operation_id="create-webhook-endpoint",
    status_code=201,
    responses=responses(*_ERRORS),
    openapi_extra=SECURITY,
)
def create_endpoint(body: EndpointIn, pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:
    data = SubscriptionIn(
        url=body.url,
        enabled_events=tuple(body.enabled_events),
        description=body.description,
        metadata=body.metadata,
        status=body.status,
        api_version=body.api_version,
    )
    return pki.opcp.webhooks.create(principal, data).as_opcp()


@router.get(
    "/v1/webhook/endpoints",
    summary="The caller's webhook endpoints",
    operation_id="get-webhook-endpoints",
    responses=responses(*_ERRORS),
    openapi_extra=SECURITY,
)
def list_endpoints(pki: PkiDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return [view.as_opcp() for view in pki.opcp.webhooks.list(principal)]


@router.get(
    "/v1/webhook/endpoints/{id}",
    summary="One of the caller's webhook endpoints",
    operation_id="get-webhook-endpoint",
    responses=responses(*_ERRORS),
    openapi_extra=SECURITY,
)
def get_endpoint(id: str, pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:
    return pki.opcp.webhooks.get(principal, id).as_opcp()


@router.put(
    "/v1/webhook/endpoints/{id}",
    summary="Update a webhook endpoint (url; events, status, description, metadata when given)",
    operation_id="update-webhook-endpoint",
    responses=responses(*_ERRORS),
    openapi_extra=SECURITY,
)
def update_endpoint(id: str, body: EndpointUpdateIn, pki: PkiDep, principal: PrincipalDep) -> dict[str, Any]:
    data = SubscriptionIn(
        url=body.url,
        enabled_events=tuple(body.enabled_events) if body.enabled_events is not None else None,
        description=body.description,
        metadata=body.metadata,
        status=body.status,
        api_version=body.api_version,
    )
    return pki.opcp.webhooks.update(principal, id, data).as_opcp()


@router.delete(
    "/v1/webhook/endpoints/{id}",
    summary="Delete a webhook endpoint and its pending deliveries",
    operation_id="delete-webhook-endpoint",
    responses={200: {"description": "OK"}, **responses(*_ERRORS)},
    response_class=Response,
    openapi_extra=SECURITY,
)
def delete_endpoint(id: str, pki: PkiDep, principal: PrincipalDep) -> Response:
    pki.opcp.webhooks.delete(principal, id)
    return Response(status_code=200)


@router.get(
    "/v1/webhook/endpoints/{id}/deliveries",
    summary="The endpoint's delivery log, newest first (evpki's extension)",
    operation_id="get-webhook-deliveries",
    responses=responses(*_ERRORS),
    openapi_extra=SECURITY,
)
def list_deliveries(
    id: str,
    pki: PkiDep,
    principal: PrincipalDep,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    return [view.as_dict() for view in pki.opcp.webhooks.deliveries(principal, id, limit=limit)]
