"""The OpenAPI 3.1 document served at GET /v1/openapi.json, built from the request schemas.

3.1 because its schemas are JSON Schema 2020-12, which is what pydantic writes (`"type": "null"`, numeric
`exclusiveMinimum`, `const`): under 3.0 those are invalid and clients read them wrongly.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from ..domain.catalog import Category
from ..domain.collection import CollectionMethod
from ..domain.credits import CreditReason, Movement
from ..domain.invoice import InvoiceStatus, PaymentStatus, SyncState
from ..domain.lines import LineKind
from ..domain.usage_series import Granularity, GroupBy
from . import notify_openapi
from .credits import CreditGrantIn
from .csv_export import INVOICE_LINE_COLUMNS, USAGE_COLUMNS
from .schemas import MAX_BATCH, InvoiceItemIn, OrgIn, UsageEventIn
from .subscriptions import PlanCancelIn, PlanChangeIn

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
        }
    },
}
_STRING = {"type": "string"}
_INT = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_MAYBE_STRING = {"type": ["string", "null"]}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
# Every route behind the token can refuse it, refuse the scope, miss the org or invoice, or turn down input.
_CALLER_ERRORS = (401, 403, 404, 422)
# Only a route that reads a JSON body can get an empty or invalid one, a too large one, or another media type.
_BODY_ERRORS = (400, 413, 415)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "required": [k for k in properties if k not in optional], "properties": properties}


def _enum(values: type[Any]) -> dict[str, Any]:
    return {"type": "string", "enum": [member.value for member in values]}


def _response_schemas() -> dict[str, Any]:
    """The 2xx bodies, as `schemas.py` writes them."""
    money = _ref("Money")
    invoice = {
        "id": _STRING, "number": _STRING, "org": _STRING, "period": _STRING, "period_start": _TIME,
        "period_end": _TIME, "status": _enum(InvoiceStatus), "currency": _STRING, "subtotal": money,
        "credits": money, "total": money, "amount_due": money, "line_count": _INT, "created_at": _TIME,
        "updated_at": _TIME,
        "finalized_at": _MAYBE_TIME, "due_at": _MAYBE_TIME, "voided_at": _MAYBE_TIME, "version": _INT,
        "payment_status": _enum(PaymentStatus), "payment_attempts": _INT,
        "hosted_invoice_url": _MAYBE_STRING, "invoice_pdf": _MAYBE_STRING,
        "sync": _object({"state": _enum(SyncState), "stripe_invoice_id": _MAYBE_STRING,
                         "stripe_invoice_number": _MAYBE_STRING, "attempts": _INT, "last_error": _MAYBE_STRING,
                         "synced_at": _MAYBE_TIME}),
    }
    by_key = {"type": "object", "additionalProperties": money}
    view = {
        **invoice, "lines": {"type": "array", "items": _ref("Line")}, "as_of": _TIME,
        "breakdown": _object({"by_app": by_key, "by_category": by_key, "by_region": by_key}),
        "credits_applied": money,
        # Only the open invoice of the current period has these; `budget` only when the org has one.
        "month_to_date": money, "projected_total": money, "budget": _ref("BudgetStatus"),
        "credit_preview": _object({"balance": money, "would_apply": money, "balance_after": money,
                                   "amount_due_after": money}),
    }
    result = _object({
        "index": _INT, "id": _MAYBE_STRING,
        "status": {"type": "string", "enum": ["accepted", "duplicate", "conflict", "rejected"]},
        "invoice_id": _MAYBE_STRING, "line_id": _MAYBE_STRING, "late": {"type": "boolean"},
        "error": {"type": ["object", "null"]},
    })
    grant = _object({"id": _STRING, "client_id": _MAYBE_STRING, "reason": _enum(CreditReason),
                     "description": _STRING, "amount": money, "remaining": money, "granted_at": _TIME,
                     "expires_at": _MAYBE_TIME})
    entry = _object({"id": _STRING, "movement": _enum(Movement), "grant_id": _STRING, "amount": money, "at": _TIME,
                     "invoice_id": _MAYBE_STRING})
    held = _object({"family": _STRING, "plan": _STRING, "name": _STRING, "monthly_fee": money, "since": _TIME})
    change = _object({"change_id": _STRING, "family": _STRING, "plan": _MAYBE_STRING, "effective_at": _TIME,
                      "recorded_at": _TIME})
    month = _object({"period": _STRING, "invoice_count": _INT, "subtotal_cents": _INT, "credits_cents": _INT,
                     "total_cents": _INT})
    return {
        "Money": _object({"cents": _INT, "display": _STRING}),
        "OrgProfile": _object({"org": _STRING, "name": _STRING, "email": _STRING, "currency": _STRING,
                               "created_at": _TIME, "updated_at": _TIME,
                               "collection_method": _enum(CollectionMethod), "days_until_due": {
                                   "type": ["integer", "null"]}}),
        "Line": _object({
            "id": _STRING, "kind": _enum(LineKind), "category": _enum(Category), "product": _STRING,
            "description": _STRING, "app": _MAYBE_STRING, "resource": _MAYBE_STRING, "region": _MAYBE_STRING,
            "quantity": _STRING, "unit": _STRING, "display_quantity": _STRING, "display_unit": _STRING,
            "unit_price": _object({"amount": _STRING, "per": _STRING, "unit": _STRING}),
            "free_quantity": _STRING, "amount": money, "usage_period": _STRING, "late": {"type": "boolean"},
            "event_count": _INT, "first_usage_at": _MAYBE_TIME, "last_usage_at": _MAYBE_TIME,
            "price_version": _MAYBE_STRING,
        }),
        "Invoice": _object(invoice),
        "InvoiceView": _object(view, optional=("month_to_date", "projected_total", "credit_preview", "budget")),
        "CreditGrant": grant,
        "CreditStatement": _object({"org": _STRING, "balance": money, "granted": money, "applied": money,
                                    "expired": money, "restored": money, "grants": {"type": "array", "items": grant},
                                    "ledger": {"type": "array", "items": entry}}),
        "Subscriptions": _object({"org": _STRING, "version": _INT, "subscriptions": {"type": "array", "items": held},
                                  "changes": {"type": "array", "items": change}}),
        "InvoicePage": _object({"invoices": {"type": "array", "items": _ref("Invoice")},
                                "next_cursor": _MAYBE_STRING}),
        "UsageResults": _object({"results": {"type": "array", "items": result},
                                 "counts": _object({"accepted": _INT, "duplicate": _INT, "conflict": _INT,
                                                   "rejected": _INT})}),
        "MonthlyTotals": _object({"months": {"type": "array", "items": month}, "currency": _STRING,
                                  "items_read": _INT}),
        "WebhookReceipt": _object({"received": {"type": "boolean"}, "outcome": _STRING}),
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, answer: str, *, created: bool = False, body: str | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[int, ...] = ()) -> dict[str, Any]:
    responses = {"200": _json("OK", _ref(answer))}
    if created:
        responses = {"201": _json("Created", _ref(answer)), "200": _json("Already existed", _ref(answer))}
    for status in sorted({*_CALLER_ERRORS, *(_BODY_ERRORS if body else ()), *errors}):
        responses[str(status)] = _json("Error", _ref("Error"))
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    return op


def _path(name: str, pattern: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    org = _path("org", r"^[a-z0-9][a-z0-9-]{0,62}$")
    inv = _path("invoice_id", r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    month = {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"}
    # An element that is not a valid UsageEvent does not make the batch invalid: it is answered `rejected` on its
    # own and the others are recorded (422 only when every one is rejected). So any element is valid here.
    event = {"anyOf": [_ref("UsageEvent"), {"description": "Anything else is answered `rejected`, alone."}]}
    batch = {
        "type": "object", "additionalProperties": False, "required": ["events"],
        "properties": {"events": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": event}},
    }
    webhook = {
        "summary": "Stripe's payment events, verified by their signature instead of a bearer token",
        "security": [],
        "parameters": [{"name": "Stripe-Signature", "in": "header", "required": True, "schema": _STRING}],
        # Stripe sends JSON, but the signature covers the raw bytes, so the media type is not checked.
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        # 400: not signed by Stripe within 5 minutes of our clock (either way), not plain JSON, or not an event's shape.
        "responses": {"200": _json("OK", _ref("WebhookReceipt")), "400": _json("Error", _ref("Error")),
                      "409": _json("Error", _ref("Error")), "413": _json("Error", _ref("Error"))},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Usage invoicing API", "version": "1.0.0",
                 "description": "Record usage, read invoices as they are built, and report monthly totals. Every"
                                " error, 4xx or 5xx, is {\"error\": {\"code\", \"message\", \"details\"}}: a"
                                " method a path does not take is 405 with an Allow header, an unknown path 404."
                                " Bodies are UTF-8 JSON of at most 1,000,000 bytes, nested at most 32 deep,"
                                " without duplicate keys, NaN or Infinity."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR, "UsageEvent": _schema(UsageEventIn), "UsageBatch": batch,
                        "Org": _schema(OrgIn), "InvoiceItem": _schema(InvoiceItemIn),
                        "PlanChange": _schema(PlanChangeIn), "PlanCancel": _schema(PlanCancelIn),
                        "CreditGrantRequest": _schema(CreditGrantIn), **_response_schemas(),
                        **notify_openapi.schemas(), **_insight_schemas()},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                         "responses": {"200": _json("OK", {"type": "object"})}}},
            # 503: the batch kept conflicting with concurrent writes to the same lines; retry it with backoff.
            "/v1/usage": {"post": _op("Record up to 500 usage events; answers per event", "UsageResults",
                                      body="UsageBatch", errors=(503,))},
            "/v1/orgs/{org}": {
                "put": _op("Create or update an organisation's billing profile", "OrgProfile", created=True,
                           body="Org", params=[org], errors=(409,)),
                "get": _op("Read a billing profile", "OrgProfile", params=[org]),
            },
            "/v1/orgs/{org}/invoices": {"get": _op("List invoices, newest first", "InvoicePage", params=[
                org, _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                _query("cursor", {"type": "string", "maxLength": 400})])},
            "/v1/orgs/{org}/invoices/upcoming": {"get": _csv_too(_op("The invoice being built now", "InvoiceView",
                                                                     params=[org]), INVOICE_LINE_COLUMNS)},
            "/v1/orgs/{org}/invoices/{invoice_id}": {"get": _csv_too(_op("One invoice with its lines", "InvoiceView",
                                                                         params=[org, inv]), INVOICE_LINE_COLUMNS)},
            "/v1/orgs/{org}/invoices/{invoice_id}/items": {
                "post": _op("Add a one-off charge or credit to a draft (idempotent by client_id)", "Line",
                            created=True, body="InvoiceItem", params=[org, inv], errors=(409,))},
            "/v1/orgs/{org}/invoices/{invoice_id}/finalize": {"post": _op("Finalize a draft", "Invoice",
                                                                          params=[org, inv], errors=(409,))},
            "/v1/orgs/{org}/invoices/{invoice_id}/void": {"post": _op("Void an invoice", "Invoice",
                                                                      params=[org, inv], errors=(409,))},
            "/v1/orgs/{org}/subscriptions": {
                "get": _op("The org's plans now and every recorded change", "Subscriptions", params=[org]),
                "post": _op("Subscribe or change plan from a moment (idempotent by change_id); recurring lines are "
                            "prorated to the second", "Subscriptions", created=True, body="PlanChange",
                            params=[org], errors=(409,)),
            },
            "/v1/orgs/{org}/subscriptions/cancel": {
                "post": _op("Cancel a plan family from a moment (idempotent by change_id)", "Subscriptions",
                            created=True, body="PlanCancel", params=[org], errors=(409,))},
            "/v1/orgs/{org}/credits": {
                "get": _op("Credit balance, grants and the ledger of movements", "CreditStatement", params=[org]),
                "post": _op("Grant prepaid credit (idempotent by client_id)", "CreditGrant", created=True,
                            body="CreditGrantRequest", params=[org], errors=(409,)),
            },
            "/v1/reports/monthly-totals": {"get": _op("Totals by month", "MonthlyTotals", params=[
                _query("from", month, True), _query("to", month, True),
                _query("org", {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]{0,62}$"})])},
            "/v1/stripe/webhook": {"post": webhook},
            **notify_openapi.paths(_op, org, _query),
            **_insight_paths(org),
        },
    }


# -- usage insight: usage and cost over time, CSV, the billing page -------------------------------

def _insight_schemas() -> dict[str, Any]:
    quantities = {"type": "object", "additionalProperties": _STRING,
                  "description": "display unit → quantity in that unit, as a decimal string"}
    point = _object({"start": _TIME, "cost_cents": _INT, "quantities": quantities})
    series = _object({"group": _STRING, "label": _STRING, "cost": _ref("Money"), "quantities": quantities,
                      "points": {"type": "array", "items": point}})
    return {"UsageSeries": _object({
        "org": _STRING, "from": _TIME, "to": _TIME, "granularity": _enum(Granularity), "group_by": _enum(GroupBy),
        "currency": _STRING, "as_of": _TIME, "cost": _ref("Money"),
        "totals": {"type": "array", "items": _object({"start": _TIME, "cost_cents": _INT})},
        "series": {"type": "array", "items": series},
    })}


_FORMAT = _query("format", {"type": "string", "enum": ["json", "csv"]})


def _csv_too(op: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """The route also answers text/csv (`?format=csv` or `Accept: text/csv`), with these columns."""
    op["responses"]["200"]["content"]["text/csv"] = {
        "schema": {"type": "string", "description": "CSV with a header row: " + ",".join(columns)}}
    op["parameters"] = [*op.get("parameters", []), _FORMAT]
    return op


def _insight_paths(org: dict[str, Any]) -> dict[str, Any]:
    moment = {"type": "string", "description": "YYYY-MM-DD, or a UTC time on the hour for granularity=hour"}
    usage = _op("Usage and cost over time: per hour (at most 7 days) or per day (at most 92 days), grouped; "
                "each line's bucket costs add up to its amount", "UsageSeries", params=[
                    org, _query("from", moment, True), _query("to", moment, True),
                    _query("granularity", _enum(Granularity)), _query("group_by", _enum(GroupBy))],
                errors=(503,))
    html = {"description": "The billing page", "content": {"text/html": {"schema": _STRING}}}
    asset = {"description": "The page's script or style sheet",
             "content": {"text/javascript": {"schema": _STRING}, "text/css": {"schema": _STRING}}}
    return {
        "/v1/orgs/{org}/usage": {"get": _csv_too(usage, USAGE_COLUMNS)},
        "/billing": {"get": {"summary": "The billing page; it reads this API with a token the user gives it",
                             "security": [], "responses": {"200": html}}},
        "/billing/{asset}": {"get": {
            "summary": "The billing page's files", "security": [],
            "parameters": [_path("asset", r"^[a-z.]{1,40}$")],
            "responses": {"200": asset, "404": _json("Error", _ref("Error"))}}},
    }
