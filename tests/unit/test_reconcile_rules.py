"""Reconciliation's rules on in-memory invoices, Stripe and queue (milliseconds each): syncs pending too long
are sent again, once each; a synced invoice matches its Stripe copy only on total, currency and every line
that was sent, and a mismatch is recorded as a failed sync; a Stripe error leaves it unchecked; a payment
status behind Stripe's is flagged."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from fakes.invoices import MemoryInvoices, fixed_line
from fakes.stripe_invoices import FakeLine, FakeStripeInvoice, MemoryStripe
from fakes.sync_queue import RecordingSyncQueue

from chalicelib import queue
from chalicelib.domain.collection import DEFAULT_COLLECTION
from chalicelib.domain.invoice import Invoice, InvoiceStatus, PaymentStatus, SyncInfo, SyncState
from chalicelib.domain.lines import LineItem
from chalicelib.domain.periods import Period
from chalicelib.domain.sync_message import SyncMessage
from chalicelib.services.reconcile import ReconcileReport, check_period, requeue_stale
from chalicelib.stripe.errors import PermanentSyncError, RetryableSyncError
from chalicelib.stripe.lines import STRIPE_MAX_LINES, stripe_lines

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
STALE_AFTER = timedelta(minutes=30)
OCT, NOV, DEC = Period(2026, 10), Period(2026, 11), Period(2026, 12)
# A free line lets a test drop or add a line without changing the total, so only the line check can see it.
LINES = [fixed_line("setup", 1500), fixed_line("support", 2500), fixed_line("free", 0)]


@dataclass
class World:
    invoices: MemoryInvoices = field(default_factory=MemoryInvoices)
    stripe: MemoryStripe = field(default_factory=MemoryStripe)
    queue: RecordingSyncQueue = field(default_factory=RecordingSyncQueue)

    def pending(self, org: str, requested_at: datetime | None, period: Period = NOV) -> Invoice:
        invoice = self.invoices.finalized(org, period, LINES, NOW - timedelta(days=1))
        return self.invoices.put(replace(invoice, sync=SyncInfo(SyncState.PENDING, requested_at=requested_at)),
                                 LINES)

    def synced(self, org: str, period: Period = NOV, lines: list[LineItem] = LINES,
               status: InvoiceStatus = InvoiceStatus.FINALIZED, stripe_status: str = "open",
               payment: PaymentStatus = PaymentStatus.NONE) -> Invoice:
        """Finalized here, its lines sent to Stripe as the sync sends them, finalized there, recorded synced;
        then `status` and `payment` here and `stripe_status` there, as collection left them."""
        invoice = self.invoices.finalized(org, period, lines, NOW - timedelta(days=1))
        customer = self.stripe.create_customer(org, org, f"billing@{org}.example")
        copy = self.stripe.create_invoice(customer, org, invoice.id, invoice.number, invoice.currency, str(period),
                                          DEFAULT_COLLECTION)
        self.stripe.add_lines(copy.id, org, invoice.id, stripe_lines(invoice, lines))
        self.stripe.finalize(copy.id, org, invoice.id)
        self.stripe.invoices[copy.id].status = stripe_status
        assert self.invoices.record_sync(invoice, SyncState.SYNCED, NOW - timedelta(hours=1), stripe_invoice_id=copy.id)
        return self.invoices.put(replace(self.ours(invoice), status=status, payment_status=payment), lines)

    def copy_of(self, invoice: Invoice) -> FakeStripeInvoice:
        assert invoice.sync.stripe_invoice_id is not None
        return self.stripe.invoices[invoice.sync.stripe_invoice_id]

    def ours(self, invoice: Invoice) -> Invoice:
        stored = self.invoices.get(invoice.org, invoice.id)
        assert stored is not None
        return stored

    def requeue(self) -> ReconcileReport:
        return requeue_stale(NOW, STALE_AFTER, invoices=self.invoices, sync_queue=self.queue)

    def check(self, period: Period = NOV) -> ReconcileReport:
        return check_period(period, self.stripe, NOW, invoices=self.invoices)


@pytest.fixture
def world() -> World:
    return World()


def name(invoice: Invoice) -> str:
    return f"{invoice.org}/{invoice.id}"


def verdicts(report: ReconcileReport) -> dict[str, list[str]]:
    """The report's non-empty lists, each entry cut to its invoice name."""
    lists = {"requeued": report.requeued, "matched": report.matched, "mismatched": report.mismatched,
             "unchecked": report.unchecked, "payment_drift": report.payment_drift}
    return {key: [entry.split(":")[0] for entry in entries] for key, entries in lists.items() if entries}


# -- stale syncs are sent again ------------------------------------------------------------------------------

def test_syncs_pending_longer_than_stale_after_or_never_requested_are_enqueued_once_each(world):
    long_ago = NOW - STALE_AFTER - timedelta(seconds=1)
    stale = world.pending("acme", long_ago)
    never = world.pending("globex", None)
    fresh = world.pending("initech", NOW - timedelta(minutes=1))
    just_in_time = world.pending("umbrella", NOW - STALE_AFTER)  # stale only once strictly older
    report = world.requeue()
    assert world.queue.sent == [SyncMessage("acme", stale.id, long_ago), SyncMessage("globex", never.id, None)]
    assert report.requeued == [name(stale), name(never)]
    assert name(fresh) not in report.requeued and name(just_in_time) not in report.requeued


def test_only_pending_syncs_are_enqueued_not_failed_or_synced_ones(world):
    failed = world.pending("acme", NOW - timedelta(days=2))
    assert world.invoices.record_sync(failed, SyncState.FAILED, NOW - timedelta(days=2), error="card declined")
    world.synced("globex")
    report = world.requeue()
    assert (world.queue.sent, report.requeued) == ([], [])


def test_requeueing_adds_to_the_report_it_is_given(world):
    stale = world.pending("acme", NOW - timedelta(days=1))
    report = ReconcileReport(matched=["earlier/inv_202610"])
    assert requeue_stale(NOW, STALE_AFTER, report, invoices=world.invoices, sync_queue=world.queue) is report
    assert (report.matched, report.requeued) == (["earlier/inv_202610"], [name(stale)])


def test_the_sqs_queue_sends_through_enqueue_sync_as_it_is_when_called(monkeypatch):
    sent: list[list[SyncMessage]] = []
    monkeypatch.setattr(queue, "enqueue_sync", sent.append)
    message = SyncMessage("acme", "inv_202611", NOW)
    queue.SqsSyncQueue().enqueue_sync([message])
    assert sent == [[message]]


# -- a synced invoice against its Stripe copy ----------------------------------------------------------------

def test_invoices_whose_copy_holds_the_same_total_currency_and_lines_match(world):
    finalized = world.synced("acme")
    paid = world.synced("globex", status=InvoiceStatus.PAID, stripe_status="paid", payment=PaymentStatus.PAID)
    uncollectible = world.synced("initech", status=InvoiceStatus.UNCOLLECTIBLE, stripe_status="uncollectible",
                                 payment=PaymentStatus.UNCOLLECTIBLE)
    report = world.check()
    assert verdicts(report) == {"matched": [name(finalized), name(paid), name(uncollectible)]}
    assert all(world.ours(invoice).sync.state is SyncState.SYNCED for invoice in (finalized, paid, uncollectible))


def test_an_invoice_over_250_lines_matches_the_rolled_up_lines_that_were_sent(world):
    lines = [replace(fixed_line(f"charge-{n:03d}", 100 + n), app=f"app-{n % 3}") for n in range(STRIPE_MAX_LINES + 50)]
    invoice = world.synced("acme", lines=lines)
    assert sorted(world.stripe.line_keys(invoice.sync.stripe_invoice_id)) == [
        "rollup:app-0:adjustments", "rollup:app-1:adjustments", "rollup:app-2:adjustments"]
    assert verdicts(world.check()) == {"matched": [name(invoice)]}
    # One rolled-up line off by a cent, another a cent up: the same total, but not what was sent.
    held = world.copy_of(invoice).lines
    held[0].amount, held[1].amount = held[0].amount + 1, held[1].amount - 1
    assert verdicts(world.check()) == {"mismatched": [name(invoice)]}


def tamper_total(world: World, invoice: Invoice) -> None:
    world.invoices.put(replace(invoice, total_cents=invoice.total_cents + 100), LINES)  # lines as sent


def tamper_currency(world: World, invoice: Invoice) -> None:
    world.copy_of(invoice).currency = "eur"


def drop_a_line(world: World, invoice: Invoice) -> None:
    world.copy_of(invoice).lines = [line for line in world.copy_of(invoice).lines if line.key != LINES[2].id]


def add_a_line(world: World, invoice: Invoice) -> None:
    world.copy_of(invoice).lines.append(FakeLine("line:fixed:stray", 0, "a line we never sent"))


def move_a_cent(world: World, invoice: Invoice) -> None:
    first, second = world.copy_of(invoice).lines[:2]
    first.amount, second.amount = first.amount + 1, second.amount - 1


@pytest.mark.parametrize("tamper", [tamper_total, tamper_currency, drop_a_line, add_a_line, move_a_cent])
def test_a_copy_that_differs_is_mismatched_and_the_sync_recorded_failed_with_the_reason(world, tamper):
    invoice = world.synced("acme", stripe_status="paid")  # drift would be flagged too, were it a match
    tamper(world, invoice)
    report = world.check()
    assert verdicts(report) == {"mismatched": [name(invoice)]}
    reason = report.mismatched[0].removeprefix(f"{name(invoice)}: ")
    assert reason.startswith("Stripe total ")
    ours = world.ours(invoice)
    assert (ours.sync.state, ours.sync.last_error, ours.sync.last_error_at) == (
        SyncState.FAILED, f"reconciliation mismatch: {reason}", NOW)
    assert [found.id for found in world.invoices.by_state("sync_failed")] == [invoice.id]


class FailingStripe(MemoryStripe):
    """A Stripe that answers `error` to one call about one invoice."""

    def __init__(self, error: Exception, call: str) -> None:
        super().__init__()
        self.error, self.call, self.failing = error, call, ""

    def retrieve_invoice(self, invoice_id: str) -> FakeStripeInvoice:
        self._maybe_fail("retrieve_invoice", invoice_id)
        return super().retrieve_invoice(invoice_id)

    def line_keys(self, stripe_invoice_id: str) -> dict[str, int]:
        self._maybe_fail("line_keys", stripe_invoice_id)
        return super().line_keys(stripe_invoice_id)

    def _maybe_fail(self, call: str, stripe_invoice_id: str) -> None:
        if (call, stripe_invoice_id) == (self.call, self.failing):
            raise self.error


@pytest.mark.parametrize("error", [RetryableSyncError("stripe 503"), PermanentSyncError("stripe 404: No such invoice")])
@pytest.mark.parametrize("call", ["retrieve_invoice", "line_keys"])
def test_an_invoice_stripe_will_not_show_is_unchecked_left_as_it_was_and_the_next_one_checked(error, call):
    stripe = FailingStripe(error, call)
    world = World(stripe=stripe)
    broken, fine = world.synced("acme"), world.synced("globex")
    stripe.failing = broken.sync.stripe_invoice_id or ""
    report = world.check()
    assert report.unchecked == [f"{name(broken)}: {error}"]
    assert verdicts(report) == {"unchecked": [name(broken)], "matched": [name(fine)]}
    assert world.ours(broken) == broken


def test_payment_status_behind_stripes_is_flagged_on_a_matching_invoice(world):
    behind = world.synced("acme", stripe_status="paid")  # Stripe was paid; the `invoice.paid` event never applied
    agreed = world.synced("globex", stripe_status="open")
    report = world.check()
    assert verdicts(report) == {"matched": [name(behind), name(agreed)], "payment_drift": [name(behind)]}
    assert report.payment_drift == [f"{name(behind)}: Stripe invoice is paid; our payment status is none"]
    assert world.ours(behind).sync.state is SyncState.SYNCED


def test_invoices_of_other_periods_unsynced_ones_and_those_without_a_stripe_id_are_skipped(world):
    world.synced("acme", period=OCT)
    world.synced("acme", period=DEC)
    world.pending("globex", NOW - timedelta(days=1))  # of the period, not synced yet
    no_copy = world.invoices.finalized("initech", NOV, [], NOW)
    assert world.invoices.record_sync(no_copy, SyncState.SYNCED, NOW)  # nothing to send: no Stripe invoice
    assert world.ours(no_copy).sync.stripe_invoice_id is None
    checked = world.synced("umbrella")
    assert verdicts(world.check()) == {"matched": [name(checked)]}


# -- a voided invoice against its Stripe copy ----------------------------------------------------------------

def test_a_voided_invoice_matches_when_its_copy_is_void_or_its_draft_was_deleted(world):
    voided = world.synced("acme", status=InvoiceStatus.VOID, stripe_status="void")
    deleted = world.synced("globex", status=InvoiceStatus.VOID)
    world.copy_of(deleted).deleted = True  # the sync deletes a copy still in draft instead of voiding it
    assert verdicts(world.check()) == {"matched": [name(voided), name(deleted)]}
    assert world.ours(voided).sync.state is SyncState.SYNCED


@pytest.mark.parametrize("stripe_status", ["open", "paid", "uncollectible"])
def test_a_voided_invoice_still_collectable_in_stripe_is_mismatched_and_its_sync_recorded_failed(world,
                                                                                                  stripe_status):
    voided = world.synced("acme", status=InvoiceStatus.VOID, stripe_status=stripe_status)
    report = world.check()
    assert verdicts(report) == {"mismatched": [name(voided)]}
    assert f"is {stripe_status}" in report.mismatched[0]
    stored = world.ours(voided)
    assert (stored.status, stored.sync.state) == (InvoiceStatus.VOID, SyncState.FAILED)
    assert stored.sync.last_error is not None and stored.sync.last_error.startswith("reconciliation mismatch")


def test_a_void_not_yet_synced_or_never_sent_to_stripe_is_not_checked(world):
    synced = world.synced("acme", status=InvoiceStatus.VOID, stripe_status="open")
    world.invoices.put(replace(world.ours(synced), sync=replace(world.ours(synced).sync, state=SyncState.PENDING)),
                       LINES)  # the void is on its way to Stripe
    never_sent = world.invoices.finalized("globex", NOV, LINES, NOW)
    world.invoices.put(replace(never_sent, status=InvoiceStatus.VOID), LINES)
    assert verdicts(world.check()) == {}


def test_a_voided_invoice_stripe_will_not_show_is_unchecked(world, monkeypatch):
    voided = world.synced("acme", status=InvoiceStatus.VOID, stripe_status="void")

    def unavailable(invoice_id: str) -> None:
        raise RetryableSyncError("Stripe answered 503")

    monkeypatch.setattr(world.stripe, "retrieve_invoice_if_exists", unavailable)
    report = world.check()
    assert verdicts(report) == {"unchecked": [name(voided)]}
    assert world.ours(voided).sync.state is SyncState.SYNCED
