"""Stripe's invoice events applied to our invoice: payment status, status, and Stripe's pages.

Every change here lands on the invoice header, so the table's stream turns it into the
customer's event (`invoice.payment_succeeded`, `invoice.payment_failed`): one per cause.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.errors import InvalidTransition, StaleRead
from ..domain.invoice import Invoice, InvoiceStatus, PaymentStatus
from ..observability import logger
from ..storage.invoice_headers import InvoiceHeaders
from ..storage.payments import record_payment, record_stripe_pages

HANDLED = frozenset({
    "invoice.finalized", "invoice.paid", "invoice.payment_failed", "invoice.payment_action_required",
    "invoice.marked_uncollectible", "invoice.voided",
})
_NOT_PAID_STATUS = {
    "invoice.payment_failed": PaymentStatus.FAILED,
    "invoice.payment_action_required": PaymentStatus.ACTION_REQUIRED,
}
TRANSITION_TRIES = 3


def apply_stripe_event(event_type: str, event_id: str, data: dict[str, Any], invoice: Invoice,
                       repo: InvoiceHeaders, now: datetime) -> str:
    """Apply one verified Stripe event to our copy of its invoice; answers applied / ignored."""
    context = {"org": invoice.org, "invoice_id": invoice.id, "event": event_id, "type": event_type}
    attempts = data.get("attempt_count")
    attempt_count = attempts if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 0 \
        else None
    if event_type == "invoice.finalized":
        record_stripe_pages(invoice, _text(data.get("number")), _text(data.get("hosted_invoice_url")),
                            _text(data.get("invoice_pdf")))
        return "applied"
    if event_type == "invoice.paid":
        _move_to(repo, invoice, InvoiceStatus.PAID, now)
        record_payment(invoice, PaymentStatus.PAID, now, event_id=event_id, attempts=attempt_count)
        return "applied"
    if event_type in _NOT_PAID_STATUS:
        if invoice.status is InvoiceStatus.PAID or invoice.payment_status is PaymentStatus.PAID or not \
                record_payment(invoice, _NOT_PAID_STATUS[event_type], now, event_id=event_id, attempts=attempt_count):
            logger.info("payment failure after the payment ignored", extra=context)
            return "ignored"
        return "applied"
    if event_type == "invoice.marked_uncollectible":
        if invoice.status is InvoiceStatus.FINALIZED:
            _move_to(repo, invoice, InvoiceStatus.UNCOLLECTIBLE, now)
        if not record_payment(invoice, PaymentStatus.UNCOLLECTIBLE, now, event_id=event_id, attempts=attempt_count):
            return "ignored"
        return "applied"
    if event_type == "invoice.voided":
        if invoice.status is not InvoiceStatus.VOID:
            # Someone voided it in Stripe's dashboard: reconciliation flags the drift for a person to settle.
            logger.warning("invoice voided in Stripe but not here", extra=context)
        record_payment(invoice, PaymentStatus.VOID, now, event_id=event_id, attempts=attempt_count)
        return "applied"
    return "ignored"


def _move_to(repo: InvoiceHeaders, invoice: Invoice, target: InvoiceStatus, now: datetime) -> None:
    """Transition, reading again when a concurrent change (the sync, another event) moved the version."""
    current: Invoice | None = invoice
    for _ in range(TRANSITION_TRIES):
        if current is None or current.status is target:
            return
        try:
            repo.transition(current, target, now)
            return
        except StaleRead:
            current = repo.get(invoice.org, invoice.id)  # the sync recorded its state meanwhile
        except InvalidTransition:
            fresh = repo.get(invoice.org, invoice.id)
            if fresh is not None and fresh.version == current.version and fresh.status is current.status:
                raise  # not a race: the status does not allow it
            current = fresh
    raise InvalidTransition(f"invoice {invoice.id} kept changing while Stripe's event was applied")


def _text(value: Any) -> str | None:
    """A string Stripe sent (the number was checked with the event; links are https and bounded), else None."""
    if not isinstance(value, str) or not value or len(value) > 2048:
        return None
    return value if value.startswith("https://") or "://" not in value else None
