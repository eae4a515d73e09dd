"""What the table's stream starts besides the Stripe sync: customer events, spend alerts, deliveries.

All of it is idempotent (events and alerts are conditional writes under ids derived from their
causes; deliveries are at least once with the event id to dedup by), so Lambda may deliver a
batch again, bisect it, or a replay may run it days later, and nothing happens twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .. import queue
from ..storage.stream_images import Change
from .budgets import BudgetService
from .deliveries import enqueue_jobs, jobs_for_changes
from .notifications import events_from_changes, publish_all
from .sync_worker import changes_needing_sync


@dataclass(frozen=True)
class Reactions:
    events_stored: int
    alerts_recorded: int
    deliveries_enqueued: int


def react_to_changes(changes: Iterable[Change], now: datetime) -> Reactions:
    batch = list(changes)
    stored = publish_all(events_from_changes(batch))
    alerts = BudgetService().evaluate_changes(batch, now)
    jobs = jobs_for_changes(batch)  # events stored above arrive in a later batch, as their own INSERTs
    enqueue_jobs(jobs)
    return Reactions(stored, len(alerts), len(jobs))


def on_table_changes(changes: Iterable[Change], now: datetime) -> Reactions:
    """One stream batch: finalized invoices to the sync queue, then the customer-facing reactions."""
    batch = list(changes)
    queue.enqueue_sync(changes_needing_sync(batch))
    return react_to_changes(batch, now)
