"""How Stripe collects an org's invoices, and what a Stripe invoice's status says about payment.

Stripe advances an invoice only when `auto_advance` is true: drafts stay `auto_advance=false`
while lines are added (with it, Stripe would finalize a draft on its own after about an hour),
and the sync turns it on with the one finalize call. From there Stripe charges the card on file
(`charge_automatically`) or emails the invoice with `days_until_due` (`send_invoice`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import ValidationFailed
from .invoice import PAYMENT_TERMS, PaymentStatus

MAX_DAYS_UNTIL_DUE = 365


class CollectionMethod(StrEnum):
    CHARGE_AUTOMATICALLY = "charge_automatically"
    SEND_INVOICE = "send_invoice"


@dataclass(frozen=True)
class Collection:
    method: CollectionMethod
    days_until_due: int | None  # send_invoice only: Stripe refuses it with charge_automatically

    @classmethod
    def of(cls, method: CollectionMethod, days_until_due: int | None) -> Collection:
        if method is CollectionMethod.CHARGE_AUTOMATICALLY:
            if days_until_due is not None:
                raise ValidationFailed("days_until_due applies to send_invoice only",
                                       {"collection_method": method.value})
            return cls(method, None)
        days = PAYMENT_TERMS.days if days_until_due is None else days_until_due
        if not 1 <= days <= MAX_DAYS_UNTIL_DUE:
            raise ValidationFailed(f"days_until_due must be 1 to {MAX_DAYS_UNTIL_DUE}", {"days_until_due": days})
        return cls(method, days)


# Orgs that never chose: Stripe emails the invoice, due after our payment terms (as before collection existed).
DEFAULT_COLLECTION = Collection(CollectionMethod.SEND_INVOICE, PAYMENT_TERMS.days)

# What our payment status may be while Stripe's invoice has this status. `open` covers every state
# before the money arrives; the settled ones each have exactly one.
_CONSISTENT: dict[str, frozenset[PaymentStatus]] = {
    "open": frozenset({PaymentStatus.NONE, PaymentStatus.UNPAID, PaymentStatus.FAILED,
                       PaymentStatus.ACTION_REQUIRED}),
    "paid": frozenset({PaymentStatus.PAID}),
    "uncollectible": frozenset({PaymentStatus.UNCOLLECTIBLE}),
    "void": frozenset({PaymentStatus.VOID}),
}


def payment_drift(stripe_status: str, ours: PaymentStatus) -> str | None:
    """Why our payment status contradicts Stripe's invoice status, or None when they agree."""
    allowed = _CONSISTENT.get(stripe_status)
    if allowed is None or ours in allowed:
        return None
    return f"Stripe invoice is {stripe_status}; our payment status is {ours.value}"
