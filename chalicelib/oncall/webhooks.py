"""`invoicing-oncall webhooks ...`: customers' endpoints, their delivery logs, and replaying deliveries.

Replays are safe to repeat: a delivery already made is skipped by the worker, and receivers
dedup by event id anyway.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

from ..api.notify_schemas import endpoint_json
from ..domain.endpoints import DeliveryStatus
from ..domain.errors import NotFound
from ..domain.periods import parse_utc
from ..services.deliveries import DeliveryJob, enqueue_jobs
from ..services.endpoints import enable_endpoint, require_endpoint
from ..storage.endpoints import DeliveryRepository, EndpointRepository
from ..storage.notices import NoticeRepository
from . import render
from .runner import EXIT_OK, Answer, required

if TYPE_CHECKING:
    from .cli import Context

QUEUE = ("DELIVERY_QUEUE_URL", "the delivery queue's URL (resources stack output DeliveryQueueUrl)")
DLQ = ("DELIVERY_DLQ_URL", "the delivery DLQ's URL (resources stack output DeliveryDLQUrl)")


@dataclass
class Replay:
    queued: list[str] = field(default_factory=list)  # event ids sent back to the delivery queue
    skipped: list[str] = field(default_factory=list)  # already delivered
    dry_run: bool = False


def replay_endpoint(org: str, endpoint_id: str, since: datetime | None, event_ids: list[str], dry_run: bool,
                    queue_url: str) -> Replay:
    """Queue again the org's stored events this endpoint wants and has not received (all, or the named ones,
    or those since a time): after an outage past the retries, or while the endpoint was disabled."""
    endpoint = require_endpoint(org, endpoint_id)
    log = {d.event_id: d for d in DeliveryRepository().log(org, endpoint_id, limit=1000)}
    events = sorted(NoticeRepository().of_org(org), key=lambda e: e.created)
    if event_ids:
        missing = set(event_ids) - {e.id for e in events}
        if missing:
            raise NotFound(f"no stored event {', '.join(sorted(missing))} for {org} (events are kept 35 days)")
        events = [e for e in events if e.id in event_ids]
    else:
        events = [e for e in events if e.type in endpoint.event_types and (since is None or e.created >= since)]
    report = Replay(dry_run=dry_run)
    jobs = []
    for event in events:
        delivered = event.id in log and log[event.id].status is DeliveryStatus.DELIVERED
        (report.skipped if delivered else report.queued).append(event.id)
        if not delivered:
            jobs.append(DeliveryJob(org, endpoint_id, event.id, event.created))
    if not dry_run:
        enqueue_jobs(jobs, queue_url)
    return report


def replay_dead_letters(sqs: Any, dlq_url: str, queue_url: str, dry_run: bool, limit: int = 1000) -> list[str]:
    """Move deliveries that gave up back to the delivery queue (their retry schedule starts over)."""
    moved: list[str] = []
    while len(moved) < limit:
        batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    VisibilityTimeout=0 if dry_run else 30).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in moved]
        if not fresh:
            return moved
        for message in fresh:
            if not dry_run:
                sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved.append(message["MessageId"])
    return moved


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*("-" if value is None else str(value) for value in row))
    return table


def cmd_list(args: argparse.Namespace, ctx: Context) -> Answer:
    endpoints = EndpointRepository().of_org(args.org)
    rows = [[e.id, e.url, e.status.value, render.when(e.failing_since), render.when(e.last_success_at),
             e.disabled_reason] for e in endpoints]
    view = _table(f"Webhook endpoints of {args.org}", ["id", "url", "status", "failing since", "last success",
                                                       "disabled because"], rows)
    return EXIT_OK, {"endpoints": [endpoint_json(e) for e in endpoints]}, view


def cmd_deliveries(args: argparse.Namespace, ctx: Context) -> Answer:
    require_endpoint(args.org, args.endpoint_id)
    log = DeliveryRepository().log(args.org, args.endpoint_id, limit=args.limit)
    rows = [[d.event_id, d.event_type, d.status.value, d.attempts, d.last_status_code, d.last_latency_ms,
             render.when(d.last_attempt_at), d.last_error] for d in log]
    view = _table(f"Deliveries to {args.endpoint_id}", ["event", "type", "status", "attempts", "last status",
                                                        "ms", "last attempt", "last error"], rows)
    return EXIT_OK, {"deliveries": render.jsonable(log)}, view


def cmd_replay(args: argparse.Namespace, ctx: Context) -> Answer:
    since = parse_utc(args.since) if args.since else None
    report = replay_endpoint(args.org, args.endpoint_id, since, args.event or [], args.dry_run,
                             required(QUEUE[0], ctx.settings.delivery_queue_url, QUEUE[1]))
    verb = "would queue" if report.dry_run else "queued"
    view = _table(f"Replay to {args.endpoint_id}", ["events", "count", "ids"], [
        [verb, len(report.queued), "\n".join(report.queued)],
        ["already delivered", len(report.skipped), ""]])
    return EXIT_OK, render.jsonable(report), view


def cmd_enable(args: argparse.Namespace, ctx: Context) -> Answer:
    endpoint = enable_endpoint(args.org, args.endpoint_id)
    return EXIT_OK, endpoint_json(endpoint), _table("Re-enabled", ["id", "url", "status"],
                                                      [[endpoint.id, endpoint.url, endpoint.status.value]])


def cmd_dlq_replay(args: argparse.Namespace, ctx: Context) -> Answer:
    moved = replay_dead_letters(ctx.sqs(), required(DLQ[0], ctx.settings.delivery_dlq_url, DLQ[1]),
                                required(QUEUE[0], ctx.settings.delivery_queue_url, QUEUE[1]), args.dry_run)
    verb = "would move" if args.dry_run else "moved"
    return EXIT_OK, {"moved": moved, "dry_run": args.dry_run}, _table(
        "Delivery dead letters", ["messages", "count"], [[verb, len(moved)]])


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The `webhooks` command group, registered by cli.build_parser."""
    group = commands.add_parser("webhooks", parents=[common], help="customers' webhook endpoints and deliveries")
    actions = group.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")

    def action(name: str, handler: Callable[..., Answer], help_text: str, endpoint: bool = True) -> Any:
        cmd = actions.add_parser(name, parents=[common], help=help_text)
        cmd.add_argument("org")
        if endpoint:
            cmd.add_argument("endpoint_id")
        cmd.set_defaults(handler=handler)
        return cmd

    action("list", cmd_list, "an org's endpoints: status, failing since, why disabled", endpoint=False)
    action("deliveries", cmd_deliveries, "an endpoint's delivery log").add_argument(
        "--limit", type=int, default=50, help="newest N (default 50)")
    replay = action("replay", cmd_replay, "queue again the events an endpoint has not received")
    replay.add_argument("--event", action="append", help="this event id (repeatable); default: all not delivered")
    replay.add_argument("--since", help="only events created since this time (ISO 8601, UTC)")
    replay.add_argument("--dry-run", action="store_true", help="show what would be queued; change nothing")
    action("enable", cmd_enable, "re-enable an endpoint disabled after failing for days")
    dlq = actions.add_parser("dlq-replay", parents=[common], help="move given-up deliveries back to the queue")
    dlq.add_argument("--dry-run", action="store_true", help="count them; change nothing")
    dlq.set_defaults(handler=cmd_dlq_replay)
