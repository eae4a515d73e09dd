"""Invoices with prorated recurring lines and applied prepaid credit reach Stripe as they are: every line an
invoice item (credits as negative amounts), so Stripe's total is our amount due to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync_support import assert_synced, create_org, finalize, record_lines, stored, stripe_copies, wait_for


def subscribed_with_credit(org: str, credit_cents: int, now: datetime) -> None:
    """Standard support from the start of the period, premium from half-way to now; usage; a promotion."""
    from chalicelib.config import settings
    from chalicelib.domain.credits import CreditReason
    from chalicelib.domain.periods import Period
    from chalicelib.services.credits import CreditService
    from chalicelib.services.subscriptions import SubscriptionService

    start = Period.of(now).start
    subscriptions = SubscriptionService(settings())
    subscriptions.change(org, "start", None, "support-standard", start, now)
    subscriptions.change(org, "upgrade", None, "support-premium", start + (now - start) / 2, now)
    record_lines([(org, 3)], now)
    CreditService().grant(org, "promo", credit_cents, CreditReason.PROMOTION, "launch promotion", None, now)


def _synced(org: str, invoice_id: str) -> bool:
    return stored(org, invoice_id).sync.state.value == "synced"


def kinds(org: str, invoice_id: str) -> set[str]:
    from chalicelib.storage.invoices import InvoiceRepository

    return {line.kind.value for line in InvoiceRepository().lines(org, invoice_id)}


def test_recurring_lines_and_applied_credit_sync_and_stripe_totals_our_amount_due(sync_env: Any, runner: Any):
    org, now = create_org(), datetime.now(UTC)
    subscribed_with_credit(org, 1000, now)
    invoice = finalize(org, now)
    assert {"recurring", "usage", "credit_applied"} <= kinds(org, invoice.id)
    assert invoice.credits_cents == 1000 and invoice.total_cents == invoice.subtotal_cents - 1000 > 0

    wait_for(lambda: _synced(org, invoice.id), 30, lambda: runner.poll_once(sqs_wait_seconds=1), "the sync")

    copy = assert_synced(sync_env.emulator, org, invoice.id)
    amounts = sorted(line["amount"] for line in copy["lines"]["data"])
    assert amounts[0] < 0 and -1000 in amounts  # the unused standard time and the credit, as negative items
    assert copy["total"] == copy["amount_due"] == invoice.total_cents


def test_an_invoice_paid_entirely_by_credit_is_settled_in_stripe_at_zero(sync_env: Any, runner: Any):
    org, now = create_org(), datetime.now(UTC)
    subscribed_with_credit(org, 10_000_000, now)
    invoice = finalize(org, now)
    assert invoice.total_cents == 0 and invoice.credits_cents == invoice.subtotal_cents > 0

    wait_for(lambda: _synced(org, invoice.id), 30, lambda: runner.poll_once(sqs_wait_seconds=1), "the sync")

    copy = assert_synced(sync_env.emulator, org, invoice.id, status="paid")  # nothing to collect
    assert copy["total"] == copy["amount_due"] == 0


def test_voiding_a_synced_invoice_voids_it_in_stripe_and_gives_the_credit_back(sync_env: Any, runner: Any):
    from chalicelib.services.credits import CreditService
    from chalicelib.services.invoices import InvoiceService

    org, now = create_org(), datetime.now(UTC)
    subscribed_with_credit(org, 1000, now)
    invoice = finalize(org, now)
    wait_for(lambda: _synced(org, invoice.id), 30, lambda: runner.poll_once(sqs_wait_seconds=1), "the sync")
    assert CreditService().statement(org).balance.balance_cents == 0

    InvoiceService().void(org, invoice.id, datetime.now(UTC))
    wait_for(lambda: _synced(org, invoice.id), 30, lambda: runner.poll_once(sqs_wait_seconds=1), "the void's sync")

    assert [c["status"] for c in stripe_copies(sync_env.emulator, org)] == ["void"]
    assert CreditService().statement(org).balance.balance_cents == 1000
