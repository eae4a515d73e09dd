"""The OpenAPI 3 document served at GET /v1/openapi.json, built from the request schemas."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from .schemas import MAX_BATCH, InvoiceItemIn, OrgIn, UsageEventIn

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
_OBJECT = {"type": "object"}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _responses(ok: int = 200, *extra: int) -> dict[str, Any]:
    out: dict[str, Any] = {str(ok): {"description": "OK", "content": {"application/json": {"schema": _OBJECT}}}}
    for status in (400, 401, 403, 404, 409, 413, 422, *extra):
        out[str(status)] = {"description": "Error", "content": {"application/json": {"schema": _ref("Error")}}}
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(summary: str, ok: int = 200, body: str | None = None, params: list[dict[str, Any]] | None = None,
        auth: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": _responses(ok)}
    if ok == 201:
        existed = {"description": "Already existed", "content": {"application/json": {"schema": _OBJECT}}}
        op["responses"]["200"] = existed
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    return op


def _path(name: str, pattern: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    org = _path("org", r"^[a-z0-9][a-z0-9-]{0,62}$")
    inv = _path("invoice_id", r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    month = {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}
    batch = {
        "type": "object", "additionalProperties": False, "required": ["events"],
        "properties": {"events": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": _ref("UsageEvent")}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Usage invoicing API", "version": "1.0.0",
                 "description": "Record usage, read invoices as they are built, and report monthly totals."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR, "UsageEvent": _schema(UsageEventIn), "UsageBatch": batch,
                        "Org": _schema(OrgIn), "InvoiceItem": _schema(InvoiceItemIn)},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/openapi.json": {"get": _op("This document", auth=False)},
            "/v1/usage": {"post": _op("Record up to 500 usage events; answers per event", body="UsageBatch")},
            "/v1/orgs/{org}": {
                "put": _op("Create or update an organisation's billing profile", 201, "Org", [org]),
                "get": _op("Read a billing profile", params=[org]),
            },
            "/v1/orgs/{org}/invoices": {"get": _op("List invoices, newest first", params=[
                org, _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                _query("cursor", {"type": "string", "maxLength": 400})])},
            "/v1/orgs/{org}/invoices/upcoming": {"get": _op("The invoice being built now", params=[org])},
            "/v1/orgs/{org}/invoices/{invoice_id}": {"get": _op("One invoice with its lines", params=[org, inv])},
            "/v1/orgs/{org}/invoices/{invoice_id}/items": {
                "post": _op("Add a one-off charge or credit to a draft (idempotent by client_id)", 201,
                            "InvoiceItem", [org, inv])},
            "/v1/orgs/{org}/invoices/{invoice_id}/finalize": {"post": _op("Finalize a draft", params=[org, inv])},
            "/v1/orgs/{org}/invoices/{invoice_id}/void": {"post": _op("Void an invoice", params=[org, inv])},
            "/v1/reports/monthly-totals": {"get": _op("Totals by month", params=[
                _query("from", month, True), _query("to", month, True),
                _query("org", {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]{0,62}$"})])},
        },
    }
