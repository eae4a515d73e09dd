"""Stripe holds at most 250 items per invoice: bigger invoices are rolled up with the total unchanged,
and invoices with more lines than one page of Stripe's list still sync each line exactly once."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.crashes import dies_at
from sync_support import (
    ProcessDied,
    assert_one_exact_copy,
    create_org,
    finalized_invoice,
    our_lines,
    stored,
    stripe_copies,
    stripe_line_pairs,
)

STRIPE_MAX_LINES = 250


def test_an_invoice_over_250_lines_is_rolled_up_with_the_same_total(gateway, emulator, local_aws):
    """Rolled up by app and category; a worker killed after adding the rolled-up lines is finished by the
    next delivery a day later without any line twice."""
    from chalicelib.services.sync import InvoiceSync, SyncResult

    org = create_org("big")
    invoice = finalized_invoice(org, lines=264)  # 33 apps x 8 regions of egress
    lines = our_lines(org, invoice.id)
    assert len(lines) == 264 and invoice.line_count == 264
    by_app: dict[str, int] = defaultdict(int)
    for line in lines:
        by_app[f"rollup:{line.app}:{line.category.value}"] += line.amount_cents
    now = datetime.now(UTC)

    with pytest.raises(ProcessDied):
        InvoiceSync(gateway, checkpoint=dies_at("after_add_lines")).sync(org, invoice.id, now)
    (draft,) = stripe_copies(emulator, org)
    assert len(draft["lines"]["data"]) <= STRIPE_MAX_LINES
    assert stripe_line_pairs(draft) == sorted(by_app.items())
    assert draft["total"] == invoice.total_cents == sum(line.amount_cents for line in lines)

    emulator.forget_idempotency_keys()
    assert InvoiceSync(gateway).sync(org, invoice.id, now + timedelta(days=1)) is SyncResult.SYNCED
    (copy,) = stripe_copies(emulator, org)
    assert copy["id"] == draft["id"] and copy["status"] == "open"
    assert stripe_line_pairs(copy) == sorted(by_app.items())
    assert copy["total"] == invoice.total_cents
    mine = stored(org, invoice.id)
    assert mine.sync.state.value == "synced" and mine.sync.stripe_invoice_id == copy["id"]


def test_more_lines_than_one_stripe_page_are_each_synced_once_after_a_crash(gateway, emulator, local_aws):
    """104 lines: Stripe lists 100 per page, so finding what is already there must read every page."""
    from chalicelib.services.sync import LEASE_TTL, InvoiceSync, SyncResult

    org = create_org("paged")
    invoice = finalized_invoice(org, lines=104)
    now = datetime.now(UTC)

    with pytest.raises(ProcessDied):
        InvoiceSync(gateway, checkpoint=dies_at("after_add_lines")).sync(org, invoice.id, now)
    emulator.forget_idempotency_keys()
    assert InvoiceSync(gateway).sync(org, invoice.id, now + LEASE_TTL + timedelta(seconds=1)) is SyncResult.SYNCED
    copy = assert_one_exact_copy(emulator, org, invoice.id)
    assert len(copy["lines"]["data"]) == 104


class _MergedLines:
    """Stripe as seen through a gateway, except that one invoice shows two of its rolled-up lines merged
    into one: the same total, one line fewer than was sent."""

    def __init__(self, gateway: Any, stripe_invoice_id: str) -> None:
        self.gateway, self.stripe_invoice_id = gateway, stripe_invoice_id

    def __getattr__(self, name: str) -> Any:
        # Every other call reconciliation makes (retrieving, checking voided copies, ...) is the gateway's:
        # the period is shared with other tests' invoices, so any of them may be reached.
        return getattr(self.gateway, name)

    def line_keys(self, stripe_invoice_id: str) -> dict[str, int]:
        keys = self.gateway.line_keys(stripe_invoice_id)
        if stripe_invoice_id == self.stripe_invoice_id:
            (first, a), (second, b) = sorted(keys.items())[:2]
            del keys[first], keys[second]
            keys[f"{first}+{second}"] = a + b
        return keys


def test_reconciling_an_invoice_over_250_lines_compares_with_the_lines_that_were_sent(gateway, emulator, local_aws):
    from chalicelib.domain.periods import Period
    from chalicelib.services.reconcile import check_period
    from chalicelib.services.sync import InvoiceSync, SyncResult

    org = create_org("recon")
    now = datetime.now(UTC)
    invoice = finalized_invoice(org, lines=264, now=now)
    assert InvoiceSync(gateway).sync(org, invoice.id, now) is SyncResult.SYNCED
    name = f"{org}/{invoice.id}"

    honest = check_period(Period.of(now), gateway, now)
    assert name in honest.matched

    tampered = check_period(Period.of(now), _MergedLines(gateway, stored(org, invoice.id).sync.stripe_invoice_id), now)

    [entry] = [e for e in tampered.mismatched if e.startswith(name)]
    assert "33 lines" in entry or "32 lines" in entry, entry
    flagged = stored(org, invoice.id)
    assert flagged.sync.state.value == "failed" and flagged.sync.last_error.startswith("reconciliation mismatch")
