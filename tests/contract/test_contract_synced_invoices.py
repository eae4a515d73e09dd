"""One contract, two implementations of `SyncedInvoices` and `ReconciledInvoices`: the DynamoDB invoice
repository and the fake.

What the sync relies on (chalicelib/services/ports.py): its outcome is recorded only while the invoice
keeps the status and sync request it was read with, an error never undoes `synced`, and the Stripe id
is stored on an existing invoice only. What reconciliation relies on: `by_state` finds an invoice in the
one partition its status and sync state put it in, bounded by period and ordered by period then org.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.invoices import MemoryInvoices, fixed_line

from chalicelib.domain.errors import Conflict
from chalicelib.domain.invoice import Invoice, InvoiceStatus, SyncState, invoice_id_for
from chalicelib.domain.lines import totals
from chalicelib.domain.periods import Period

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
OCT, NOV, DEC = Period(2026, 10), Period(2026, 11), Period(2026, 12)
CHARGES = [("setup", 1500), ("support", 2500)]


class MemoryHarness:
    def __init__(self, org: str) -> None:
        self.org, self.store = org, MemoryInvoices()

    def finalized(self, period: Period = NOV, org: str | None = None) -> Invoice:
        return self.store.finalized(org or self.org, period, [fixed_line(client, cents) for client, cents in CHARGES],
                                    NOW)

    def draft(self, period: Period) -> Invoice:
        return self.store.put(Invoice(self.org, invoice_id_for(period), "ORG-0001", period, InvoiceStatus.DRAFT,
                                      "usd", NOW, NOW), [])

    def another_org(self) -> str:
        return f"{self.org}-b"

    def request_sync(self, invoice: Invoice, now: datetime) -> None:
        self.store.request_sync(invoice.org, invoice.id, now)

    def pay(self, invoice: Invoice, now: datetime) -> None:
        self.store.set_status(invoice.org, invoice.id, InvoiceStatus.PAID, now)

    def void(self, invoice: Invoice, now: datetime) -> None:
        self.store.set_status(invoice.org, invoice.id, InvoiceStatus.VOID, now)


class TableHarness:
    def __init__(self, org: str) -> None:
        from chalicelib.storage.invoices import InvoiceRepository

        self.org, self.store = org, InvoiceRepository()

    def finalized(self, period: Period = NOV, org: str | None = None) -> Invoice:
        """As the invoice service does it: a draft, its items, closed, then finalized with sync pending."""
        draft = self.store.create_draft(org or self.org, period, NOW)
        lines = [fixed_line(client, cents) for client, cents in CHARGES]
        for (client, _), line in zip(CHARGES, lines, strict=True):
            assert self.store.add_fixed_line(draft, line, client, NOW)
            draft = self.store.get(draft.org, draft.id)
        closing = self.store.transition(draft, InvoiceStatus.FINALIZING, NOW)
        return self.store.transition(closing, InvoiceStatus.FINALIZED, NOW, totals=totals(lines),
                                     line_count=len(lines), sync_state=SyncState.PENDING)

    def draft(self, period: Period) -> Invoice:
        return self.store.create_draft(self.org, period, NOW)

    def another_org(self) -> str:
        from chalicelib.storage.orgs import OrgRepository

        OrgRepository().upsert(f"{self.org}-b", "Contract Org B", "billing@example.com", "usd", NOW)
        return f"{self.org}-b"

    def request_sync(self, invoice: Invoice, now: datetime) -> None:
        self.store.request_sync(invoice, now)

    def pay(self, invoice: Invoice, now: datetime) -> None:
        self.store.transition(invoice, InvoiceStatus.PAID, now)

    def void(self, invoice: Invoice, now: datetime) -> None:
        self.store.transition(invoice, InvoiceStatus.VOID, now)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def harness(request: Any) -> Any:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        return MemoryHarness(org)
    request.getfixturevalue("local_aws")
    from chalicelib.storage.orgs import OrgRepository

    OrgRepository().upsert(org, "Contract Org", "billing@example.com", "usd", NOW)
    return TableHarness(org)


def test_a_finalized_invoice_reads_back_with_its_lines(harness):
    invoice = harness.finalized()
    stored = harness.store.get(harness.org, invoice.id)
    assert (stored.status, stored.sync.state, stored.sync.requested_at, stored.total_cents) == (
        InvoiceStatus.FINALIZED, SyncState.PENDING, NOW, 4000)
    assert sorted((line.id, line.amount_cents) for line in harness.store.lines(harness.org, invoice.id)) == \
        sorted((fixed_line(client, cents).id, cents) for client, cents in CHARGES)
    assert harness.store.get(harness.org, "inv_209901") is None
    assert harness.store.lines(harness.org, "inv_209901") == []


def test_recording_synced_stores_stripes_ids_and_may_be_repeated(harness):
    invoice = harness.finalized()
    assert harness.store.record_sync(invoice, SyncState.SYNCED, LATER, stripe_invoice_id="in_1", stripe_number="S-1",
                                     hosted_invoice_url="https://pay/1", invoice_pdf="https://pdf/1")
    stored = harness.store.get(harness.org, invoice.id)
    assert (stored.sync.state, stored.sync.stripe_invoice_id, stored.sync.stripe_invoice_number,
            stored.sync.hosted_invoice_url, stored.sync.invoice_pdf, stored.sync.synced_at) == (
        SyncState.SYNCED, "in_1", "S-1", "https://pay/1", "https://pdf/1", LATER)
    assert stored.version == invoice.version  # the sync's record is not an invoice change
    # The same read recorded again (a redelivery that got this far) still holds; fields not given are kept.
    assert harness.store.record_sync(invoice, SyncState.SYNCED, LATER)
    assert harness.store.get(harness.org, invoice.id).sync.stripe_invoice_id == "in_1"


def test_a_status_change_since_the_read_refuses_the_record(harness):
    invoice = harness.finalized()
    harness.pay(invoice, LATER)
    assert not harness.store.record_sync(invoice, SyncState.SYNCED, LATER, stripe_invoice_id="in_1")
    stored = harness.store.get(harness.org, invoice.id)
    assert (stored.sync.state, stored.sync.stripe_invoice_id) == (SyncState.PENDING, None)
    assert harness.store.record_sync(stored, SyncState.SYNCED, LATER)  # on a fresh read it holds


def test_a_newer_sync_request_refuses_the_older_ones_record(harness):
    invoice = harness.finalized()
    harness.request_sync(invoice, LATER)
    assert not harness.store.record_sync(invoice, SyncState.SYNCED, LATER, stripe_invoice_id="in_1")
    assert not harness.store.record_sync(invoice, SyncState.FAILED, LATER, error="boom", count_attempt=True)
    stored = harness.store.get(harness.org, invoice.id)
    assert (stored.sync.state, stored.sync.requested_at, stored.sync.attempts, stored.sync.last_error) == (
        SyncState.PENDING, LATER, 0, None)


def test_a_missing_invoice_records_nothing(harness):
    invoice = replace(harness.finalized(), id="inv_209901")
    assert not harness.store.record_sync(invoice, SyncState.SYNCED, LATER)
    with pytest.raises(Conflict):
        harness.store.record_stripe_invoice(invoice, "in_1")
    assert harness.store.get(harness.org, "inv_209901") is None


def test_a_failure_counts_an_attempt_keeps_a_bounded_error_and_a_later_success_clears_it(harness):
    invoice = harness.finalized()
    assert harness.store.record_sync(invoice, SyncState.FAILED, LATER, error="x" * 1500, count_attempt=True)
    failed = harness.store.get(harness.org, invoice.id)
    assert (failed.sync.state, failed.sync.attempts, failed.sync.last_error, failed.sync.last_error_at,
            failed.sync.synced_at) == (SyncState.FAILED, 1, "x" * 1000, LATER, None)
    assert harness.store.record_sync(invoice, SyncState.SYNCED, LATER)
    synced = harness.store.get(harness.org, invoice.id)
    assert (synced.sync.state, synced.sync.attempts, synced.sync.last_error, synced.sync.last_error_at) == (
        SyncState.SYNCED, 1, None, None)


def test_a_retryable_error_is_noted_until_the_invoice_is_synced_then_ignored(harness):
    invoice = harness.finalized()
    harness.store.note_sync_error(invoice, "stripe 503", LATER)
    noted = harness.store.get(harness.org, invoice.id)
    assert (noted.sync.state, noted.sync.attempts, noted.sync.last_error, noted.sync.last_error_at) == (
        SyncState.PENDING, 1, "stripe 503", LATER)
    assert harness.store.record_sync(noted, SyncState.SYNCED, LATER)
    harness.store.note_sync_error(noted, "late loser", LATER + timedelta(seconds=1))
    synced = harness.store.get(harness.org, invoice.id)
    assert (synced.sync.state, synced.sync.attempts, synced.sync.last_error) == (SyncState.SYNCED, 1, None)


def test_the_stripe_invoice_id_is_stored_whatever_was_read(harness):
    invoice = harness.finalized()
    harness.pay(invoice, LATER)
    harness.store.record_stripe_invoice(invoice, "in_1")  # no status condition: the id is a fact about Stripe
    stored = harness.store.get(harness.org, invoice.id)
    assert (stored.sync.stripe_invoice_id, stored.status, stored.sync.state) == ("in_1", InvoiceStatus.PAID,
                                                                                SyncState.PENDING)


# -- the state index (reconciliation) -------------------------------------------------------------------

STATES = [status.value for status in InvoiceStatus] + [f"sync_{state.value}" for state in SyncState]


def partitions(harness: Any, invoice: Invoice) -> list[str]:
    """Every state whose listing holds the invoice (the table is shared: other tests' invoices are ignored)."""
    return [state for state in STATES
            if any((found.org, found.id) == (invoice.org, invoice.id) for found in harness.store.by_state(state))]


def test_by_state_finds_an_invoice_in_the_one_partition_its_status_and_sync_state_put_it_in(harness):
    draft = harness.draft(OCT)
    assert partitions(harness, draft) == ["draft"]
    harness.void(draft, LATER)
    assert partitions(harness, draft) == ["void"]

    invoice = harness.finalized()
    assert partitions(harness, invoice) == ["sync_pending"]
    assert harness.store.record_sync(invoice, SyncState.FAILED, LATER, error="boom", count_attempt=True)
    assert partitions(harness, invoice) == ["sync_failed"]
    assert harness.store.record_sync(invoice, SyncState.SYNCED, LATER, stripe_invoice_id="in_1")
    assert partitions(harness, invoice) == ["finalized"]
    harness.pay(harness.store.get(harness.org, invoice.id), LATER)
    assert partitions(harness, invoice) == ["paid"]
    harness.request_sync(harness.store.get(harness.org, invoice.id), LATER + timedelta(minutes=1))
    assert partitions(harness, invoice) == ["sync_pending"]
    listed = next(found for found in harness.store.by_state("sync_pending")
                  if (found.org, found.id) == (invoice.org, invoice.id))
    assert (listed.status, listed.sync.state, listed.sync.stripe_invoice_id, listed.total_cents) == (
        InvoiceStatus.PAID, SyncState.PENDING, "in_1", 4000)


def test_by_state_before_a_period_lists_earlier_periods_only_by_period_then_org(harness):
    other = harness.another_org()
    harness.finalized(NOV, org=other)  # written first: the order is the index's, not the writes'
    for period in (DEC, OCT, NOV):
        harness.finalized(period)
    ours = {harness.org, other}

    def listed(before: Period | None) -> list[tuple[str, str]]:
        return [(str(found.period), found.org) for found in harness.store.by_state("sync_pending", before)
                if found.org in ours]

    assert listed(None) == [("2026-10", harness.org), ("2026-11", harness.org), ("2026-11", other),
                            ("2026-12", harness.org)]
    assert listed(DEC) == [("2026-10", harness.org), ("2026-11", harness.org), ("2026-11", other)]
    assert listed(NOV) == [("2026-10", harness.org)]
    assert listed(OCT) == []
