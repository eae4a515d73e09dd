"""An invoice's Stripe sync state: asking for a sync, and recording what it did and the ids Stripe gave.

A sync request stamps `sync_requested_at`; an outcome is recorded only while that stamp is the one
the sync started from, so a finished sync never closes a newer request.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from ..domain.errors import Conflict, InvalidTransition
from ..domain.invoice import Invoice, InvoiceStatus, SyncState
from ..failures import condition_failed
from . import keys
from .convert import index_state
from .invoice_headers import header_key
from .items import update_if
from .models import InvoiceItem

MAX_ERROR_CHARS = 1000  # what is kept of an error message on the invoice


def stripe_page_actions(hosted_invoice_url: str | None, invoice_pdf: str | None) -> list[Action]:
    """Store the customer's links to Stripe's hosted page and PDF, those given (the sync and the
    `invoice.finalized` webhook both learn them)."""
    actions: list[Action] = []
    if hosted_invoice_url:
        actions.append(InvoiceItem.hosted_invoice_url.set(hosted_invoice_url))
    if invoice_pdf:
        actions.append(InvoiceItem.invoice_pdf.set(invoice_pdf))
    return actions


class InvoiceSyncState:
    def record_sync(self, invoice: Invoice, state: SyncState, now: datetime, *, error: str | None = None,
                    stripe_invoice_id: str | None = None, stripe_number: str | None = None,
                    hosted_invoice_url: str | None = None, invoice_pdf: str | None = None,
                    count_attempt: bool = False) -> bool:
        """Record the sync outcome unless a new sync was requested meanwhile (then it is not ours to close)."""
        actions: list[Action] = [
            InvoiceItem.sync_state.set(state.value),
            InvoiceItem.gsi1pk.set(keys.state_gsi_pk(index_state(invoice.status, state))),
        ]
        if count_attempt:
            actions.append(InvoiceItem.sync_attempts.add(1))
        if error:
            actions += [InvoiceItem.sync_last_error.set(error[:MAX_ERROR_CHARS]),
                        InvoiceItem.sync_last_error_at.set(now)]
        else:
            actions += [InvoiceItem.sync_last_error.remove(), InvoiceItem.sync_last_error_at.remove()]
        if stripe_invoice_id:
            actions.append(InvoiceItem.stripe_invoice_id.set(stripe_invoice_id))
        if stripe_number:
            actions.append(InvoiceItem.stripe_invoice_number.set(stripe_number))
        actions += stripe_page_actions(hosted_invoice_url, invoice_pdf)
        if state is SyncState.SYNCED:
            actions.append(InvoiceItem.synced_at.set(now))
        condition = InvoiceItem.status == invoice.status.value
        if invoice.sync.requested_at is not None:
            condition &= InvoiceItem.sync_requested_at == invoice.sync.requested_at
        return update_if(header_key(invoice), actions, condition)

    def note_sync_error(self, invoice: Invoice, error: str, now: datetime) -> None:
        """Record a retryable failure: the error and one more attempt, unless the invoice got synced meanwhile."""
        try:
            header_key(invoice).update(
                actions=[InvoiceItem.sync_last_error.set(error[:MAX_ERROR_CHARS]),
                         InvoiceItem.sync_last_error_at.set(now), InvoiceItem.sync_attempts.add(1)],
                condition=InvoiceItem.sync_state != SyncState.SYNCED.value,
            )
        except UpdateError as update_error:
            if not condition_failed(update_error):
                raise

    def request_sync(self, invoice: Invoice, now: datetime) -> None:
        """Ask for a (re-)sync: the stream turns this change into a queue message."""
        if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.FINALIZING):
            raise InvalidTransition("only finalized or voided invoices are synced to Stripe")
        header_key(invoice).update(actions=[
            InvoiceItem.sync_state.set(SyncState.PENDING.value),
            InvoiceItem.sync_requested_at.set(now),
            InvoiceItem.gsi1pk.set(keys.state_gsi_pk(index_state(invoice.status, SyncState.PENDING))),
        ], condition=InvoiceItem.status == invoice.status.value)

    def record_stripe_invoice(self, invoice: Invoice, stripe_invoice_id: str) -> None:
        """Remember which Stripe invoice is ours, as soon as it exists (before its lines are sent)."""
        try:
            header_key(invoice).update(actions=[InvoiceItem.stripe_invoice_id.set(stripe_invoice_id)],
                                       condition=InvoiceItem.pk.exists())
        except (UpdateError, PutError) as error:
            if condition_failed(error):
                raise Conflict(f"invoice {invoice.id} does not exist") from error
            raise
