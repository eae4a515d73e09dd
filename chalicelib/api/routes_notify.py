"""Routes: Budgets, spend alerts, customers' webhook endpoints, and Stripe's webhook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice.app import Blueprint, Response

from .. import clock
from ..services.bootstrap import ready
from ..services.budgets import BudgetService, alert_json
from ..services.endpoints import (
    delete_endpoint,
    delivery_log,
    enable_endpoint,
    list_endpoints,
    register_endpoint,
)
from ..services.orgs import require_profile
from ..services.webhooks import handle_webhook
from . import notify_schemas, schemas
from .auth import ADMIN
from .edge import api_route, caller, json_body, raw_body, readable_org
from .requests import path_id, path_org, query_int

routes = Blueprint(__name__)


@api_route(routes, "/v1/stripe/webhook", "POST")
def stripe_webhook() -> dict[str, Any]:
    current = ready()
    request = routes.current_request
    outcome = handle_webhook(schemas.capped(raw_body(request)), request.headers.get("stripe-signature", ""),
                             current.stripe_webhook_secret, clock.now())
    return {"received": True, "outcome": outcome}


@api_route(routes, "/v1/orgs/{org}/budget", "PUT")
def put_budget(org: str) -> dict[str, Any]:
    ready()
    caller(routes.current_request).require(ADMIN)
    profile = require_profile(path_org(org))
    data = notify_schemas.BudgetIn.model_validate(json_body(routes.current_request))
    budget = BudgetService().set_budget(org, data.amount_cents, profile.currency,
                                        [t.threshold() for t in data.thresholds], clock.now())
    return notify_schemas.budget_json(budget)


@api_route(routes, "/v1/orgs/{org}/budget", "GET")
def get_budget(org: str) -> dict[str, Any]:
    org = readable_org(routes.current_request, org)
    return notify_schemas.budget_json(BudgetService().require_budget(org))


@api_route(routes, "/v1/orgs/{org}/alerts", "GET")
def list_alerts(org: str) -> dict[str, Any]:
    org = readable_org(routes.current_request, org)
    params: Mapping[str, str] = routes.current_request.query_params or {}
    alerts, cursor = BudgetService().alert_history(org, query_int(params, "limit", 20, 1, 100), params.get("cursor"))
    return {"alerts": [alert_json(a) for a in alerts], "next_cursor": cursor}


@api_route(routes, "/v1/orgs/{org}/webhook-endpoints", "POST")
def create_webhook_endpoint(org: str) -> Response:
    current = ready()
    caller(routes.current_request).require(ADMIN)
    require_profile(path_org(org))
    data = notify_schemas.WebhookEndpointIn.model_validate(json_body(routes.current_request))
    endpoint, secret = register_endpoint(org, data.url, data.types(), clock.now(), current.local_stage)
    return Response(notify_schemas.endpoint_json(endpoint, secret), status_code=201)


@api_route(routes, "/v1/orgs/{org}/webhook-endpoints", "GET")
def list_webhook_endpoints(org: str) -> dict[str, Any]:
    org = readable_org(routes.current_request, org)
    return {"endpoints": [notify_schemas.endpoint_json(e) for e in list_endpoints(org)]}


@api_route(routes, "/v1/orgs/{org}/webhook-endpoints/{endpoint_id}", "DELETE")
def delete_webhook_endpoint(org: str, endpoint_id: str) -> dict[str, Any]:
    ready()
    caller(routes.current_request).require(ADMIN)
    delete_endpoint(path_org(org), path_id(endpoint_id), clock.now())
    return {"id": endpoint_id, "deleted": True}


@api_route(routes, "/v1/orgs/{org}/webhook-endpoints/{endpoint_id}/enable", "POST")
def enable_webhook_endpoint(org: str, endpoint_id: str) -> dict[str, Any]:
    ready()
    caller(routes.current_request).require(ADMIN)
    return notify_schemas.endpoint_json(enable_endpoint(path_org(org), path_id(endpoint_id)))


@api_route(routes, "/v1/orgs/{org}/webhook-endpoints/{endpoint_id}/deliveries", "GET")
def list_webhook_deliveries(org: str, endpoint_id: str) -> dict[str, Any]:
    org = readable_org(routes.current_request, org)
    limit = query_int(routes.current_request.query_params, "limit", 50, 1, 100)
    deliveries = delivery_log(org, path_id(endpoint_id), limit)
    return {"deliveries": [notify_schemas.delivery_json(d) for d in deliveries]}
