"""Usage buckets: every line's quantity per UTC day, and per hour within the day.

The ingestion transaction that ADDs a chunk's quantity to a line also ADDs it to the line's
day bucket (`quantity`) and hour attributes (`h00`..`h23`) here, so a bucket is counted
exactly when its line is: under resends, retried batches, concurrent writers and a finalize
racing the write, the transaction commits whole or not at all.

One item per line and day (not per hour) because DynamoDB bills an update by the item's size
in whole KB and a day of 24 hour counters still fits in 1 KB: the hourly detail costs no more
writes than a daily bucket alone, so it is kept for the life of the data, like the days.
Items live in the partition of the month the usage happened in, so a month's buckets of every
line of an org are one Query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pynamodb.expressions.operand import Path
from pynamodb.transactions import TransactWrite

from ..domain.periods import Period
from ..domain.placement import Placement
from . import keys
from .models import UsageDayRecord

HOUR_ATTRIBUTES = tuple(f"h{hour:02d}" for hour in range(24))
BucketKey = tuple[str, str, str, str]  # org, invoice id, line id, day (YYYY-MM-DD)


def bucket_of(event: Placement) -> BucketKey:
    """The day bucket an event is counted in: one transaction action per distinct bucket of a chunk."""
    t = event.target
    return t.org, t.invoice_id, t.line_id, event.timestamp.astimezone(UTC).strftime("%Y-%m-%d")


def add_updates(tx: TransactWrite, events: Iterable[Placement]) -> None:
    """ADD the events' quantities to their day buckets and hours, one Update per bucket, in `tx`."""
    hours: dict[BucketKey, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for event in events:
        hours[bucket_of(event)][HOUR_ATTRIBUTES[event.timestamp.astimezone(UTC).hour]] += event.quantity
    for (org, invoice_id, line_id, day), by_hour in sorted(hours.items()):
        record = UsageDayRecord(keys.usage_pk(org, day[:7]), keys.usage_day_sk(day, invoice_id, line_id))
        actions: list[Any] = [
            UsageDayRecord.invoice_id.set(invoice_id), UsageDayRecord.line_id.set(line_id),
            UsageDayRecord.day.set(day), UsageDayRecord.quantity.add(sum(by_hour.values(), Decimal(0))),
        ]
        actions += [Path(name).add({"N": str(quantity)}) for name, quantity in sorted(by_hour.items())]
        tx.update(record, actions=actions)


@dataclass(frozen=True)
class DayBucket:
    invoice_id: str
    line_id: str
    day: date
    quantity: Decimal
    hours: dict[int, Decimal]  # hour of the day (0-23) → quantity; hours without usage are absent

    def hourly(self) -> list[tuple[datetime, Decimal]]:
        start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)
        return [(start.replace(hour=hour), quantity) for hour, quantity in sorted(self.hours.items())]


def month_buckets(org: str, period: Period) -> list[DayBucket]:
    """Every line's day buckets of one month, read consistently (hour attributes are not in the model)."""
    connection = UsageDayRecord._get_connection()
    condition = UsageDayRecord.sk.startswith(keys.USAGE_DAY_SK_PREFIX)
    out: list[DayBucket] = []
    start = None
    while True:
        page = connection.query(keys.usage_pk(org, str(period)), condition, consistent_read=True,
                                exclusive_start_key=start)
        out += [_bucket(item) for item in page.get("Items", [])]
        start = page.get("LastEvaluatedKey")
        if not start:
            return out


def _bucket(item: dict[str, Any]) -> DayBucket:
    hours = {
        hour: Decimal(item[name]["N"]) for hour, name in enumerate(HOUR_ATTRIBUTES)
        if name in item and Decimal(item[name]["N"]) != 0
    }
    return DayBucket(item["invoice_id"]["S"], item["line_id"]["S"], date.fromisoformat(item["day"]["S"]),
                     Decimal(item["quantity"]["N"]), hours)
