"""On DynamoDB Local: a change computed from a read taken before the sync recorded its state cannot file the
invoice under the wrong work partition (recording a sync does not bump the invoice's version)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sync_support import create_org, finalized_invoice, stored


def partitions_of(org: str, invoice_id: str) -> list[str]:
    """The work partitions (gsi1) that list the invoice."""
    from chalicelib.storage.invoices import InvoiceRepository

    repo = InvoiceRepository()
    return [state for state in ("sync_pending", "sync_failed", "finalized", "paid", "uncollectible")
            if any((i.org, i.id) == (org, invoice_id) for i in repo.by_state(state))]


def read_then_synced(now: datetime) -> tuple[str, Any, Any]:
    """An org, its finalized invoice as read before the sync recorded `synced`, and the repository."""
    from chalicelib.domain.invoice import SyncState
    from chalicelib.storage.invoices import InvoiceRepository

    org = create_org("index-race")
    read_before_sync = finalized_invoice(org, lines=2, now=now)
    repo = InvoiceRepository()
    assert repo.record_sync(stored(org, read_before_sync.id), SyncState.SYNCED, now, stripe_invoice_id="in_x")
    return org, read_before_sync, repo


def test_a_transition_from_a_read_older_than_the_sync_record_is_refused(local_aws):
    from chalicelib.domain.errors import StaleRead
    from chalicelib.domain.invoice import InvoiceStatus

    now = datetime.now(UTC)
    org, read_before_sync, repo = read_then_synced(now)
    with pytest.raises(StaleRead):
        repo.transition(read_before_sync, InvoiceStatus.PAID, now + timedelta(seconds=1))
    assert stored(org, read_before_sync.id).status is InvoiceStatus.FINALIZED
    assert partitions_of(org, read_before_sync.id) == ["finalized"]


def test_stripe_paying_an_invoice_read_before_the_sync_finished_files_it_as_paid(local_aws):
    from chalicelib.domain.invoice import InvoiceStatus, SyncState
    from chalicelib.services.payments import apply_stripe_event

    now = datetime.now(UTC)
    org, read_before_sync, repo = read_then_synced(now)
    answer = apply_stripe_event("invoice.paid", "evt_index_race", {"attempt_count": 1}, read_before_sync, repo,
                                now + timedelta(seconds=1))

    assert answer == "applied"
    paid = stored(org, read_before_sync.id)
    assert (paid.status, paid.sync.state) == (InvoiceStatus.PAID, SyncState.SYNCED)
    assert partitions_of(org, read_before_sync.id) == ["paid"]  # not left under sync_pending for good
