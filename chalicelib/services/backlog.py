"""How far behind the Stripe sync is: invoices waiting for it, and how long the oldest has waited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from ..domain.invoice import InvoiceStatus, SyncState
from ..observability import metrics
from ..storage.convert import index_state
from ..storage.invoice_headers import InvoiceHeaders

PENDING = index_state(InvoiceStatus.FINALIZED, SyncState.PENDING)


@dataclass(frozen=True)
class OldestPending:
    org: str
    invoice_id: str
    requested_at: datetime | None
    age_seconds: int | None


def oldest_pending(repo: InvoiceHeaders, now: datetime) -> tuple[int, OldestPending | None]:
    """How many invoices wait for a sync, and which has waited longest (gsi1 sorts by period, not age)."""
    pending = list(repo.by_state(PENDING))
    if not pending:
        return 0, None
    # A pending sync without a requested time cannot say how long it waited: it sorts first.
    first = min(pending, key=lambda i: (i.sync.requested_at is not None, i.sync.requested_at or now))
    requested = first.sync.requested_at
    age = int((now - requested).total_seconds()) if requested is not None else None
    return len(pending), OldestPending(first.org, first.id, requested, age)


def emit_backlog(repo: InvoiceHeaders, now: datetime) -> tuple[int, OldestPending | None]:
    """The dashboard's gauges: PendingSyncs and OldestPendingSyncSeconds (0 when nothing waits)."""
    count, oldest = oldest_pending(repo, now)
    metrics.add_metric(name="PendingSyncs", unit=MetricUnit.Count, value=count)
    age = oldest.age_seconds if oldest and oldest.age_seconds is not None else 0
    metrics.add_metric(name="OldestPendingSyncSeconds", unit=MetricUnit.Seconds, value=age)
    return count, oldest
