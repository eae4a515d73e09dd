"""The OpenAPI parts of budgets, alerts and customers' webhook endpoints (merged by `openapi.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..domain.budgets import AlertKind
from ..domain.endpoints import DeliveryStatus, EndpointStatus
from ..domain.notifications import EventType
from .notify_schemas import BudgetIn, WebhookEndpointIn

_STRING = {"type": "string"}
_INT = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_MAYBE_STRING = {"type": ["string", "null"]}
_MAYBE_INT = {"type": ["integer", "null"]}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
ENDPOINT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
Op = Callable[..., dict[str, Any]]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


def _enum(values: type[Any]) -> dict[str, Any]:
    return {"type": "string", "enum": [member.value for member in values]}


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """Request models as components; the models they nest become components of their own."""
    found: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


def schemas() -> dict[str, Any]:
    threshold = _object({"percent": _MAYBE_INT, "amount_cents": _MAYBE_INT})
    alert = _object({
        "id": _STRING, "period": _STRING, "kind": _enum(AlertKind), "threshold": threshold,
        "threshold_cents": _INT, "budget_cents": _INT, "spend_cents": _INT, "currency": _STRING,
        "invoice_id": _STRING, "crossed_at": _TIME,
    })
    endpoint = {
        "id": _STRING, "org": _STRING, "url": _STRING, "event_types": {"type": "array", "items": _enum(EventType)},
        "status": _enum(EndpointStatus), "created_at": _TIME, "failing_since": _MAYBE_TIME,
        "last_success_at": _MAYBE_TIME, "disabled_reason": _MAYBE_STRING,
    }
    delivery = _object({
        "event_id": _STRING, "event_type": _STRING, "event_created": _TIME, "status": _enum(DeliveryStatus),
        "attempts": _INT, "first_attempt_at": _TIME, "last_attempt_at": _TIME, "last_status_code": _MAYBE_INT,
        "last_error": _MAYBE_STRING, "last_latency_ms": _MAYBE_INT, "delivered_at": _MAYBE_TIME,
    })
    return {
        **_schemas(BudgetIn, WebhookEndpointIn),
        "Budget": _object({"org": _STRING, "amount_cents": _INT, "currency": _STRING,
                           "thresholds": {"type": "array", "items": threshold}, "updated_at": _TIME}),
        "BudgetStatus": _object({"amount_cents": _INT, "period": _STRING, "spent_cents": _INT, "used_percent": _STRING,
                                 "projected_cents": _MAYBE_INT,
                                 "thresholds_crossed": {"type": "array", "items": _ref("Alert")}}),
        "Alert": alert,
        "AlertPage": _object({"alerts": {"type": "array", "items": _ref("Alert")}, "next_cursor": _MAYBE_STRING}),
        "WebhookEndpoint": _object(endpoint),
        # The signing secret appears in this answer only: store it then.
        "WebhookEndpointCreated": _object({**endpoint, "secret": _STRING}),
        "WebhookEndpointList": _object({"endpoints": {"type": "array", "items": _ref("WebhookEndpoint")}}),
        "WebhookEndpointDeleted": _object({"id": _STRING, "deleted": {"type": "boolean"}}),
        "DeliveryLog": _object({"deliveries": {"type": "array", "items": delivery}}),
    }


def paths(op: Op, org: dict[str, Any], query: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """`op` and `query` are openapi.py's own builders, so these operations read like the others."""
    endpoint = {"name": "endpoint_id", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": ENDPOINT_ID}}
    limit = query("limit", {"type": "integer", "minimum": 1, "maximum": 100})
    base = "/v1/orgs/{org}/webhook-endpoints"
    create = op("Register a webhook endpoint; the answer shows its signing secret, once", "WebhookEndpointCreated",
                created=True, body="WebhookEndpointIn", params=[org], errors=(409,))
    create["responses"].pop("200")  # every registration is a new endpoint
    return {
        "/v1/orgs/{org}/budget": {
            "put": op("Set the org's monthly budget and alert thresholds (percentages and amounts)", "Budget",
                      body="BudgetIn", params=[org]),
            "get": op("The org's budget", "Budget", params=[org]),
        },
        "/v1/orgs/{org}/alerts": {"get": op("Spend alerts, newest period first", "AlertPage", params=[
            org, limit, query("cursor", {"type": "string", "maxLength": 400})])},
        base: {
            "post": create,
            "get": op("The org's webhook endpoints", "WebhookEndpointList", params=[org]),
        },
        base + "/{endpoint_id}": {"delete": op("Delete a webhook endpoint", "WebhookEndpointDeleted",
                                               params=[org, endpoint])},
        base + "/{endpoint_id}/enable": {"post": op("Re-enable an endpoint disabled after failing for days",
                                                    "WebhookEndpoint", params=[org, endpoint])},
        base + "/{endpoint_id}/deliveries": {"get": op("The endpoint's delivery log, newest first", "DeliveryLog",
                                                       params=[org, endpoint, limit])},
    }
