"""Usage and cost over time for one org: its lines' buckets, priced as its invoices price them.

Buckets and lines are written in one transaction but read in two steps (the month's buckets,
then each invoice's lines). A write landing between the two shows as a line whose buckets do
not add up to its quantity; the read is then done again, so an answer is always one
consistent state: every line's bucket costs add up to the amount its invoice shows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from ..domain.errors import Busy
from ..domain.invoice import InvoiceStatus
from ..domain.periods import Period
from ..domain.usage_series import GroupBy, LineUsage, TimeRange, UsageSeries, build_series
from ..storage.buckets import DayBucket, month_buckets
from .invoices import InvoiceService

MAX_READS = 5


def usage_series(org: str, span: TimeRange, group_by: GroupBy, now: datetime,
                 invoices: InvoiceService | None = None) -> UsageSeries:
    service = invoices or InvoiceService()
    for _ in range(MAX_READS):
        usages = _consistent_read(org, span, now, service)
        if usages is not None:
            return build_series(usages, span, group_by)
    raise Busy(f"usage of {org} kept changing while it was read; retry")


def months(span: TimeRange) -> list[Period]:
    """The months whose buckets can fall in the range (each line's buckets are all in its usage month)."""
    period, last = Period.of(span.start), Period.of(span.end - timedelta(microseconds=1))
    out = [period]
    while period < last:
        period = period.next()
        out.append(period)
    return out


def _consistent_read(org: str, span: TimeRange, now: datetime, service: InvoiceService) -> list[LineUsage] | None:
    by_invoice: dict[str, dict[str, list[DayBucket]]] = defaultdict(lambda: defaultdict(list))
    for period in months(span):
        for bucket in month_buckets(org, period):
            by_invoice[bucket.invoice_id][bucket.line_id].append(bucket)
    usages = []
    for invoice_id, by_line in sorted(by_invoice.items()):
        view = service.view(org, invoice_id, now)
        if view.invoice.status is InvoiceStatus.VOID:
            continue  # nothing is owed for it, so its usage is not shown as cost either
        lines = {line.id: line for line in view.lines}
        for line_id, days in by_line.items():
            hours = [hour for day in days for hour in day.hourly()]
            line = lines.get(line_id)
            if line is None or sum((q for _, q in hours), 0) != line.quantity:
                return None  # a write landed between the two reads
            usages.append(LineUsage(line, hours))
    return usages
