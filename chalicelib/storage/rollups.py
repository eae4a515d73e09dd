"""Month rollups for finance: read cost is months × shards, never the number of invoices."""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.transactions import TransactWrite

from ..domain.invoice import Invoice
from ..domain.periods import Period
from . import keys
from .models import RollupItem


@dataclass(frozen=True)
class MonthTotal:
    period: str
    invoice_count: int
    subtotal_cents: int
    credits_cents: int
    total_cents: int


@dataclass
class RollupRead:
    months: list[MonthTotal]
    items_read: int


def open_month(period: Period) -> None:
    """Give every shard an item for a closed month, even one no invoice of that month landed in.

    A report then reads exactly months × shards items over closed months, however many invoices
    there are, and a month that billed nothing reads as zero rather than as missing. ADD 0 is
    idempotent and commutes with finalize's ADDs, so this can run any number of times.
    """
    for shard in range(keys.ROLLUP_SHARDS):
        RollupItem(keys.rollup_shard_pk(shard), keys.month_sk(str(period))).update(actions=[
            RollupItem.period.set(str(period)),
            RollupItem.subtotal_cents.add(0),
            RollupItem.credits_cents.add(0),
            RollupItem.total_cents.add(0),
            RollupItem.invoice_count.add(0),
        ])


def add_to_rollups(tx: TransactWrite, invoice: Invoice, sign: int) -> None:
    """Add (sign +1) or take back (-1) the invoice's totals in its month: the shard's and the org's."""
    period = str(invoice.period)
    targets = (
        (keys.rollup_shard_pk(keys.rollup_shard_for(invoice.org)), keys.month_sk(period)),
        (keys.org_pk(invoice.org), keys.org_rollup_sk(period)),
    )
    for pk, sk in targets:
        tx.update(
            RollupItem(pk, sk),
            actions=[
                RollupItem.period.set(period),
                RollupItem.currency.set(invoice.currency),
                RollupItem.subtotal_cents.add(sign * invoice.subtotal_cents),
                RollupItem.credits_cents.add(sign * invoice.credits_cents),
                RollupItem.total_cents.add(sign * invoice.total_cents),
                RollupItem.invoice_count.add(sign),
            ],
        )


def monthly_totals(first: Period, last: Period, org: str | None = None) -> RollupRead:
    if org is not None:
        partitions = [(keys.org_pk(org), keys.org_rollup_sk)]
    else:
        partitions = [(keys.rollup_shard_pk(s), keys.month_sk) for s in range(keys.ROLLUP_SHARDS)]
    sums: dict[str, list[int]] = {}
    items_read = 0
    for pk, sk in partitions:
        for item in RollupItem.query(pk, RollupItem.sk.between(sk(str(first)), sk(str(last)))):
            items_read += 1
            row = sums.setdefault(item.period, [0, 0, 0, 0])
            row[0] += item.invoice_count
            row[1] += item.subtotal_cents
            row[2] += item.credits_cents
            row[3] += item.total_cents
    months = []
    period = first
    while period <= last:
        count, subtotal, credits, total = sums.get(str(period), [0, 0, 0, 0])
        months.append(MonthTotal(str(period), count, subtotal, credits, total))
        period = period.next()
    return RollupRead(months, items_read)
