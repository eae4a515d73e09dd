"""Recurring fees prorated to the second, by cumulative rounding.

By moment t, a plan held all period would have earned round_half_up(fee * (t - start) / length)
cents of its monthly fee. A piece [a, b) costs earned(b) - earned(a): pieces that tile any span
telescope to exactly that span's share, and the whole period costs exactly the fee, whatever the
month's length and however many changes cut it.

Each segment the org held in a period is written as two lines, the way customers read a plan
change: a charge from the segment's start to the period's end, and, when the segment ends
before the period does, a credit for the unused rest. Their sum is the piece. A line's id is
derived from (period, family, plan, boundary, charge or unused), so the lines are a function
of the timeline alone: recording the same changes in any order gives the same lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .money import cents_from_dollars
from .periods import Period
from .plans import Plan, Segment

SECOND = timedelta(seconds=1)
RECURRING_LINE_PREFIX = "sub_"  # recurring lines are found by this id prefix, apart from usage lines

PlanLookup = Callable[[str, Period], tuple[Plan, str]]  # code, period -> plan, price-book version


def period_seconds(period: Period) -> int:
    return (period.end - period.start) // SECOND


def earned(fee_cents: int, period: Period, moment: datetime) -> int:
    """Cents of the period's fee earned by `moment` (half-up; exact integer arithmetic)."""
    length = period_seconds(period)
    elapsed = min(max((moment - period.start) // SECOND, 0), length)
    return (2 * fee_cents * elapsed + length) // (2 * length)


def piece(fee_cents: int, period: Period, start: datetime, end: datetime) -> int:
    return earned(fee_cents, period, end) - earned(fee_cents, period, start)


@dataclass(frozen=True)
class RecurringCharge:
    """One line a period's timeline calls for: a charge from `boundary` to the period's end, or the
    credit for the unused part of a plan from `boundary` on (negative)."""

    period: Period
    plan: Plan
    price_version: str
    boundary: datetime
    unused: bool
    amount_cents: int

    @property
    def line_id(self) -> str:
        return recurring_line_id(self.period, self.plan.family, self.plan.code, self.boundary, self.unused)

    @property
    def seconds(self) -> int:
        return (self.period.end - self.boundary) // SECOND


def recurring_line_id(period: Period, family: str, plan: str, boundary: datetime, unused: bool) -> str:
    key = "\x1f".join((str(period), family, plan, boundary.isoformat(), "unused" if unused else "charge"))
    return RECURRING_LINE_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:24]


def charges_for(period: Period, held: Iterable[Segment], plan_for: PlanLookup) -> list[RecurringCharge]:
    """The recurring lines of `period`: for each segment held in it, a charge and maybe an unused credit."""
    found: list[RecurringCharge] = []
    for segment in held:
        start = max(segment.start, period.start)
        end = period.end if segment.end is None else min(segment.end, period.end)
        if start >= end:
            continue
        plan, version = plan_for(segment.plan, period)
        fee = cents_from_dollars(plan.monthly_fee)
        charge = fee - earned(fee, period, start)
        if charge:
            found.append(RecurringCharge(period, plan, version, start, False, charge))
        unused = fee - earned(fee, period, end)
        if end < period.end and unused:
            found.append(RecurringCharge(period, plan, version, end, True, -unused))
    return found
