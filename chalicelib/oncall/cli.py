"""`invoicing-oncall`: the argument parser, and one handler per command that calls one module."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..config import Settings
from ..domain.errors import DomainError, NotFound
from ..domain.periods import Period
from ..services.reconcile import ReconcileReport, check_period, requeue_stale
from ..services.sync_worker import default_gateway
from ..storage.invoices import InvoiceRepository
from . import invoices, queues, render, status, webhooks
from .dlq import DeadLetterQueue
from .runner import EXIT_ATTENTION, EXIT_OK, Answer, command_parser, required, run

# SQS message ids are UUIDs; anything shorter is taken as the start of one.
WHOLE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PREFIX_SEARCH_LIMIT = 1000
DESCRIPTION = """On-call tool of the invoicing service: see a stuck Stripe sync, understand it, replay it safely.

exit codes: 0 done; 1 failed or needs attention (not found, refused, AWS error, reconcile
mismatch); 2 bad arguments."""


@dataclass
class Context:
    settings: Settings
    now: datetime
    repo: InvoiceRepository = field(default_factory=InvoiceRepository)
    _sqs: Any = None

    @property
    def sync_queue_url(self) -> str:
        return required("SYNC_QUEUE_URL", self.settings.sync_queue_url, "the resources stack's SyncQueueUrl output")

    @property
    def dlq_url(self) -> str:
        return required("SYNC_DLQ_URL", self.settings.sync_dlq_url, "the resources stack's SyncDLQUrl output")

    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = queues.sqs_client(self.settings)
        return self._sqs

    def dlq(self) -> DeadLetterQueue:
        return DeadLetterQueue(self.sqs(), self.dlq_url, self.sync_queue_url, self.repo,
                               local=queues.endpoint_overridden())


def cmd_status(args: argparse.Namespace, ctx: Context) -> Answer:
    snapshot = status.snapshot(ctx.repo, ctx.sqs(), ctx.sync_queue_url, ctx.dlq_url, ctx.now,
                               include_settled=not args.quick)
    return EXIT_OK, render.jsonable(snapshot), render.status_view(snapshot)


def cmd_dlq_list(args: argparse.Namespace, ctx: Context) -> Answer:
    letters = ctx.dlq().peek(args.limit)
    return EXIT_OK, {"messages": render.jsonable(letters)}, render.letters_table(letters)


class AmbiguousId(DomainError, code="ambiguous_id"):
    """A shortened id that matches more than one."""


def resolve_message_id(dlq: DeadLetterQueue, given: str) -> str:
    """A whole message id as given, or the one id in the DLQ that starts with what was pasted."""
    if WHOLE_ID.match(given):
        return given
    if not given:
        raise AmbiguousId("give a message id (or the start of one) from `invoicing-oncall dlq list`")
    found = sorted({letter.message_id for letter in dlq.peek(PREFIX_SEARCH_LIMIT)
                    if letter.message_id.startswith(given)})
    if not found:
        raise NotFound(f"no message id in the dead-letter queue starts with {given!r}")
    if len(found) > 1:
        raise AmbiguousId(f"{given!r} starts {len(found)} message ids ({', '.join(found)}); give more of it")
    return found[0]


def cmd_dlq_show(args: argparse.Namespace, ctx: Context) -> Answer:
    dlq = ctx.dlq()
    message_id = resolve_message_id(dlq, args.message_id)
    letter = dlq.find(message_id)
    if letter is None:
        raise NotFound(f"message {message_id} is not in the dead-letter queue")
    return EXIT_OK, render.jsonable(letter), render.letter_view(letter)


def cmd_dlq_replay(args: argparse.Namespace, ctx: Context) -> Answer:
    dlq = ctx.dlq()
    if args.all:
        report = dlq.replay_all(ctx.now, args.dry_run)
    else:
        message_id = resolve_message_id(dlq, args.message_id)
        found = dlq.replay_one(message_id, ctx.now, args.dry_run)
        if found is None:
            raise NotFound(f"message {message_id} is not in the dead-letter queue "
                           "(already replayed, expired, or a wrong id); nothing changed")
        report = found
    return EXIT_OK, render.replay_json(report), render.replay_view(report)


def cmd_resync(args: argparse.Namespace, ctx: Context) -> Answer:
    updated = invoices.resync(ctx.repo, args.org, args.invoice_id, ctx.now)
    return EXIT_OK, render.jsonable(updated), render.facts_table(updated, "Re-sync requested")


def cmd_reconcile(args: argparse.Namespace, ctx: Context) -> Answer:
    report = ReconcileReport()
    if args.requeue_stale and ctx.sync_queue_url:  # it sends there: refuse before reading anything if unset
        requeue_stale(ctx.now, ctx.settings.sync_stale_after, report)
    check_period(args.period, default_gateway(), ctx.now, report)
    code = EXIT_ATTENTION if report.mismatched or report.payment_drift else EXIT_OK
    period = str(args.period)
    return code, render.reconcile_json(report, period), render.reconcile_view(report, period)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def build_parser() -> argparse.ArgumentParser:
    parser, commands, common = command_parser("invoicing-oncall", DESCRIPTION)

    cmd = commands.add_parser("status", parents=[common], help="invoices per sync state, oldest pending, queues")
    cmd.add_argument("--quick", action="store_true",
                     help="count only the states waiting for work (settled ones read whole partitions)")
    cmd.set_defaults(handler=cmd_status)

    dlq = commands.add_parser("dlq", parents=[common], help="inspect and replay the sync dead-letter queue")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    cmd = dlq_commands.add_parser("list", parents=[common], help="peek at dead letters without consuming them")
    cmd.add_argument("--limit", type=_positive, default=20, help="read at most N messages (default 20)")
    cmd.set_defaults(handler=cmd_dlq_list)
    cmd = dlq_commands.add_parser("show", parents=[common], help="one dead letter in full, with its invoice")
    cmd.add_argument("message_id", help="as `dlq list` shows it, or its first characters")
    cmd.set_defaults(handler=cmd_dlq_show)
    cmd = dlq_commands.add_parser("replay", parents=[common], help="send dead letters back to the sync queue")
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("message_id", nargs="?", help="the message to replay (or its first characters)")
    which.add_argument("--all", action="store_true", help="every message in the DLQ")
    cmd.add_argument("--dry-run", action="store_true", help="show what would move; change nothing")
    cmd.set_defaults(handler=cmd_dlq_replay)

    cmd = commands.add_parser("resync", parents=[common], help="ask for an invoice's Stripe sync again")
    cmd.add_argument("org")
    cmd.add_argument("invoice_id")
    cmd.set_defaults(handler=cmd_resync)

    cmd = commands.add_parser("reconcile", parents=[common], help="compare a period's synced invoices with Stripe")
    cmd.add_argument("period", type=_period, help="YYYY-MM")
    cmd.add_argument("--requeue-stale", action="store_true", help="also re-enqueue syncs pending too long")
    cmd.set_defaults(handler=cmd_reconcile)
    webhooks.add_commands(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Context], Answer] = args.handler
    return run(lambda parsed, current, now: handler(parsed, Context(current, now)), args)
