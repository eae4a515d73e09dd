"""Upcoming-invoice read time at 1,000 and at 100,000 events on the same lines.

Two orgs get the same set of lines (same apps and regions): one 1,000 events, the other
100,000, sent through the service layer in batches of 500 (the large one from a few
processes, each on its own lines, so they never contend). Reads through `InvoiceService().upcoming`
then alternate between the two orgs, so background load touches both alike; the figure
is the ratio of median read times. Ingestion stops at the time budget if it must, and the
event count actually reached is what is reported.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .common import Budget, create_orgs, egress_events, figure, median, record, rounded, run_id, say
from .procs import ProcessPool

LINES = 40
SMALL = 1_000
LARGE = 100_000
BATCH = 500
PROCESSES = 3
READS = 21
TARGET_RATIO = 1.3


def _read_ms(org: str) -> tuple[float, int, int]:
    from chalicelib.services.invoices import InvoiceService

    started = time.perf_counter()
    view = InvoiceService().upcoming(org, "usd", datetime.now(UTC))
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(view.lines), sum(line.event_count for line in view.lines)


def ingest_share(org: str, lines: list[int], count: int, deadline: float, tag: str) -> int:
    """One process's share of the large ingest: its own lines, batches of BATCH, until `deadline` (epoch s)."""
    sent = 0
    while sent < count and time.time() < deadline:
        size = min(BATCH, count - sent)
        sent += record(egress_events(org, lines, size, f"{tag}-{sent}"), BATCH)
    return sent


def _ingest_large(org: str, count: int, deadline: float) -> int:
    """Up to `count` events over LINES lines from PROCESSES processes (disjoint lines), until `deadline`."""
    shares = [(org, [line for line in range(LINES) if line % PROCESSES == index],
               count // PROCESSES + (index < count % PROCESSES), deadline, f"big{index}")
              for index in range(PROCESSES)]
    with ProcessPool(PROCESSES) as pool:
        pending = pool.starmap_async(ingest_share, shares)
        while not pending.ready():
            pending.wait(15)
            if not pending.ready():
                say(f"  upcoming: {_events_on(org):,} of {count:,} events ingested")
        return sum(pending.get())


def _events_on(org: str) -> int:
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.storage.invoices import InvoiceRepository

    lines = InvoiceRepository().lines(org, invoice_id_for(Period.of(datetime.now(UTC))))
    return sum(line.event_count for line in lines)


def measure(budget: Budget, reserve_s: float) -> dict[str, Any]:
    small_org, large_org = create_orgs(f"bench-upcoming-{run_id()}", 2)
    record(egress_events(small_org, range(LINES), SMALL, "small"), BATCH)
    started = time.monotonic()
    large = _ingest_large(large_org, LARGE, time.time() + budget.remaining() - reserve_s)
    ingest_s = time.monotonic() - started
    say(f"  upcoming: {large:,} events ingested in {ingest_s:.0f}s ({large / ingest_s:.0f}/s); reading")
    for org in (small_org, large_org):
        _read_ms(org)  # first read of each warms caches on both sides
    small_ms: list[float] = []
    large_ms: list[float] = []
    small_lines = large_lines = small_events = large_events = 0
    for _ in range(READS):
        ms, small_lines, small_events = _read_ms(small_org)
        small_ms.append(ms)
        ms, large_lines, large_events = _read_ms(large_org)
        large_ms.append(ms)
    ratio = median(large_ms) / median(small_ms)
    params = {"lines": LINES, "reads": READS, "statistic": "median", "path": "InvoiceService().upcoming"}
    complete = large == LARGE
    return {
        "read_ms_small": figure(rounded(median(small_ms), 2), "ms", {**params, "events": small_events},
                                lines_read=small_lines, min_ms=rounded(min(small_ms), 2)),
        "read_ms_large": figure(rounded(median(large_ms), 2), "ms", {**params, "events": large_events},
                                lines_read=large_lines, min_ms=rounded(min(large_ms), 2),
                                events_wanted=LARGE, complete=complete),
        "ratio_large_to_small": figure(
            rounded(ratio), "ratio", {"events": [small_events, large_events], "lines": LINES},
            target=f"<= {TARGET_RATIO}", met=ratio <= TARGET_RATIO,
            note=None if complete else f"only {large:,} of {LARGE:,} events fitted in the time budget"),
        "ingest_for_large": figure(rounded(large / ingest_s, 1), "events/s",
                                   {"events": large, "batch_size": BATCH, "processes": PROCESSES,
                                    "seconds": rounded(ingest_s, 1)}),
    }
