"""One contract, two implementations of `SyncedInvoices`: the DynamoDB invoice repository and the fake.

What the sync relies on (chalicelib/services/ports.py): its outcome is recorded only while the invoice
keeps the status and sync request it was read with, an error never undoes `synced`, and the Stripe id
is stored on an existing invoice only.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.synced_invoices import MemorySyncedInvoices, fixed_line

from chalicelib.domain.errors import Conflict
from chalicelib.domain.invoice import Invoice, InvoiceStatus, SyncState
from chalicelib.domain.lines import totals
from chalicelib.domain.periods import Period

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
NOV = Period(2026, 11)
CHARGES = [("setup", 1500), ("support", 2500)]


class MemoryHarness:
    def __init__(self, org: str) -> None:
        self.org, self.store = org, MemorySyncedInvoices()

    def finalized(self) -> Invoice:
        return self.store.finalized(self.org, NOV, [fixed_line(client, cents) for client, cents in CHARGES], NOW)

    def request_sync(self, invoice: Invoice, now: datetime) -> None:
        self.store.request_sync(invoice.org, invoice.id, now)

    def pay(self, invoice: Invoice, now: datetime) -> None:
        self.store.set_status(invoice.org, invoice.id, InvoiceStatus.PAID, now)


class TableHarness:
    def __init__(self, org: str) -> None:
        from chalicelib.storage.invoices import InvoiceRepository

        self.org, self.store = org, InvoiceRepository()

    def finalized(self) -> Invoice:
        """As the invoice service does it: a draft, its items, closed, then finalized with sync pending."""
        draft = self.store.create_draft(self.org, NOV, NOW)
        lines = [fixed_line(client, cents) for client, cents in CHARGES]
        for (client, _), line in zip(CHARGES, lines, strict=True):
            assert self.store.add_fixed_line(draft, line, client, NOW)
            draft = self.store.get(self.org, draft.id)
        closing = self.store.transition(draft, InvoiceStatus.FINALIZING, NOW)
        return self.store.transition(closing, InvoiceStatus.FINALIZED, NOW, totals=totals(lines),
                                     line_count=len(lines), sync_state=SyncState.PENDING)

    def request_sync(self, invoice: Invoice, now: datetime) -> None:
        self.store.request_sync(invoice, now)

    def pay(self, invoice: Invoice, now: datetime) -> None:
        self.store.transition(invoice, InvoiceStatus.PAID, now)


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
