"""Usage buckets on DynamoDB Local: a batch over many lines and days stays within the transaction limit, and
late usage lands in the buckets of the month it happened. (Under concurrent writers, resends and a finalize
mid-stream, every line's buckets hold exactly the events accepted into it:
test_integration_finalize_race.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from acceptance_support import stored_buckets, usage_event

D = Decimal
NOV, DEC = "inv_202611", "inv_202612"


def test_a_batch_spread_over_many_lines_and_days_fits_the_transaction_limit(org, pinned_clock, store):
    """Every bucket is one more action in the transaction: chunks shrink so none passes DynamoDB's 100."""
    from chalicelib.api.requests import usage_batch
    from chalicelib.config import settings
    from chalicelib.services.usage import record_usage

    pinned_clock.now = now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    events = [usage_event(org, f"e{n}", app=f"app{n % 25}", quantity="0.5",
                          timestamp=f"2026-11-{1 + n % 29:02d}T{n % 24:02d}:30:00Z") for n in range(500)]
    results = record_usage(usage_batch({"events": events}), now, settings())
    assert [r.status for r in results] == ["accepted"] * 500
    buckets = stored_buckets(org, "2026-11")
    assert len(buckets) == 500 and set(buckets.values()) == {D("0.5")}
    lines = store.lines(org, NOV)
    assert len(lines) == 25 and all(line.quantity == D(10) for line in lines.values())


def test_late_usage_lands_in_its_own_periods_buckets(org, pinned_clock):
    from chalicelib.api.requests import usage_batch
    from chalicelib.config import settings
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.usage import record_usage

    pinned_clock.now = datetime(2026, 11, 30, 23, tzinfo=UTC)
    record_usage(usage_batch({"events": [usage_event(org, "nov", timestamp="2026-11-30T22:10:00Z")]}),
                 pinned_clock.now, settings())
    InvoiceService().finalize(org, NOV, pinned_clock.now)
    pinned_clock.now = datetime(2026, 12, 2, 9, tzinfo=UTC)
    [late] = record_usage(usage_batch({"events": [usage_event(org, "late", quantity="2",
                                                                timestamp="2026-11-30T22:40:00Z")]}),
                          pinned_clock.now, settings())
    assert late.late and late.invoice_id == DEC
    hour = datetime(2026, 11, 30, 22, tzinfo=UTC)
    on_time = (NOV, results_line(org, NOV), hour)
    assert stored_buckets(org, "2026-11") == {on_time: D(1), (DEC, late.line_id, hour): D(2)}
    assert stored_buckets(org, "2026-12") == {}


def results_line(org: str, invoice_id: str) -> str:
    from chalicelib.storage.invoices import InvoiceRepository

    [line] = InvoiceRepository().lines(org, invoice_id)
    return line.id
