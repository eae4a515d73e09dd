"""Wiring only: routes, event handlers and schedules call one service each."""


import os
from dataclasses import asdict
from typing import Any

from chalice import Chalice, Cron, Rate, Response

from chalicelib import clock
from chalicelib.api import notify_schemas, schemas
from chalicelib.api.auth import ADMIN, Principal, authenticate, only_writable, org_read
from chalicelib.api.credits import CreditGrantIn, grant_json, statement_json
from chalicelib.api.csv_export import csv_response, invoice_lines_csv, usage_csv, wants_csv
from chalicelib.api.errors import ApiError, with_errors
from chalicelib.api.fallbacks import answer_what_no_route_serves
from chalicelib.api.insight import usage_json, usage_query
from chalicelib.api.openapi import openapi_document
from chalicelib.api.requests import path_id, path_org, query_cursor, query_int, usage_batch
from chalicelib.api.subscriptions import PlanCancelIn, PlanChangeIn, subscriptions_json
from chalicelib.config import Settings, settings
from chalicelib.domain.credits import CreditReason
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.lines import LineKind
from chalicelib.domain.periods import Period
from chalicelib.observability import bind_lambda_context, logger, record_ingestion
from chalicelib.queue import enqueue_sync
from chalicelib.services.bootstrap import bind_storage, token_lookup
from chalicelib.services.budgets import alert_history, alert_json, budget_status, require_budget, set_budget
from chalicelib.services.canary import scheduled_checks
from chalicelib.services.credits import CreditService
from chalicelib.services.deliveries import process_deliveries
from chalicelib.services.endpoints import (
    delete_endpoint,
    delivery_log,
    enable_endpoint,
    list_endpoints,
    register_endpoint,
)
from chalicelib.services.insight import usage_series
from chalicelib.services.invoices import InvoiceService, InvoiceView
from chalicelib.services.notifications import announce_delayed_syncs
from chalicelib.services.orgs import require_profile, save_profile
from chalicelib.services.reconcile import check_period, requeue_stale
from chalicelib.services.reports import monthly_report
from chalicelib.services.subscriptions import SubscriptionService
from chalicelib.services.sync_worker import QueueMessage, changes_needing_sync, default_gateway, process_messages
from chalicelib.services.table_changes import react_to_changes
from chalicelib.services.usage import STATUSES, record_usage
from chalicelib.services.webhooks import handle_webhook
from chalicelib.web import billing_asset, billing_page

app = Chalice(app_name="usage-invoicing")
# Chalice would answer other media types itself, outside our error envelope: accept all, check in body()
# (reads take no body, so they ignore the media type).
ANY_MEDIA = ["*/*"]
_bound: list[Settings] = []


def ready() -> Settings:
    """Bind the table once per process (Lambda cold start or local server)."""
    current = settings()
    if not _bound or _bound[0] is not current:  # settings were re-read (local stack, tests): bind again
        bind_storage(current)
        _bound[:] = [current]
    return current


@app.middleware("all")
def lambda_context_in_logs(event: Any, get_response: Any) -> Any:
    bind_lambda_context(getattr(event, "lambda_context", None) or getattr(event, "context", None))
    return get_response(event)


def principal() -> Principal:
    return authenticate(app.current_request.headers, token_lookup(ready()), clock.now())


def body() -> Any:
    schemas.require_json(app.current_request.headers.get("content-type", ""))
    return schemas.parse_json(app.current_request.raw_body)


def invoice_answer(view: InvoiceView) -> Any:
    """The invoice as JSON, or its lines as CSV when the client asks for text/csv."""
    if wants_csv(app.current_request.query_params, app.current_request.headers):
        return csv_response(invoice_lines_csv(view), f"{view.invoice.org}-{view.invoice.id}.csv")
    return schemas.view_json(view)


@app.route("/v1/openapi.json", methods=["GET"], content_types=ANY_MEDIA)
def openapi() -> dict[str, Any]:
    return openapi_document()


@app.route("/v1/orgs/{org}", methods=["PUT"], content_types=ANY_MEDIA)
@with_errors
def put_org(org: str) -> Response:
    ready()
    principal().require(ADMIN)
    data = schemas.OrgIn.model_validate(body())
    profile, created = save_profile(path_org(org), data.name, data.email, data.currency, clock.now(),
                                    data.collection())
    return Response(schemas.org_json(profile), status_code=201 if created else 200)


@app.route("/v1/orgs/{org}", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def get_org(org: str) -> dict[str, Any]:
    ready()
    principal().require(org_read(org))
    return schemas.org_json(require_profile(path_org(org)))


@app.route("/v1/usage", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def post_usage() -> Response:
    current = ready()
    caller = principal()
    caller.require_usage_writer()
    results = record_usage(only_writable(caller, usage_batch(body())), clock.now(), current)
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    payload = {"results": [asdict(r) for r in results], "counts": counts}
    record_ingestion(counts)
    if counts["rejected"] == len(results):
        raise ApiError(422, "all_events_rejected", "no event in the batch was valid", payload)
    logger.info("usage recorded", extra=counts)
    return Response(payload, status_code=200)


@app.route("/v1/orgs/{org}/invoices", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def list_invoices(org: str) -> dict[str, Any]:
    ready()
    principal().require(org_read(org))
    params = app.current_request.query_params or {}
    limit = query_int(params, "limit", 20, 1, 100)
    invoices, cursor = InvoiceService().page(path_org(org), limit, query_cursor(params), clock.now())
    return {"invoices": [schemas.invoice_json(i) for i in invoices], "next_cursor": cursor}


@app.route("/v1/orgs/{org}/invoices/upcoming", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def upcoming_invoice(org: str) -> Any:
    ready()
    principal().require(org_read(org))
    profile = require_profile(path_org(org))
    view = InvoiceService().upcoming(org, profile.currency, clock.now())
    answer = invoice_answer(view)
    status = budget_status(org, view) if isinstance(answer, dict) else None  # the JSON answer shows the budget
    if status is not None:
        answer["budget"] = notify_schemas.budget_status_json(status)
    return answer


@app.route("/v1/orgs/{org}/invoices/{invoice_id}", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def get_invoice(org: str, invoice_id: str) -> Any:
    ready()
    principal().require(org_read(org))
    return invoice_answer(InvoiceService().view(path_org(org), path_id(invoice_id), clock.now()))


@app.route("/v1/orgs/{org}/invoices/{invoice_id}/items", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def add_invoice_item(org: str, invoice_id: str) -> Response:
    ready()
    principal().require(ADMIN)
    org, invoice_id = path_org(org), path_id(invoice_id)  # no such invoice (404) before a bad body (422)
    data = schemas.InvoiceItemIn.model_validate(body())
    kind = LineKind.CREDIT if data.kind == "credit" else LineKind.ONE_OFF
    line, created = InvoiceService().add_item(org, invoice_id, data.client_id, kind,
                                              data.amount_cents, data.description, clock.now())
    return Response(schemas.line_json(line, "usd"), status_code=201 if created else 200)


@app.route("/v1/orgs/{org}/invoices/{invoice_id}/finalize", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def finalize_invoice(org: str, invoice_id: str) -> dict[str, Any]:
    ready()
    principal().require(ADMIN)
    invoice = InvoiceService().finalize(path_org(org), path_id(invoice_id), clock.now())
    return schemas.invoice_json(invoice)


@app.route("/v1/orgs/{org}/invoices/{invoice_id}/void", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def void_invoice(org: str, invoice_id: str) -> dict[str, Any]:
    ready()
    principal().require(ADMIN)
    return schemas.invoice_json(InvoiceService().void(path_org(org), path_id(invoice_id), clock.now()))


@app.route("/v1/reports/monthly-totals", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def monthly_totals() -> dict[str, Any]:
    ready()
    params = app.current_request.query_params or {}
    org = params.get("org")
    if org is None:
        principal().require(ADMIN)
    else:
        principal().require(org_read(path_org(org)))
    if "from" not in params or "to" not in params:
        raise ApiError(422, "validation_failed", "`from` and `to` (YYYY-MM) are required")
    report = monthly_report(params["from"], params["to"], org)
    return {"months": [asdict(m) for m in report.months], "currency": "usd", "items_read": report.items_read}


@app.route("/v1/orgs/{org}/subscriptions", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def get_subscriptions(org: str) -> dict[str, Any]:
    current = ready()
    principal().require(org_read(org))
    profile = require_profile(path_org(org))
    return subscriptions_json(org, SubscriptionService(current).timeline(org), profile.currency, clock.now())


@app.route("/v1/orgs/{org}/subscriptions", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def change_plan(org: str) -> Response:
    current = ready()
    principal().require(ADMIN)
    profile, now = require_profile(path_org(org)), clock.now()  # no such org (404) before a bad body (422)
    data = PlanChangeIn.model_validate(body())
    timeline, created = SubscriptionService(current).change(org, data.change_id, None, data.plan,
                                                            data.effective_at or now, now)
    return Response(subscriptions_json(org, timeline, profile.currency, now), status_code=201 if created else 200)


@app.route("/v1/orgs/{org}/subscriptions/cancel", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def cancel_plan(org: str) -> Response:
    current = ready()
    principal().require(ADMIN)
    profile, now = require_profile(path_org(org)), clock.now()
    data = PlanCancelIn.model_validate(body())
    timeline, created = SubscriptionService(current).change(org, data.change_id, data.family, None,
                                                            data.effective_at or now, now)
    return Response(subscriptions_json(org, timeline, profile.currency, now), status_code=201 if created else 200)


@app.route("/v1/orgs/{org}/credits", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def grant_credit(org: str) -> Response:
    ready()
    principal().require(ADMIN)
    profile, now = require_profile(path_org(org)), clock.now()
    data = CreditGrantIn.model_validate(body())
    if data.expires_at is not None and data.expires_at <= now:
        raise ValidationFailed("expires_at is in the past")
    grant, created = CreditService().grant(org, data.client_id, data.amount_cents, CreditReason(data.reason),
                                           data.description, data.expires_at, now)
    return Response(grant_json(grant, profile.currency), status_code=201 if created else 200)


@app.route("/v1/orgs/{org}/credits", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def get_credits(org: str) -> dict[str, Any]:
    ready()
    principal().require(org_read(org))
    profile = require_profile(path_org(org))
    return statement_json(org, CreditService().statement(org), profile.currency)
@app.route("/v1/orgs/{org}/usage", methods=["GET"])
@with_errors
def usage_over_time(org: str) -> Any:
    ready()
    principal().require(org_read(org))
    query = usage_query(app.current_request.query_params)
    as_csv = wants_csv(app.current_request.query_params, app.current_request.headers)
    profile, now = require_profile(path_org(org)), clock.now()
    series = usage_series(org, query.span, query.group_by, now)
    if as_csv:
        return csv_response(usage_csv(series, profile.currency), f"{org}-usage.csv")
    return usage_json(org, series, profile.currency, now)


@app.route("/billing", methods=["GET"])
def billing() -> Response:
    return billing_page()


@app.route("/billing/{asset}", methods=["GET"])
def billing_static(asset: str) -> Response:
    return billing_asset(asset)


@app.schedule(Cron(5, "*", "*", "*", "?", "*"))
def finalize_month(event: Any) -> dict[str, Any]:
    """Hourly: finalize drafts of past periods whose grace has passed (and resume interrupted ones); then
    open subscribers' drafts with their recurring lines, and expire credit no invoice can use any more."""
    current, now = ready(), clock.now()
    finalized = InvoiceService().finalize_due(now, current.finalize_grace)
    opened = SubscriptionService(current).sweep(now)
    expired = CreditService().expire_due(now, current.finalize_grace)
    logger.info("month-end finalize", extra={"finalized": len(finalized), "subscriptions": len(opened),
                                             "credits_expired": len(expired)})
    return {"finalized": [f"{i.org}/{i.id}" for i in finalized], "subscriptions": opened, "credits_expired": expired}


# -- Stripe sync: stream → queue → worker; webhooks; reconciliation ------------------------------
# Chalice reads these when packaging; infra/chalice-merge.yaml points the mappings at the real resources.
STREAM_ARN = os.environ.get("TABLE_STREAM_ARN", "arn:aws:dynamodb:us-east-1:000000000000:table/invoicing/stream/0")
SYNC_QUEUE_ARN = os.environ.get("SYNC_QUEUE_ARN", "arn:aws:sqs:us-east-1:000000000000:invoicing-sync")


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def handle_table_changes(event: Any) -> dict[str, Any]:
    ready()
    records = [(r.event_name, r.old_image, r.new_image) for r in event]
    messages = changes_needing_sync(records)
    enqueue_sync(messages)
    react_to_changes(records, clock.now())  # customer events, spend alerts, webhook deliveries
    return {"batchItemFailures": []}


def queue_messages(event: Any) -> list[QueueMessage]:
    messages = []
    for record in event:
        raw = record.to_dict()
        count = int(raw.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        messages.append(QueueMessage(raw["messageId"], record.receipt_handle, record.body, count))
    return messages


@app.on_sqs_message(queue_arn=SYNC_QUEUE_ARN, batch_size=10)
def sync_invoices(event: Any) -> dict[str, Any]:
    ready()
    failed = process_messages(queue_messages(event), clock.now())
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


@app.route("/v1/stripe/webhook", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def stripe_webhook() -> dict[str, Any]:
    current = ready()
    request = app.current_request
    outcome = handle_webhook(schemas.capped(request.raw_body), request.headers.get("stripe-signature", ""),
                             current.stripe_webhook_secret, clock.now())
    return {"received": True, "outcome": outcome}


@app.schedule(Cron(20, "*", "*", "*", "?", "*"))
def reconcile(event: Any) -> dict[str, Any]:
    """Hourly: re-enqueue syncs stuck past the threshold; compare this and last period with Stripe."""
    current = ready()
    now = clock.now()
    report = requeue_stale(now, current.sync_stale_after)
    for period in (Period.of(now).previous(), Period.of(now)):
        check_period(period, default_gateway(), now, report)
    announce_delayed_syncs(now, current.sync_stale_after)  # the customer hears their invoice is late
    return asdict(report)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def canary(event: Any) -> dict[str, Any]:
    """Every 5 minutes: the sync backlog's gauges, and today's synthetic invoice moved one step."""
    return scheduled_checks(clock.now(), ready())


# -- Budgets, spend alerts and customers' webhooks ----------------------------------------------
DELIVERY_QUEUE_ARN = os.environ.get("DELIVERY_QUEUE_ARN", "arn:aws:sqs:us-east-1:000000000000:invoicing-deliveries")


@app.on_sqs_message(queue_arn=DELIVERY_QUEUE_ARN, batch_size=10)
def deliver_webhooks(event: Any) -> dict[str, Any]:
    ready()
    failed = process_deliveries(queue_messages(event), clock.now())
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


@app.route("/v1/orgs/{org}/budget", methods=["PUT"], content_types=ANY_MEDIA)
@with_errors
def put_budget(org: str) -> dict[str, Any]:
    ready()
    principal().require(ADMIN)
    profile = require_profile(path_org(org))
    data = notify_schemas.BudgetIn.model_validate(body())
    budget = set_budget(org, data.amount_cents, profile.currency, [t.threshold() for t in data.thresholds],
                        clock.now())
    return notify_schemas.budget_json(budget)


@app.route("/v1/orgs/{org}/budget", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def get_budget(org: str) -> dict[str, Any]:
    ready()
    principal().require(org_read(org))
    return notify_schemas.budget_json(require_budget(path_org(org)))


@app.route("/v1/orgs/{org}/alerts", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def list_alerts(org: str) -> dict[str, Any]:
    ready()
    principal().require(org_read(org))
    params = app.current_request.query_params or {}
    alerts, cursor = alert_history(path_org(org), query_int(params, "limit", 20, 1, 100), params.get("cursor"))
    return {"alerts": [alert_json(a) for a in alerts], "next_cursor": cursor}


@app.route("/v1/orgs/{org}/webhook-endpoints", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def create_webhook_endpoint(org: str) -> Response:
    current = ready()
    principal().require(ADMIN)
    require_profile(path_org(org))
    data = notify_schemas.WebhookEndpointIn.model_validate(body())
    endpoint, secret = register_endpoint(org, data.url, data.types(), clock.now(), current.local_stage)
    return Response(notify_schemas.endpoint_json(endpoint, secret), status_code=201)


@app.route("/v1/orgs/{org}/webhook-endpoints", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def list_webhook_endpoints(org: str) -> dict[str, Any]:
    ready()
    principal().require(org_read(org))
    return {"endpoints": [notify_schemas.endpoint_json(e) for e in list_endpoints(path_org(org))]}


@app.route("/v1/orgs/{org}/webhook-endpoints/{endpoint_id}", methods=["DELETE"], content_types=ANY_MEDIA)
@with_errors
def delete_webhook_endpoint(org: str, endpoint_id: str) -> dict[str, Any]:
    ready()
    principal().require(ADMIN)
    delete_endpoint(path_org(org), path_id(endpoint_id), clock.now())
    return {"id": endpoint_id, "deleted": True}


@app.route("/v1/orgs/{org}/webhook-endpoints/{endpoint_id}/enable", methods=["POST"], content_types=ANY_MEDIA)
@with_errors
def enable_webhook_endpoint(org: str, endpoint_id: str) -> dict[str, Any]:
    ready()
    principal().require(ADMIN)
    return notify_schemas.endpoint_json(enable_endpoint(path_org(org), path_id(endpoint_id)))


@app.route("/v1/orgs/{org}/webhook-endpoints/{endpoint_id}/deliveries", methods=["GET"], content_types=ANY_MEDIA)
@with_errors
def list_webhook_deliveries(org: str, endpoint_id: str) -> dict[str, Any]:
    ready()
    principal().require(org_read(org))
    limit = query_int(app.current_request.query_params, "limit", 50, 1, 100)
    deliveries = delivery_log(path_org(org), path_id(endpoint_id), limit)
    return {"deliveries": [notify_schemas.delivery_json(d) for d in deliveries]}


# Keep last: every other method of each route above answers 405, every other path 404, in the envelope.
answer_what_no_route_serves(app)
