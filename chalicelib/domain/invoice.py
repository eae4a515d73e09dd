"""The invoice, its lifecycle, and the state of its copy in Stripe.

Status transitions live here and nowhere else. `finalizing` is internal: it closes the
invoice to new usage before the lines are read and frozen, so no event can slip in
between "read the lines" and "mark finalized".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from .errors import InvalidTransition, StaleRead
from .periods import Period


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    FINALIZING = "finalizing"
    FINALIZED = "finalized"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


_S = InvoiceStatus
TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    _S.DRAFT: frozenset({_S.FINALIZING, _S.VOID}),
    _S.FINALIZING: frozenset({_S.FINALIZED}),
    _S.FINALIZED: frozenset({_S.PAID, _S.VOID, _S.UNCOLLECTIBLE}),
    _S.UNCOLLECTIBLE: frozenset({_S.PAID, _S.VOID}),
    _S.PAID: frozenset(),
    _S.VOID: frozenset(),
}

# Once an invoice reaches one of these, its amounts are frozen.
FROZEN = frozenset({_S.FINALIZED, _S.PAID, _S.VOID, _S.UNCOLLECTIBLE})
PAYMENT_TERMS = timedelta(days=14)


def check_transition(current: InvoiceStatus, target: InvoiceStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(
            f"invoice is {current.value}; it cannot become {target.value}",
            {"status": current.value, "allowed": sorted(s.value for s in TRANSITIONS[current])},
        )


def refused_transition(expected: Invoice, current: Invoice | None) -> InvalidTransition | StaleRead:
    """Why a guarded transition of `expected` was cancelled, given the invoice as it is now: the invoice itself
    moved (another status or version), or something the transition checked along with it did."""
    if current is None or (current.status, current.version) != (expected.status, expected.version):
        return InvalidTransition(
            f"invoice {expected.id} changed while being updated; read it again",
            {"expected_status": expected.status.value, "expected_version": expected.version},
        )
    return StaleRead("something this change depends on changed meanwhile; read again")


class SyncState(StrEnum):
    NOT_REQUIRED = "not_required"  # drafts are not sent to Stripe
    PENDING = "pending"
    SYNCED = "synced"
    FAILED = "failed"


class PaymentStatus(StrEnum):
    NONE = "none"
    UNPAID = "unpaid"
    PAID = "paid"
    FAILED = "failed"  # the last attempt was declined; Stripe retries by its own schedule
    ACTION_REQUIRED = "action_required"  # the customer must confirm the payment (e.g. 3-D Secure)
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


@dataclass
class SyncInfo:
    state: SyncState = SyncState.NOT_REQUIRED
    stripe_invoice_id: str | None = None
    stripe_invoice_number: str | None = None
    attempts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    requested_at: datetime | None = None
    synced_at: datetime | None = None
    hosted_invoice_url: str | None = None  # Stripe's page where the customer sees and pays it
    invoice_pdf: str | None = None


@dataclass
class Invoice:
    org: str
    id: str
    number: str
    period: Period
    status: InvoiceStatus
    currency: str
    created_at: datetime
    updated_at: datetime
    version: int = 1
    subtotal_cents: int = 0
    credits_cents: int = 0
    total_cents: int = 0
    line_count: int = 0
    finalized_at: datetime | None = None
    due_at: datetime | None = None
    voided_at: datetime | None = None
    payment_status: PaymentStatus = PaymentStatus.NONE
    sync: SyncInfo = field(default_factory=SyncInfo)
    payment_attempts: int = 0
    payment_event_id: str | None = None  # the Stripe event that last set the payment status


def invoice_id_for(period: Period) -> str:
    """One invoice per org and period, so the id is derived from the period: creation races converge."""
    return f"inv_{period.compact}"


def invoice_number(org_prefix: str, sequence: int) -> str:
    return f"{org_prefix}-{sequence:04d}"


def number_prefix(org: str) -> str:
    letters = "".join(ch for ch in org.upper() if ch.isalnum())
    return (letters or "ORG")[:12]
