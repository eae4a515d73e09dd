"""Money: integer minor units plus a currency. Quantities and rates are Decimal.

The one rounding rule: a line's amount is its exact Decimal value in dollars, multiplied
by 100 and rounded half-up to a whole cent, once per line. Totals are sums of those
integer amounts, so our total and Stripe's (which sums the same integer amounts) agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# Finance totals add every org's invoices, so they are kept in the one currency orgs may bill in today.
REPORTING_CURRENCY = "usd"
_HUNDRED = Decimal(100)


def cents_from_dollars(dollars: Decimal) -> int:
    """Apply the rounding rule: half-up to the nearest cent."""
    if not isinstance(dollars, Decimal):
        raise TypeError("money must be Decimal, never float")
    return int((dollars * _HUNDRED).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Money:
    cents: int
    currency: str = "usd"

    def __post_init__(self) -> None:
        if not isinstance(self.cents, int) or isinstance(self.cents, bool):
            raise TypeError("Money.cents must be an int")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.cents + other.cents, self.currency)

    def display(self) -> str:
        sign = "-" if self.cents < 0 else ""
        whole, frac = divmod(abs(self.cents), 100)
        return f"{sign}${whole:,}.{frac:02d}"
