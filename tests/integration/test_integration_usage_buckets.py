"""Usage buckets on DynamoDB Local: late usage lands in the buckets of the month it happened. (Every line's
buckets hold exactly the events accepted into it under concurrent writers, resends and a finalize mid-stream:
test_integration_finalize_race.py; in the largest batch, over many lines and days, within the transaction
limit: test_integration_usage_idempotency.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from acceptance_support import stored_buckets, usage_event

D = Decimal
NOV, DEC = "inv_202611", "inv_202612"


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
