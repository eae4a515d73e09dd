"""Wiring only: the routes' blueprints, and the event handlers and schedules, each calling one service."""

import os
from typing import Any

from chalice import Chalice, Cron, Rate

from chalicelib import clock
from chalicelib.api.events import batch_failures, queue_messages, table_changes
from chalicelib.api.fallbacks import answer_what_no_route_serves
from chalicelib.api.routes_billing import routes as billing_routes
from chalicelib.api.routes_insight import routes as insight_routes
from chalicelib.api.routes_notify import routes as notify_routes
from chalicelib.api.routes_plans import routes as plan_routes
from chalicelib.observability import bind_lambda_context
from chalicelib.services.bootstrap import ready
from chalicelib.services.canary import scheduled_checks
from chalicelib.services.deliveries import process_deliveries
from chalicelib.services.schedules import close_months, reconcile_recent
from chalicelib.services.sync_worker import process_messages
from chalicelib.services.table_changes import on_table_changes

app = Chalice(app_name="usage-invoicing")
for routes in (billing_routes, plan_routes, insight_routes, notify_routes):
    app.register_blueprint(routes)

# Chalice reads these when packaging; infra/chalice-merge.yaml points the mappings at the real resources.
STREAM_ARN = os.environ.get("TABLE_STREAM_ARN", "arn:aws:dynamodb:us-east-1:000000000000:table/invoicing/stream/0")
SYNC_QUEUE_ARN = os.environ.get("SYNC_QUEUE_ARN", "arn:aws:sqs:us-east-1:000000000000:invoicing-sync")
DELIVERY_QUEUE_ARN = os.environ.get("DELIVERY_QUEUE_ARN", "arn:aws:sqs:us-east-1:000000000000:invoicing-deliveries")


@app.middleware("all")
def lambda_context_in_logs(event: Any, get_response: Any) -> Any:
    bind_lambda_context(getattr(event, "lambda_context", None) or getattr(event, "context", None))
    return get_response(event)


@app.schedule(Cron(5, "*", "*", "*", "?", "*"))
def finalize_month(event: Any) -> dict[str, Any]:
    """Hourly: close past periods, open subscribers' drafts, expire unusable credit."""
    return close_months(clock.now(), ready())


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def handle_table_changes(event: Any) -> dict[str, Any]:
    """Finalized invoices to the sync queue; customer events, spend alerts and webhook deliveries."""
    ready()
    on_table_changes(table_changes(event), clock.now())
    return batch_failures([])


@app.on_sqs_message(queue_arn=SYNC_QUEUE_ARN, batch_size=10)
def sync_invoices(event: Any) -> dict[str, Any]:
    ready()
    return batch_failures(process_messages(queue_messages(event), clock.now()))


@app.on_sqs_message(queue_arn=DELIVERY_QUEUE_ARN, batch_size=10)
def deliver_webhooks(event: Any) -> dict[str, Any]:
    ready()
    return batch_failures(process_deliveries(queue_messages(event), clock.now()))


@app.schedule(Cron(20, "*", "*", "*", "?", "*"))
def reconcile(event: Any) -> dict[str, Any]:
    """Hourly: requeue stuck syncs, compare this and last period with Stripe, tell customers of late ones."""
    return reconcile_recent(clock.now(), ready())


@app.schedule(Rate(5, unit=Rate.MINUTES))
def canary(event: Any) -> dict[str, Any]:
    """Every 5 minutes: the sync backlog's gauges, and today's synthetic invoice moved one step."""
    return scheduled_checks(clock.now(), ready())


# Keep last: every other method of each route above answers 405, every other path 404, in the envelope.
answer_what_no_route_serves(app)
