"""Routes: Organisations, usage in, invoices out, and the month totals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from chalice.app import Blueprint, Response

from .. import clock
from ..domain.lines import LineKind
from ..domain.money import REPORTING_CURRENCY
from ..observability import logger, record_ingestion
from ..services.bootstrap import ready
from ..services.budgets import BudgetService
from ..services.invoices import InvoiceService, InvoiceView
from ..services.orgs import require_profile, save_profile
from ..services.reports import monthly_report
from ..services.usage import count_by_status, record_usage
from . import notify_schemas, schemas
from .auth import ADMIN, only_writable, org_read
from .csv_export import csv_response, invoice_lines_csv, wants_csv
from .edge import ANY_MEDIA, api_route, caller, json_body, readable_org
from .errors import ApiError
from .openapi import openapi_document
from .requests import path_id, path_org, query_cursor, query_int, usage_batch

routes = Blueprint(__name__)


def invoice_answer(view: InvoiceView) -> Any:
    """The invoice as JSON, or its lines as CSV when the client asks for text/csv."""
    if wants_csv(routes.current_request.query_params, routes.current_request.headers):
        return csv_response(invoice_lines_csv(view), f"{view.invoice.org}-{view.invoice.id}.csv")
    return schemas.view_json(view)


@routes.route("/v1/openapi.json", methods=["GET"], content_types=ANY_MEDIA)
def openapi() -> dict[str, Any]:
    return openapi_document()


@api_route(routes, "/v1/orgs/{org}", "PUT")
def put_org(org: str) -> Response:
    ready()
    caller(routes.current_request).require(ADMIN)
    data = schemas.OrgIn.model_validate(json_body(routes.current_request))
    profile, created = save_profile(path_org(org), data.name, data.email, data.currency, clock.now(),
                                    data.collection())
    return Response(schemas.org_json(profile), status_code=201 if created else 200)


@api_route(routes, "/v1/orgs/{org}", "GET")
def get_org(org: str) -> dict[str, Any]:
    org = readable_org(routes.current_request, org)
    return schemas.org_json(require_profile(org))


@api_route(routes, "/v1/usage", "POST")
def post_usage() -> Response:
    current = ready()
    writer = caller(routes.current_request)
    writer.require_usage_writer()
    events = only_writable(writer, usage_batch(json_body(routes.current_request)))
    results = record_usage(events, clock.now(), current)
    counts = count_by_status(results)
    payload = {"results": [asdict(r) for r in results], "counts": counts}
    record_ingestion(counts)
    if counts["rejected"] == len(results):
        raise ApiError(422, "all_events_rejected", "no event in the batch was valid", payload)
    logger.info("usage recorded", extra=counts)
    return Response(payload, status_code=200)


@api_route(routes, "/v1/orgs/{org}/invoices", "GET")
def list_invoices(org: str) -> dict[str, Any]:
    org = readable_org(routes.current_request, org)
    params: Mapping[str, str] = routes.current_request.query_params or {}
    limit = query_int(params, "limit", 20, 1, 100)
    invoices, cursor = InvoiceService().page(org, limit, query_cursor(params), clock.now())
    return {"invoices": [schemas.invoice_json(i) for i in invoices], "next_cursor": cursor}


@api_route(routes, "/v1/orgs/{org}/invoices/upcoming", "GET")
def upcoming_invoice(org: str) -> Any:
    org = readable_org(routes.current_request, org)
    profile = require_profile(org)
    view = InvoiceService().upcoming(org, profile.currency, clock.now())
    answer = invoice_answer(view)
    # the JSON answer shows the budget
    status = BudgetService().budget_status(org, view) if isinstance(answer, dict) else None
    if status is not None:
        answer["budget"] = notify_schemas.budget_status_json(status)
    return answer


@api_route(routes, "/v1/orgs/{org}/invoices/{invoice_id}", "GET")
def get_invoice(org: str, invoice_id: str) -> Any:
    org = readable_org(routes.current_request, org)
    return invoice_answer(InvoiceService().view(org, path_id(invoice_id), clock.now()))


@api_route(routes, "/v1/orgs/{org}/invoices/{invoice_id}/items", "POST")
def add_invoice_item(org: str, invoice_id: str) -> Response:
    ready()
    caller(routes.current_request).require(ADMIN)
    org, invoice_id = path_org(org), path_id(invoice_id)  # no such invoice (404) before a bad body (422)
    data = schemas.InvoiceItemIn.model_validate(json_body(routes.current_request))
    kind = LineKind.CREDIT if data.kind == "credit" else LineKind.ONE_OFF
    line, created = InvoiceService().add_item(org, invoice_id, data.client_id, kind,
                                              data.amount_cents, data.description, clock.now())
    return Response(schemas.line_json(line, require_profile(org).currency), status_code=201 if created else 200)


@api_route(routes, "/v1/orgs/{org}/invoices/{invoice_id}/finalize", "POST")
def finalize_invoice(org: str, invoice_id: str) -> dict[str, Any]:
    ready()
    caller(routes.current_request).require(ADMIN)
    invoice = InvoiceService().finalize(path_org(org), path_id(invoice_id), clock.now())
    return schemas.invoice_json(invoice)


@api_route(routes, "/v1/orgs/{org}/invoices/{invoice_id}/void", "POST")
def void_invoice(org: str, invoice_id: str) -> dict[str, Any]:
    ready()
    caller(routes.current_request).require(ADMIN)
    return schemas.invoice_json(InvoiceService().void(path_org(org), path_id(invoice_id), clock.now()))


@api_route(routes, "/v1/reports/monthly-totals", "GET")
def monthly_totals() -> dict[str, Any]:
    ready()
    params: Mapping[str, str] = routes.current_request.query_params or {}
    org = params.get("org")
    if org is None:
        caller(routes.current_request).require(ADMIN)
    else:
        caller(routes.current_request).require(org_read(path_org(org)))
    if "from" not in params or "to" not in params:
        raise ApiError(422, "validation_failed", "`from` and `to` (YYYY-MM) are required")
    report = monthly_report(params["from"], params["to"], org)
    months = [asdict(m) for m in report.months]
    return {"months": months, "currency": REPORTING_CURRENCY, "items_read": report.items_read}
