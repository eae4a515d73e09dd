"""Invoice line items and how they are priced.

A usage line accumulates the quantity of every event with the same grouping (meter, app,
region, resource, and for late usage the period it belongs to). Its amount is derived:
free allowance first, then graduated tiers, then the rounding rule once per line.

The free allowance of a pool (say, 10 single-host certificates) belongs to the org and the
period the usage belongs to, and goes first to what was used first: a pool's lines take it in
order of their first usage time (line id breaks ties). Late usage, billed on a later invoice,
consumes what its own period left: the allowance less what that period's invoice and earlier
late lines already took (`used_before`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from .catalog import Category
from .money import cents_from_dollars
from .pricebook import Quote, Tier


class LineKind(StrEnum):
    USAGE = "usage"
    RECURRING = "recurring"
    ONE_OFF = "one_off"
    CREDIT = "credit"
    LATE_USAGE = "late_usage"


METERED_KINDS = frozenset({LineKind.USAGE, LineKind.RECURRING, LineKind.LATE_USAGE})


@dataclass(frozen=True)
class LineItem:
    id: str
    kind: LineKind
    category: Category
    product: str
    description: str
    app: str | None
    region: str | None
    resource: str | None
    meter: str | None
    quantity: Decimal
    unit: str
    display_unit: str
    display_divisor: Decimal
    unit_price: Decimal
    price_per: Decimal
    price_unit: str
    tiers: tuple[Tier, ...]
    free_pool: str | None
    free_allowance: Decimal
    price_version: str | None
    usage_period: str  # the period the usage belongs to (differs from the invoice's for late usage)
    event_count: int
    first_usage_at: datetime | None
    last_usage_at: datetime | None
    free_quantity: Decimal = Decimal(0)
    amount_cents: int = 0

    @property
    def display_quantity(self) -> Decimal:
        return self.quantity / self.display_divisor


def line_id(*parts: str) -> str:
    """Deterministic, so the same usage always lands in the same line and retries converge."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"li_{digest[:24]}"


def usage_line_id(quote: Quote, app: str, region: str | None, usage_period: str, late: bool) -> str:
    kind = LineKind.LATE_USAGE if late else (LineKind.RECURRING if quote.recurring else LineKind.USAGE)
    return line_id(kind, quote.meter, app, region or "", quote.resource, usage_period if late else "")


def usage_kind(quote: Quote, late: bool) -> LineKind:
    if late:
        return LineKind.LATE_USAGE
    return LineKind.RECURRING if quote.recurring else LineKind.USAGE


def describe(quote: Quote, app: str, region: str | None, late_period: str | None) -> str:
    parts = [quote.product.removeprefix("Machine "), f"app {app}"]
    if region:
        parts.append(region)
    text = " · ".join(parts)
    return f"Late usage for {late_period}: {text}" if late_period else text


def tiered_value(billable: Decimal, unit_price: Decimal, price_per: Decimal, tiers: tuple[Tier, ...]) -> Decimal:
    """Exact dollar value of `billable` base units under graduated tiers (none: one flat price)."""
    if not tiers:
        return billable * unit_price / price_per
    value, floor = Decimal(0), Decimal(0)
    for tier in tiers:
        ceiling = billable if tier.up_to is None else min(billable, tier.up_to)
        if ceiling > floor:
            value += (ceiling - floor) * tier.unit_price / price_per
        if tier.up_to is None or billable <= tier.up_to:
            break
        floor = tier.up_to
    return value


PoolKey = tuple[str, str]  # (usage period, free pool): one allowance each


def _first_use(line: LineItem) -> tuple[bool, datetime, str]:
    # Lines without a first usage time (none are written so today) come after every used one.
    return line.first_usage_at is None, line.first_usage_at or datetime.max.replace(tzinfo=UTC), line.id


def price_lines(lines: Iterable[LineItem], used_before: Mapping[PoolKey, Decimal] | None = None) -> list[LineItem]:
    """Apply free allowances and prices to metered lines; fixed-amount lines pass through.

    `used_before`: what other invoices' lines already took from a period's pool (see the module's
    rule); missing keys mean nothing was taken.
    """
    used_before = used_before or {}
    remaining: dict[PoolKey, Decimal] = {}
    priced = []
    for line in sorted(lines, key=_first_use):
        if line.kind not in METERED_KINDS:
            priced.append(line)
            continue
        free = Decimal(0)
        if line.free_pool:
            key = (line.usage_period, line.free_pool)
            if key not in remaining:
                remaining[key] = max(Decimal(0), line.free_allowance - used_before.get(key, Decimal(0)))
            free = min(remaining[key], line.quantity)
            remaining[key] -= free
        value = tiered_value(line.quantity - free, line.unit_price, line.price_per, line.tiers)
        priced.append(replace(line, free_quantity=free, amount_cents=cents_from_dollars(value)))
    return priced


def free_used(lines: Iterable[LineItem]) -> dict[PoolKey, Decimal]:
    """What priced lines took from each period's pool."""
    used: dict[PoolKey, Decimal] = {}
    for line in lines:
        if line.free_pool and line.free_quantity:
            key = (line.usage_period, line.free_pool)
            used[key] = used.get(key, Decimal(0)) + line.free_quantity
    return used


@dataclass(frozen=True)
class Totals:
    subtotal_cents: int
    credits_cents: int  # positive number: what credits take off
    total_cents: int


def totals(lines: Iterable[LineItem]) -> Totals:
    subtotal = credits = 0
    for line in lines:
        if line.kind is LineKind.CREDIT:
            credits -= line.amount_cents
        else:
            subtotal += line.amount_cents
    return Totals(subtotal, credits, subtotal - credits)
