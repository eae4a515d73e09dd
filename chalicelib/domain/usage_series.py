"""Usage and cost over time: a line's hourly buckets, what each one cost, and series of them.

A line's quantity is kept per hour (and per day) in buckets written in the same transaction
as the line, so the buckets of a line always add up to its quantity. What a bucket cost is
its marginal cost in time order: the line's free quantity goes to its earliest usage, tiers
apply to the cumulative quantity, and rounding is cumulative:

    cost(bucket i) = cents(value of the line's usage up to and including i)
                   - cents(value of its usage before i)

so the costs of a line's buckets telescope to cents(value of the whole line), which is the
line's amount. Day costs are the sums of their hours' costs, and are the same whether the
series is computed by hour or by day, because day boundaries are hour boundaries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from .errors import ValidationFailed
from .lines import LineItem, tiered_value
from .money import cents_from_dollars

DISPLAY_PLACES = Decimal("0.000001")  # display quantities are rounded for reading; base quantities stay exact


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def step(self) -> timedelta:
        return timedelta(hours=1) if self is Granularity.HOUR else timedelta(days=1)

    @property
    def max_span(self) -> timedelta:
        """The longest range one request may ask for: bounds what a request reads and returns."""
        return timedelta(days=7) if self is Granularity.HOUR else timedelta(days=92)

    def floor(self, moment: datetime) -> datetime:
        moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return moment if self is Granularity.HOUR else moment.replace(hour=0)


class GroupBy(StrEnum):
    TOTAL = "total"
    APP = "app"
    CATEGORY = "category"
    METER = "meter"
    REGION = "region"
    LINE = "line"

    def key(self, line: LineItem) -> str:
        value = {
            GroupBy.TOTAL: "total",
            GroupBy.APP: line.app,
            GroupBy.CATEGORY: line.category.value,
            GroupBy.METER: line.meter,
            GroupBy.REGION: line.region,
            GroupBy.LINE: line.id,
        }[self]
        return value or "(none)"

    def label(self, line: LineItem) -> str:
        return line.description if self is GroupBy.LINE else self.key(line)


@dataclass(frozen=True)
class TimeRange:
    """[start, end) on the granularity's boundaries, at most its maximum span long."""

    start: datetime
    end: datetime
    granularity: Granularity

    def __post_init__(self) -> None:
        g = self.granularity
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValidationFailed("`from` and `to` must be UTC times")
        if g.floor(self.start) != self.start or g.floor(self.end) != self.end:
            unit = "an hour (YYYY-MM-DDTHH:00:00Z)" if g is Granularity.HOUR else "a day (YYYY-MM-DD)"
            raise ValidationFailed(f"`from` and `to` must each start {unit} for granularity={g.value}")
        if self.end <= self.start:
            raise ValidationFailed("`to` must be after `from`")
        if self.end - self.start > g.max_span:
            raise ValidationFailed(f"granularity={g.value} covers at most {g.max_span.days} days per request",
                                   {"max_days": g.max_span.days})

    def periods(self) -> list[datetime]:
        out, moment = [], self.start
        while moment < self.end:
            out.append(moment)
            moment += self.granularity.step
        return out


@dataclass(frozen=True)
class LineUsage:
    """A priced line and every hourly bucket of it (the buckets sum to the line's quantity)."""

    line: LineItem
    hours: Sequence[tuple[datetime, Decimal]]


def hourly_costs(line: LineItem, hours: Iterable[tuple[datetime, Decimal]]) -> list[tuple[datetime, Decimal, int]]:
    """Each hour's quantity and marginal cost in cents, in time order; the costs sum to the line's amount."""
    ordered = sorted(hours)
    if sum((q for _, q in ordered), Decimal(0)) != line.quantity:
        raise ValueError(f"line {line.id}: its buckets do not add up to its quantity")
    out: list[tuple[datetime, Decimal, int]] = []
    cumulative, billed = Decimal(0), 0
    for index, (hour, quantity) in enumerate(ordered):
        cumulative += quantity
        # The last bucket is pinned to the line's amount: equal to the formula when the line was priced by
        # price_lines, and exact to the cent by construction whatever priced it.
        so_far = line.amount_cents if index == len(ordered) - 1 else _value_cents(line, cumulative)
        out.append((hour, quantity, so_far - billed))
        billed = so_far
    return out


def _value_cents(line: LineItem, cumulative: Decimal) -> int:
    billable = max(Decimal(0), cumulative - line.free_quantity)
    return cents_from_dollars(tiered_value(billable, line.unit_price, line.price_per, line.tiers))


@dataclass
class Point:
    start: datetime
    cost_cents: int = 0
    quantities: dict[str, Decimal] = field(default_factory=dict)  # display unit → quantity in display units
    unit_costs: dict[str, int] = field(default_factory=dict)  # display unit → cost of that usage (sums to cost)


@dataclass
class Series:
    group: str
    label: str
    points: list[Point]
    cost_cents: int = 0
    quantities: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class UsageSeries:
    range: TimeRange
    group_by: GroupBy
    series: list[Series]
    totals: list[Point]

    @property
    def cost_cents(self) -> int:
        return sum(s.cost_cents for s in self.series)


def build_series(usages: Iterable[LineUsage], span: TimeRange, group_by: GroupBy) -> UsageSeries:
    """Group the lines' buckets that fall in `span` by time period and by `group_by`.

    Costs are computed over each line's whole life first, so a bucket inside the range is
    charged what it cost given everything the line used before it, inside the range or not.
    """
    periods = span.periods()
    slots = {moment: i for i, moment in enumerate(periods)}
    groups: dict[str, _Group] = {}
    for usage in usages:
        line, key = usage.line, group_by.key(usage.line)
        for hour, quantity, cost in hourly_costs(line, usage.hours):
            slot = slots.get(span.granularity.floor(hour))
            if slot is None:
                continue
            group = groups.get(key) or groups.setdefault(key, _Group(group_by.label(line), len(periods)))
            group.costs[slot] += cost
            group.divisors.setdefault(line.display_unit, line.display_divisor)
            group.base[(line.display_unit, slot)] += quantity
            group.unit_costs[(line.display_unit, slot)] += cost
    series = [groups[key].series(key, periods) for key in sorted(groups)]
    totals = [Point(moment, sum(s.points[i].cost_cents for s in series)) for i, moment in enumerate(periods)]
    return UsageSeries(span, group_by, series, totals)


class _Group:
    """Sums for one group while the buckets are read: cost per period, base quantity per unit and period."""

    def __init__(self, label: str, size: int) -> None:
        self.label = label
        self.costs = [0] * size
        self.base: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
        self.unit_costs: dict[tuple[str, int], int] = defaultdict(int)
        self.divisors: dict[str, Decimal] = {}

    def series(self, key: str, periods: list[datetime]) -> Series:
        points = [Point(moment, cost) for moment, cost in zip(periods, self.costs, strict=True)]
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for (unit, slot), quantity in self.base.items():
            points[slot].quantities[unit] = _display(quantity, self.divisors[unit])
            points[slot].unit_costs[unit] = self.unit_costs[(unit, slot)]
            totals[unit] += quantity
        return Series(key, self.label, points, sum(self.costs),
                      {unit: _display(quantity, self.divisors[unit]) for unit, quantity in sorted(totals.items())})


def _display(base_quantity: Decimal, divisor: Decimal) -> Decimal:
    return (base_quantity / divisor).quantize(DISPLAY_PLACES, rounding=ROUND_HALF_UP)
