"""One snapshot of the sync's health: invoices per state, the oldest pending sync, queue depths."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.invoice import InvoiceStatus, SyncState
from ..services.backlog import PENDING, OldestPending, oldest_pending
from ..storage import keys
from ..storage.convert import index_state
from ..storage.invoice_headers import InvoiceHeaders
from ..storage.models import InvoiceItem
from . import queues

FAILED = index_state(InvoiceStatus.FINALIZED, SyncState.FAILED)
# The gsi1 partitions waiting for work; cheap to count because they stay small.
WORK_STATES = (InvoiceStatus.FINALIZING.value, PENDING, FAILED)
# Settled invoices pile up over the years; counting them reads the whole partition.
SETTLED_STATES = (
    InvoiceStatus.DRAFT.value,
    InvoiceStatus.FINALIZED.value,
    InvoiceStatus.PAID.value,
    InvoiceStatus.UNCOLLECTIBLE.value,
    InvoiceStatus.VOID.value,
)


@dataclass(frozen=True)
class Status:
    as_of: datetime
    invoices: dict[str, int]
    oldest_pending: OldestPending | None
    sync_queue: queues.QueueDepth
    dlq: queues.QueueDepth


def count_state(state: str) -> int:
    """Select COUNT on the state's gsi1 partition: no items are returned, only how many."""
    return InvoiceItem.state_index.count(keys.state_gsi_pk(state))


def snapshot(repo: InvoiceHeaders, sqs: Any, sync_queue_url: str, dlq_url: str, now: datetime,
             include_settled: bool = True) -> Status:
    pending_count, oldest = oldest_pending(repo, now)
    states = WORK_STATES + (SETTLED_STATES if include_settled else ())
    counts = {state: pending_count if state == PENDING else count_state(state) for state in states}
    return Status(as_of=now, invoices=counts, oldest_pending=oldest,
                  sync_queue=queues.depth(sqs, sync_queue_url), dlq=queues.depth(sqs, dlq_url))
