"""The recurring lines an open invoice must carry for a period.

On the period's own invoice: exactly the period's charges (proration.charges_for). Once that
invoice is frozen, a change to the period (a backdated plan change) is billed like late usage:
the next open invoice carries, per line id, what the period's charges call for minus what
frozen invoices already billed for it: a charge never billed, or the reversal of one billed
that the timeline no longer holds. Summed over every invoice, a period's recurring lines are
always exactly its charges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from .lines import LineItem, LineKind
from .periods import Period
from .proration import RecurringCharge, period_seconds


def recurring_lines(period: Period, charges: Iterable[RecurringCharge], billed: Iterable[LineItem],
                    late: bool) -> list[LineItem]:
    """The lines for `period` on an open invoice; `billed` are its recurring lines on frozen invoices."""
    already: dict[str, int] = {}
    billed_line: dict[str, LineItem] = {}
    for line in billed:
        already[line.id] = already.get(line.id, 0) + line.amount_cents
        billed_line[line.id] = line
    wanted = {charge.line_id: charge for charge in charges}
    lines = []
    for line_id, charge in sorted(wanted.items()):
        owed = charge.amount_cents - already.get(line_id, 0)
        if owed:
            lines.append(_line(charge, owed, late))
    for line_id, amount in sorted(already.items()):
        if line_id not in wanted and amount:
            lines.append(_reversal(period, billed_line[line_id], -amount))
    return lines


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _describe(charge: RecurringCharge) -> str:
    if charge.unused:
        return f"Unused time on {charge.plan.name} from {_when(charge.boundary)} (prorated)"
    if charge.boundary == charge.period.start:
        return f"{charge.plan.name} · {charge.period}"
    return f"{charge.plan.name} from {_when(charge.boundary)} (prorated)"


def _late_label(period: Period) -> str:
    return f"Late plan change for {period}: "


def _line(charge: RecurringCharge, amount_cents: int, late: bool) -> LineItem:
    period, plan = charge.period, charge.plan
    description = _describe(charge)
    sign = -1 if amount_cents < 0 else 1
    return LineItem(
        id=charge.line_id, kind=LineKind.LATE_RECURRING if late else LineKind.RECURRING,
        category=plan.category, product=plan.name,
        description=_late_label(period) + description if late else description,
        app=None, region=None, resource=plan.code, meter=None,
        quantity=Decimal(sign * charge.seconds), unit="second", display_unit="months",
        display_divisor=Decimal(period_seconds(period)), unit_price=plan.monthly_fee,
        price_per=Decimal(period_seconds(period)), price_unit="month", tiers=(), free_pool=None,
        free_allowance=Decimal(0), price_version=charge.price_version, usage_period=str(period), event_count=0,
        first_usage_at=charge.boundary, last_usage_at=period.end, amount_cents=amount_cents,
    )


def _reversal(period: Period, billed: LineItem, amount_cents: int) -> LineItem:
    """Takes back a line billed for `period` that its timeline no longer calls for."""
    base = billed.description.removeprefix(_late_label(period))
    return replace(billed, kind=LineKind.LATE_RECURRING, description=f"Reversal for {period}: {base}",
                   quantity=-billed.quantity, amount_cents=amount_cents)
