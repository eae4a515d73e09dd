"""What Stripe tells us about an invoice once it is collecting: payment status, attempts, its pages."""

from __future__ import annotations

from datetime import datetime

from pynamodb.expressions.update import Action

from ..domain.invoice import Invoice, PaymentStatus
from . import keys
from .invoice_sync_state import stripe_page_actions
from .items import update_if
from .models import InvoiceItem

# Once paid, only a void can change the payment status: Stripe neither orders its events nor stops
# retrying a delivery, so a failure of an earlier attempt can arrive after the payment.
_SETTLED_BY = {PaymentStatus.PAID, PaymentStatus.VOID}


def record_payment(invoice: Invoice, status: PaymentStatus, now: datetime, *, event_id: str,
                   attempts: int | None) -> bool:
    """Set the payment status from a Stripe event; False when the invoice was paid meanwhile."""
    actions: list[Action] = [
        InvoiceItem.payment_status.set(status.value),
        InvoiceItem.payment_event_id.set(event_id),
        InvoiceItem.updated_at.set(now),
    ]
    if attempts is not None:
        actions.append(InvoiceItem.payment_attempts.set(attempts))
    condition = InvoiceItem.pk.exists()
    if status not in _SETTLED_BY:
        condition &= InvoiceItem.payment_status != PaymentStatus.PAID.value
    return update_if(InvoiceItem(keys.org_pk(invoice.org), keys.invoice_sk(invoice.id)), actions, condition)


def record_stripe_pages(invoice: Invoice, number: str | None, hosted_invoice_url: str | None,
                        invoice_pdf: str | None) -> None:
    """Stripe's number, hosted page and PDF, as `invoice.finalized` announces them (the sync stores them too)."""
    actions: list[Action] = []
    if number and not invoice.sync.stripe_invoice_number:
        actions.append(InvoiceItem.stripe_invoice_number.set(number))
    actions += stripe_page_actions(hosted_invoice_url, invoice_pdf)
    if actions:
        InvoiceItem(keys.org_pk(invoice.org), keys.invoice_sk(invoice.id)).update(
            actions=actions, condition=InvoiceItem.pk.exists())
