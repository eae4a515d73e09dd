"""Output: rich tables for people, plain JSON for scripts (same facts in both)."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from enum import Enum
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..domain.money import Money
from ..domain.periods import utc_iso
from ..services.reconcile import ReconcileReport
from .invoices import InvoiceFacts
from .letters import DeadLetter, ReplayAction, ReplayReport
from .status import Status


def jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes as JSON values; timestamps in the service's one format."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2, sort_keys=True)


def replay_json(report: ReplayReport) -> dict[str, Any]:
    return {**jsonable(report), "moved": report.moved, "skipped": report.skipped}


def reconcile_json(report: ReconcileReport, period: str) -> dict[str, Any]:
    return {"period": period, **jsonable(report)}


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def age(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


# What each gsi1 partition means to the person reading `status` (the JSON keeps the partition names).
STATE_LABELS = {
    "finalizing": "closing (finalize in progress)",
    "sync_pending": "finalized, waiting for Stripe",
    "sync_failed": "Stripe sync failed",
    "draft": "open (draft, taking usage)",
    "finalized": "finalized and in Stripe",
    "paid": "paid",
    "uncollectible": "uncollectible",
    "void": "void",
}
FAILED_HINT = ("`invoicing-oncall dlq list` shows why; once the cause is fixed, `invoicing-oncall resync ORG "
               "INVOICE_ID` retries one, `invoicing-oncall dlq replay --all --dry-run` plans retrying all.")


def status_view(status: Status) -> RenderableType:
    invoices = Table("invoices", "count", title="Invoices")
    for state, count in status.invoices.items():
        invoices.add_row(STATE_LABELS.get(state, state), str(count),
                         style="bold red" if state == "sync_failed" and count else None)
    queues = Table("queue", "waiting", "being worked on", "delayed (backing off)", title="Sync queues")
    queues.add_row("sync", str(status.sync_queue.visible), str(status.sync_queue.in_flight),
                   str(status.sync_queue.delayed))
    dlq = status.dlq
    dlq_empty = not (dlq.visible or dlq.in_flight or dlq.delayed)
    if not dlq_empty:
        queues.add_row("dead letters", str(dlq.visible), str(dlq.in_flight), str(dlq.delayed), style="bold red")
    parts: list[RenderableType] = [invoices, queues]
    if dlq_empty:
        parts.append(Text("Dead-letter queue: empty."))
    failed = status.invoices.get("sync_failed", 0)
    if failed:
        parts.append(Text(f"{failed} invoice{'s' if failed > 1 else ''} failed to sync: {FAILED_HINT}",
                          style="bold red"))
    oldest = status.oldest_pending
    parts.append(Text("No invoice is waiting for a sync.") if oldest is None else Text(
        f"Oldest pending sync: {oldest.org}/{oldest.invoice_id}, requested {when(oldest.requested_at)} "
        f"({age(oldest.age_seconds)} ago)"))
    parts.append(Text(f"As of {when(status.as_of)}.", style="dim"))
    return Group(*parts)


def _attempts(invoice: InvoiceFacts) -> str:
    return f"{invoice.sync_attempts} worker attempt{'' if invoice.sync_attempts == 1 else 's'}"


def letters_table(letters: list[DeadLetter]) -> RenderableType:
    """Ids are never cut (people paste them into `dlq show`); the other columns wrap instead."""
    if not letters:
        return Text("The dead-letter queue is empty.")
    table = Table(title=f"Dead letters ({len(letters)} shown, none consumed)", show_lines=True)
    table.add_column("message id", no_wrap=True, min_width=36)
    table.add_column("invoice now", overflow="fold")
    table.add_column("why it is here", overflow="fold")
    for letter in letters:
        invoice = letter.invoice
        where = f"{letter.org}/{letter.invoice_id}" if letter.org else "(not a sync message)"
        now = (f"{where}\n{invoice.sync_state}, {_attempts(invoice)}\nlast error at {when(invoice.last_error_at)}"
               if invoice else f"{where}\n(no invoice)")
        why = letter.reason or "retries exhausted: SQS moved it after max receives"
        if invoice and invoice.last_error and invoice.last_error != letter.reason:
            why += f"\nlast error: {invoice.last_error}"
        table.add_row(letter.message_id, now, why)
    return table


def facts_table(invoice: InvoiceFacts, title: str) -> Table:
    table = Table("field", "value", title=title, show_header=False)
    rows = [
        ("invoice", f"{invoice.org}/{invoice.invoice_id} ({invoice.number}, {invoice.period})"),
        ("status", invoice.status),
        ("total", f"{Money(invoice.total_cents, invoice.currency).display()} {invoice.currency}"),
        ("sync state", invoice.sync_state),
        ("worker attempts", str(invoice.sync_attempts)),
        ("last error", invoice.last_error or "-"),
        ("last error at", when(invoice.last_error_at)),
        ("sync requested", when(invoice.requested_at)),
        ("synced", when(invoice.synced_at)),
        ("stripe invoice", invoice.stripe_invoice_id or "-"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def letter_view(letter: DeadLetter) -> RenderableType:
    message = Table(title="Dead letter", show_header=False)
    message.add_column("field", no_wrap=True)
    message.add_column("value", overflow="fold")
    message.add_row("message id", letter.message_id)
    message.add_row("sent", when(letter.sent_at))
    message.add_row("reason", letter.reason or "(retries exhausted: SQS redrove it after max receives)")
    message.add_row("body", letter.body)
    parts: list[RenderableType] = [message]
    parts.append(facts_table(letter.invoice, "Its invoice now") if letter.invoice
                 else Text("No invoice matches this message."))
    return Group(*parts)


def replay_view(report: ReplayReport) -> RenderableType:
    if not report.outcomes and not report.move_task:
        return Text("The dead-letter queue is empty: nothing to replay.")
    done = {ReplayAction.RESYNC: "resynced", ReplayAction.MOVE: "moved", ReplayAction.SKIP: "left in DLQ",
            ReplayAction.DROP: "dropped (invoice replayed once)"}
    table = Table("message id", "invoice", "action", "why", "sync state",
                  title=f"Replay ({report.method}{', dry run: nothing changed' if report.dry_run else ''})")
    for outcome in report.outcomes:
        style = "yellow" if outcome.action is ReplayAction.SKIP else None
        invoice = f"{outcome.org}/{outcome.invoice_id}" if outcome.org else "?"
        action = f"would {outcome.action.value}" if report.dry_run else done[outcome.action]
        table.add_row(outcome.message_id, invoice, action, outcome.detail,
                      outcome.sync_state or "-", style=style)
    lines = [f"{report.moved} {'to move' if report.dry_run else 'moved'}, {report.skipped} left in the DLQ."]
    if report.move_task:
        lines.append(f"SQS move task: {report.move_task}")
    if report.note:
        lines.append(report.note)
    return Group(table, Text("\n".join(lines)))


def reconcile_view(report: ReconcileReport, period: str) -> RenderableType:
    table = Table("result", "invoices", "details", title=f"Reconciliation of {period}")
    for name, entries in (("matched", report.matched), ("mismatched", report.mismatched),
                          ("unchecked", report.unchecked), ("requeued", report.requeued),
                          ("payment drift", report.payment_drift)):
        style = "bold red" if name in ("mismatched", "payment drift") and entries else None
        table.add_row(name, str(len(entries)), "\n".join(entries) if name != "matched" else "", style=style)
    if not report.mismatched:
        return table
    return Group(table, Text("Mismatched invoices are now marked sync failed; `resync ORG INVOICE_ID` retries one.",
                             style="bold red"))


def error(as_json: bool, code: str, message: str) -> None:
    """Scripts read the error from stdout as JSON; people read it on stderr."""
    if as_json:
        sys.stdout.write(dumps({"error": {"code": code, "message": message}}) + "\n")
    else:
        Console(stderr=True, soft_wrap=True).print(Text(f"error: {message}", style="bold red"))
