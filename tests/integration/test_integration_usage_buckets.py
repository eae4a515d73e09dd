"""Usage buckets on DynamoDB Local: every line's hourly and daily buckets hold exactly the events its answers
said were accepted into it, under resends, retried batches, concurrent writers and a finalize mid-stream."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from acceptance_support import usage_event

D = Decimal
NOV, DEC = "inv_202611", "inv_202612"
WRITERS = 4
BATCHES = 6
EVENTS_PER_BATCH = 20
BEFORE_CLOSE = 3  # each writer sends this many batches, then waits until the invoice is closing
FINALIZE_AFTER_ACCEPTED = 80
BATCHES_WHILE_FINALIZING = 4
DEADLINE_S = 60
PRODUCTS = [("egress", "web", "iad", {}), ("egress", "api", "nrt", {}), ("snapshot_storage", "db", "iad", {}),
            ("machine_runtime", "web", "fra", {"preset": "shared-cpu-1x"})]


def stored_buckets(org: str, *periods: str) -> dict[tuple[str, str, datetime], Decimal]:
    """(invoice, line, hour) → quantity, from the stored day items' hour attributes."""
    from chalicelib.domain.periods import Period
    from chalicelib.storage.buckets import month_buckets

    out: dict[tuple[str, str, datetime], Decimal] = {}
    for period in periods:
        for day in month_buckets(org, Period.parse(period)):
            assert day.quantity == sum(day.hours.values())  # the day total and its hours moved together
            for hour, quantity in day.hourly():
                out[(day.invoice_id, day.line_id, hour)] = quantity
    return out


def batches_for(org: str, rng: random.Random) -> list[list[list[dict[str, Any]]]]:
    """Per writer, its batches, spread over many hours and days; writers 0 and 1 share some events."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    out: list[list[list[dict[str, Any]]]] = [[] for _ in range(WRITERS)]
    for writer in range(WRITERS):
        for number in range(BATCHES):
            batch = []
            for index in range(EVENTS_PER_BATCH):
                if writer == 1 and index < 3:
                    batch.append(out[0][number][index])
                    continue
                meter, app, region, attributes = PRODUCTS[rng.randrange(len(PRODUCTS))]
                moment = start + timedelta(seconds=rng.randint(0, 19 * 86400))
                event_id = f"shared-{number}-{index}" if writer == 0 and index < 3 else f"w{writer}-{number}-{index}"
                batch.append(usage_event(org, event_id, meter=meter, quantity=f"{rng.randint(1, 90_000) / 1000:.3f}",
                                         region=region, app=app, attributes=attributes,
                                         timestamp=moment.strftime("%Y-%m-%dT%H:%M:%SZ")))
            out[writer].append(batch)
    return out


def test_buckets_hold_exactly_the_accepted_events_under_races_resends_and_a_finalize(org, pinned_clock, monkeypatch,
                                                                                     store):
    from chalicelib.api.requests import usage_batch
    from chalicelib.config import settings
    from chalicelib.domain.errors import Busy
    from chalicelib.domain.invoice import InvoiceStatus
    from chalicelib.domain.periods import parse_utc
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.usage import record_usage
    from chalicelib.storage.invoices import InvoiceRepository

    pinned_clock.now = now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    batches = batches_for(org, random.Random(8))
    progress = threading.Condition()
    counts = {"accepted": 0, "after_close": 0}
    closing = threading.Event()
    original_transition = InvoiceRepository.transition

    def transition(self: Any, invoice: Any, target: Any, moment: Any, **kwargs: Any) -> Any:
        updated = original_transition(self, invoice, target, moment, **kwargs)
        if target is InvoiceStatus.FINALIZING and invoice.org == org:
            closing.set()  # closed to usage: hold finalize until writers have met the closed invoice
            with progress:
                assert progress.wait_for(lambda: counts["after_close"] >= BATCHES_WHILE_FINALIZING, DEADLINE_S)
        return updated

    monkeypatch.setattr(InvoiceRepository, "transition", transition)
    accepted: list[tuple[dict[str, Any], Any]] = []
    lock = threading.Lock()

    def send(batch: list[dict[str, Any]]) -> None:
        for _ in range(5):
            try:
                results = record_usage(usage_batch({"events": batch}), now, settings())
                break
            except Busy:
                continue
        else:
            raise AssertionError("the service stayed busy")
        assert all(r.status in ("accepted", "duplicate") for r in results), results
        with lock:
            accepted.extend((e, r) for e, r in zip(batch, results, strict=True) if r.status == "accepted")
        with progress:
            counts["accepted"] += sum(r.status == "accepted" for r in results)
            counts["after_close"] += closing.is_set()
            progress.notify_all()

    def writer(number: int) -> None:
        for index, batch in enumerate(batches[number]):
            if index == BEFORE_CLOSE:
                assert closing.wait(DEADLINE_S), "finalize never started"
            send(batch)
            if index % 2 == 1:
                send(batches[number][index - 1] + batch[:5])  # a retried batch, and a resend of some events

    def finalizer() -> Any:
        with progress:
            assert progress.wait_for(lambda: counts["accepted"] >= FINALIZE_AFTER_ACCEPTED, DEADLINE_S)
        return InvoiceService().finalize(org, NOV, now)

    with ThreadPoolExecutor(WRITERS + 1) as pool:
        writers = [pool.submit(writer, n) for n in range(WRITERS)]
        closed = pool.submit(finalizer)
        for future in writers:
            future.result()
        closed.result()

    unique = {e["id"] for writer_batches in batches for batch in writer_batches for e in batch}
    assert sorted(e["id"] for e, _ in accepted) == sorted(unique)  # each event accepted exactly once
    expected: dict[tuple[str, str, datetime], Decimal] = defaultdict(Decimal)
    for event, result in accepted:
        hour = parse_utc(event["timestamp"]).replace(minute=0, second=0)
        expected[(result.invoice_id, result.line_id, hour)] += D(event["quantity"])
    # Both sides of the finalize got usage; the late line's buckets are in November, the month it happened.
    assert {invoice for invoice, _, _ in expected} == {NOV, DEC}
    assert stored_buckets(org, "2026-11", "2026-12") == expected
    for invoice in store.invoices(org).values():
        for line in invoice.lines.values():
            in_buckets = sum(q for (inv, line_id, _), q in expected.items() if (inv, line_id) == (invoice.id, line.id))
            assert in_buckets == line.quantity


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
