"""Stripe requests per invoice sync at 10, 100, 250 and 1,000 lines.

For each size an org gets an invoice with that many usage lines, finalized and synced with
`InvoiceSync` against the in-process Stripe emulator: its first invoice, whose sync also
finds or creates the Stripe customer. Then the same org gets a second invoice (usage sent
after the first was finalized lands on the next open invoice, as late-usage lines) and it
is synced too: a later invoice, with the customer already stored.

Counts come from the emulator, which counts every request it receives: all requests made
during the sync (the figure compared to the target), split into those it attributes to
the Stripe invoice (`requests_for_invoice`), customer requests, and the rest (listing the
customer's invoices to find ours). Rate limits are lifted while counting, so no 429 or
retry is in the counts; they are restored afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from .common import create_orgs, egress_events, figure, record, rounded, run_id, say

SIZES = (10, 100, 250, 1_000)
TARGET = 5
TARGET_MAX_LINES = 250


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: value - before.get(key, 0) for key, value in after.items() if value - before.get(key, 0)}


def _finalize(org: str, invoice_id: str) -> Any:
    from chalicelib.services.invoices import InvoiceService

    return InvoiceService().finalize(org, invoice_id, datetime.now(UTC))


def _sync(emulator: Any, org: str, invoice_id: str, lines: int) -> dict[str, Any]:
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.services.sync_worker import default_gateway
    from chalicelib.storage.invoices import InvoiceRepository

    before = emulator.request_counts()
    started = time.perf_counter()
    result = InvoiceSync(default_gateway()).sync(org, invoice_id, datetime.now(UTC))
    elapsed = time.perf_counter() - started
    after = emulator.request_counts()
    if result is not SyncResult.SYNCED:
        raise RuntimeError(f"sync of {org}/{invoice_id} ended {result}")
    stored = InvoiceRepository().get(org, invoice_id)
    assert stored is not None and stored.sync.stripe_invoice_id
    endpoints = _delta(after["by_endpoint"], before["by_endpoint"])
    total = after["total"] - before["total"]
    for_invoice = after["by_invoice"].get(stored.sync.stripe_invoice_id, 0) - before["by_invoice"].get(
        stored.sync.stripe_invoice_id, 0)
    customer = sum(count for endpoint, count in endpoints.items() if "/v1/customers" in endpoint)
    stripe_invoice = emulator.invoice(stored.sync.stripe_invoice_id)
    if stripe_invoice["total"] != stored.total_cents:
        raise RuntimeError(f"Stripe total {stripe_invoice['total']} differs from ours {stored.total_cents}")
    return {"requests": total, "requests_for_invoice": for_invoice, "customer_requests": customer,
            "other_requests": total - for_invoice - customer, "by_endpoint": dict(Counter(endpoints)),
            "our_lines": lines, "stripe_lines": len(stripe_invoice["lines"]["data"]),
            "seconds": rounded(elapsed, 3)}


def measure(emulator: Any) -> dict[str, Any]:
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period

    limits = emulator.set_rate_limits()
    emulator.set_rate_limits(global_per_second=None, per_endpoint_per_second=None)
    figures: dict[str, Any] = {}
    try:
        orgs = create_orgs(f"bench-stripe-{run_id()}", len(SIZES))
        for org, size in zip(orgs, SIZES, strict=True):
            period = Period.of(datetime.now(UTC))
            record(egress_events(org, range(size), size, "first"), 500)
            first_id = _finalize(org, invoice_id_for(period)).id
            first = _sync(emulator, org, first_id, size)
            # The first invoice is closed: the same usage again goes to the next open invoice as late usage.
            record(egress_events(org, range(size), size, "later"), 500)
            later_id = _finalize(org, invoice_id_for(period.next())).id
            later = _sync(emulator, org, later_id, size)
            for kind, counts in (("first_invoice_of_org", first), ("later_invoice", later)):
                total = counts.pop("requests")
                targeted = size <= TARGET_MAX_LINES
                figures[f"{kind}_{size}_lines"] = figure(
                    total, "requests", {"lines": size, "invoice": kind},
                    target=f"<= {TARGET}" if targeted else None, met=total <= TARGET if targeted else None, **counts)
            first_n, later_n = (figures[f"{kind}_{size}_lines"]["value"] for kind in ("first_invoice_of_org",
                                                                                        "later_invoice"))
            say(f"  stripe: {size} lines: {first_n} requests for an org's first invoice, {later_n} for a later one")
    finally:
        emulator.set_rate_limits(global_per_second=limits["global_per_second"],
                                 per_endpoint_per_second=limits["per_endpoint_per_second"])
    return figures

