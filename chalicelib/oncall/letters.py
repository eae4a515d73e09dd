"""Dead letters as on-call reads them, and what replaying one would do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ..domain.invoice import FROZEN, Invoice, SyncState
from ..domain.sync_message import MalformedSyncMessage, SyncMessage
from ..storage.invoice_headers import InvoiceHeaders
from .invoices import InvoiceFacts, facts, lookup

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Raw = dict[str, Any]  # one message as SQS's ReceiveMessage returns it


class ReplayAction(StrEnum):
    RESYNC = "resync"  # invoice marked pending again: the table's stream sends its one sync message
    MOVE = "move"  # invoice already synced: the message goes back as is and the worker finds nothing to do
    DROP = "drop"  # another message of the same invoice was replayed in this run: deleted, not sent
    SKIP = "skip"  # left in the DLQ: sending it again cannot help until someone fixes the cause


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    org: str | None
    invoice_id: str | None
    sent_at: datetime | None
    receive_count: int  # SQS counts every receive, this tool's own peeks included
    reason: str | None  # set by the worker on permanent failures; absent when SQS redrove after max receives
    invoice: InvoiceFacts | None
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    message_attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayOutcome:
    message_id: str
    org: str | None
    invoice_id: str | None
    action: ReplayAction
    detail: str
    sync_state: str | None


@dataclass(frozen=True)
class ReplayReport:
    dry_run: bool
    method: str  # "receive-send-delete" or "message-move-task"
    outcomes: list[ReplayOutcome]
    move_task: str | None = None
    note: str | None = None

    @property
    def moved(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.action is not ReplayAction.SKIP)

    @property
    def skipped(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.action is ReplayAction.SKIP)


def parse_body(body: str) -> tuple[str | None, str | None]:
    """The org and invoice id of a sync message, or (None, None) when it is not one (the worker's rule)."""
    try:
        message = SyncMessage.parse(body)
    except MalformedSyncMessage:
        return None, None
    return message.org, message.invoice_id


def _timestamp(millis: str | None) -> datetime | None:
    return EPOCH + timedelta(milliseconds=int(millis)) if millis else None


def plan(invoice: Invoice | None, org: str | None) -> tuple[ReplayAction, str]:
    """What replaying a message does, given its invoice as stored now."""
    if org is None:
        return ReplayAction.SKIP, "not a sync message: no org and invoice id in its body"
    if invoice is None:
        return ReplayAction.SKIP, "invoice not found"
    if invoice.status not in FROZEN:
        return ReplayAction.SKIP, f"invoice is {invoice.status.value}: it is synced once finalized"
    if invoice.sync.state is SyncState.SYNCED:
        return ReplayAction.MOVE, "already synced: the worker will find nothing to do"
    return ReplayAction.RESYNC, f"sync {invoice.sync.state.value}: the worker will try it again"


def dead_letters(raws: Iterable[Raw], repo: InvoiceHeaders) -> list[DeadLetter]:
    """Each message with its invoice as stored now (read once per invoice: duplicates are common)."""
    cache: dict[tuple[str, str], InvoiceFacts | None] = {}
    letters = []
    for raw in raws:
        org, invoice_id = parse_body(raw["Body"])
        invoice_facts = None
        if org and invoice_id:
            if (org, invoice_id) not in cache:
                invoice = lookup(repo, org, invoice_id)
                cache[(org, invoice_id)] = facts(invoice) if invoice else None
            invoice_facts = cache[(org, invoice_id)]
        attributes = {str(k): str(v) for k, v in raw.get("Attributes", {}).items()}
        message_attributes = {str(k): str(v.get("StringValue", v.get("BinaryValue", "")))
                              for k, v in raw.get("MessageAttributes", {}).items()}
        letters.append(DeadLetter(
            message_id=raw["MessageId"], org=org, invoice_id=invoice_id,
            sent_at=_timestamp(attributes.get("SentTimestamp")),
            receive_count=int(attributes.get("ApproximateReceiveCount", "0")),
            reason=message_attributes.get("reason"), invoice=invoice_facts, body=raw["Body"],
            attributes=attributes, message_attributes=message_attributes,
        ))
    return letters
