"""Items read by monthly totals over three years, with 100, 1,000 and 10,000 finalized invoices.

How the rollups are written:
  - the first 1,000 invoices the way finalize writes them: headers stored in `finalizing`
    (the state finalize leaves them in after freezing lines), then
    `InvoiceRepository.transition(..., FINALIZED, totals=..., rollup_sign=+1)` moves each to
    `finalized` in the same transaction as the ADD updates of its two rollup items, exactly
    as `InvoiceService.finalize` does (only the line reading and freezing before it are
    skipped: rollups do not depend on them);
  - the next 9,000 directly, to keep the run short, with the same end state: headers stored
    `finalized`; each org-month rollup item put as the one ADD on a new item makes it (an org
    has one invoice per month, so that item gets exactly one ADD); each shard-month rollup
    item updated with the same ADD expressions, once, with the sums of its invoices (ADD
    commutes, so the stored item equals what one ADD per invoice leaves).
Every month of the range is first closed with `open_month`, as month-end finalize
(`InvoiceService.finalize_due`) closes each month, which gives each shard an item for it.
The invoice count each report sums is checked against the invoices written. The invoices
use a period range of their own (2019-2021) so other benchmarks' invoices do not count.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from .common import Budget, chunks, figure, in_threads, rounded, run_id, say

FIRST_PERIOD = "2019-01"
MONTHS = 36
COUNTS = (100, 1_000, 10_000)
THROUGH_FINALIZE = 1_000  # invoices written through InvoiceRepository.transition
THREADS = 4


def _periods() -> list[Any]:
    from chalicelib.domain.periods import Period

    periods = [Period.parse(FIRST_PERIOD)]
    while len(periods) < MONTHS:
        periods.append(periods[-1].next())
    return periods


def _invoices(run: str, first: int, last: int) -> list[Any]:
    """Invoices first..last-1 in `finalizing`: invoice i is org i // 36 in month i % 36 (one per org and month)."""
    from chalicelib.domain.invoice import Invoice, InvoiceStatus, invoice_id_for, invoice_number, number_prefix

    now = datetime.now(UTC)
    periods = _periods()
    invoices = []
    for i in range(first, last):
        org, period = f"bench-rollup-{run}-{i // MONTHS:04d}", periods[i % MONTHS]
        number = invoice_number(number_prefix(org), 1 + i % MONTHS)
        invoices.append(Invoice(org=org, id=invoice_id_for(period), number=number, period=period,
                                status=InvoiceStatus.FINALIZING, currency="usd", created_at=now, updated_at=now,
                                version=2))
    return invoices


def _cents(invoice: Any) -> int:
    return 1_000 + sum(map(ord, invoice.org + invoice.id)) % 50_000


def _store_headers(invoices: list[Any], finalized: bool) -> None:
    from chalicelib.domain.invoice import InvoiceStatus
    from chalicelib.storage import keys
    from chalicelib.storage.models import InvoiceItem

    status = InvoiceStatus.FINALIZED.value if finalized else InvoiceStatus.FINALIZING.value
    with InvoiceItem.batch_write() as batch:
        for inv in invoices:
            cents = _cents(inv) if finalized else 0
            batch.save(InvoiceItem(
                keys.org_pk(inv.org), keys.invoice_sk(inv.id), org=inv.org, invoice_id=inv.id, number=inv.number,
                period=str(inv.period), status=status, currency=inv.currency, created_at=inv.created_at,
                updated_at=inv.updated_at, version=inv.version + (1 if finalized else 0), subtotal_cents=cents,
                total_cents=cents, line_count=3 if finalized else 0, gsi1pk=keys.state_gsi_pk(status),
                gsi1sk=keys.state_gsi_sk(str(inv.period), inv.org)))


def _by_shard(invoices: list[Any]) -> list[list[Any]]:
    from chalicelib.storage import keys

    groups: dict[int, list[Any]] = defaultdict(list)
    for inv in invoices:
        groups[keys.rollup_shard_for(inv.org) % THREADS].append(inv)
    return list(groups.values())


def _through_finalize(invoices: list[Any]) -> None:
    from chalicelib.domain.invoice import PAYMENT_TERMS, InvoiceStatus, SyncState
    from chalicelib.domain.lines import Totals
    from chalicelib.storage.invoices import InvoiceRepository

    in_threads(lambda group: _store_headers(group, finalized=False), [list(c) for c in chunks(invoices, 500)],
               THREADS)
    repo = InvoiceRepository()

    def finalize(group: list[Any]) -> int:
        for inv in group:
            now, cents = datetime.now(UTC), _cents(inv)
            repo.transition(inv, InvoiceStatus.FINALIZED, now, totals=Totals(cents, 0, cents), line_count=3,
                            due_at=now + PAYMENT_TERMS, sync_state=SyncState.PENDING, rollup_sign=+1)
        return len(group)

    # Threads each own whole rollup shards: no two update the same rollup item at once.
    in_threads(finalize, _by_shard(invoices), THREADS)


def _directly(invoices: list[Any]) -> None:
    from chalicelib.storage import keys
    from chalicelib.storage.models import RollupItem

    in_threads(lambda group: _store_headers(group, finalized=True), [list(c) for c in chunks(invoices, 500)],
               THREADS)

    def org_rollups(group: list[Any]) -> None:
        with RollupItem.batch_write() as batch:
            for inv in group:
                cents = _cents(inv)
                batch.save(RollupItem(keys.org_pk(inv.org), keys.org_rollup_sk(str(inv.period)),
                                      period=str(inv.period), currency=inv.currency, subtotal_cents=cents,
                                      credits_cents=0, total_cents=cents, invoice_count=1))

    in_threads(org_rollups, [list(c) for c in chunks(invoices, 500)], THREADS)
    sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for inv in invoices:
        row = sums[(keys.rollup_shard_for(inv.org), str(inv.period))]
        row[0] += _cents(inv)
        row[1] += 1

    def shard_rollups(items: list[tuple[tuple[int, str], list[int]]]) -> None:
        for (shard, period), (cents, count) in items:
            RollupItem(keys.rollup_shard_pk(shard), keys.month_sk(period)).update(actions=[
                RollupItem.period.set(period), RollupItem.currency.set("usd"),
                RollupItem.subtotal_cents.add(cents), RollupItem.credits_cents.add(0),
                RollupItem.total_cents.add(cents), RollupItem.invoice_count.add(count)])

    in_threads(shard_rollups, [list(c) for c in chunks(list(sums.items()), 80)], THREADS)


def measure(budget: Budget, reserve_s: float) -> dict[str, Any]:
    from chalicelib.storage import keys
    from chalicelib.storage.rollups import monthly_totals, open_month

    run = run_id()
    periods = _periods()
    in_threads(lambda group: [open_month(p) for p in group], [list(c) for c in chunks(periods, 9)], THREADS)
    reads: dict[int, dict[str, Any]] = {}
    done = 0
    started = time.monotonic()
    for count in COUNTS:
        if budget.remaining() < reserve_s:
            say(f"  rollups: stopping before {count:,} invoices, time budget reached")
            break
        invoices = _invoices(run, done, count)
        split = max(0, min(count, THROUGH_FINALIZE) - done)
        _through_finalize(invoices[:split])
        _directly(invoices[split:])
        done = count
        result = monthly_totals(periods[0], periods[-1])
        counted = sum(month.invoice_count for month in result.months)
        if counted != count:
            raise RuntimeError(f"rollups count {counted} invoices, {count} were written")
        reads[count] = {"items_read": result.items_read, "seconds": rounded(time.monotonic() - started, 1)}
        say(f"  rollups: {count:,} invoices, monthly totals read {result.items_read} items")
    bound = MONTHS * keys.ROLLUP_SHARDS
    params = {"months": MONTHS, "shards": keys.ROLLUP_SHARDS, "range": f"{periods[0]}..{periods[-1]}"}
    figures: dict[str, Any] = {}
    for count, read in reads.items():
        how = ("InvoiceRepository.transition, as finalize" if count <= THROUGH_FINALIZE else
               f"first {THROUGH_FINALIZE:,} through transition, the rest written directly (same items)")
        figures[f"items_read_{count}_invoices"] = figure(read["items_read"], "items",
                                                         {**params, "invoices": count, "written": how},
                                                         invoices_counted=count)
    if 100 in reads and 10_000 in reads:
        small, large = reads[100]["items_read"], reads[10_000]["items_read"]
        figures["same_items_read_100_vs_10000"] = figure(
            large == small, "bool", {**params, "items_read": [small, large]},
            target="items read with 10,000 invoices = items read with 100", met=large == small,
            note=None if large == small else f"a report read {small} and {large} of the {bound} (month, shard) items")
        figures["bounded_by_months_x_shards"] = figure(
            max(r["items_read"] for r in reads.values()), "items", {**params, "bound": bound},
            target=f"<= months x shards = {bound} at every invoice count",
            met=all(r["items_read"] <= bound for r in reads.values()))
    return figures
