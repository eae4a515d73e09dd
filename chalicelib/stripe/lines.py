"""Our invoice lines as Stripe invoice lines.

Amounts are the integer cents we computed, so Stripe's total equals ours. Stripe holds at
most 250 items per invoice: above that, lines are rolled up by app and category (then by
category alone), and each rolled-up line's amount is the exact sum of its members.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.invoice import Invoice
from ..domain.lines import LineItem

STRIPE_MAX_LINES = 250


@dataclass(frozen=True)
class StripeLine:
    key: str  # our line id, or the rollup group; stored in the Stripe line's metadata
    amount: int
    description: str


def _single(line: LineItem) -> StripeLine:
    quantity = f"{round(line.display_quantity, 4).normalize():f} {line.display_unit}"
    return StripeLine(line.id, line.amount_cents, f"{line.description} ({quantity})"[:500])


def _rolled(lines: list[LineItem], group: Callable[[LineItem], tuple[str, ...]]) -> list[StripeLine]:
    groups: OrderedDict[tuple[str, ...], list[LineItem]] = OrderedDict()
    for line in sorted(lines, key=lambda item: (group(item), item.id)):
        groups.setdefault(group(line), []).append(line)
    return [
        StripeLine("rollup:" + ":".join(key), sum(m.amount_cents for m in members),
                   f"{' · '.join(key)} ({len(members)} lines)")
        for key, members in groups.items()
    ]


def stripe_lines(invoice: Invoice, lines: list[LineItem]) -> list[StripeLine]:
    if len(lines) <= STRIPE_MAX_LINES:
        return [_single(line) for line in sorted(lines, key=lambda item: item.id)]
    by_app = _rolled(lines, lambda line: (line.app or "account", line.category.value))
    if len(by_app) <= STRIPE_MAX_LINES:
        return by_app
    return _rolled(lines, lambda line: (line.category.value,))
