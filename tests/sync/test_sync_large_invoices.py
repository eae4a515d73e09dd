"""Invoices with more lines than one page of Stripe's list sync each line exactly once, through the real
client's paging. (Invoices over Stripe's 250 items are rolled up: that rule, and reconciling them, are
tested on the in-memory ports, tests/unit/test_sync_rules.py and test_reconcile_rules.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support.crashes import dies_at
from sync_support import (
    ProcessDied,
    assert_one_exact_copy,
    create_org,
    finalized_invoice,
)


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
