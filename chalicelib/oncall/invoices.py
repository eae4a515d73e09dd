"""What on-call needs to know about one invoice, and asking for its re-sync."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.errors import NotFound
from ..domain.identifiers import UnsafeKeyPart
from ..domain.invoice import Invoice
from ..storage.invoice_headers import InvoiceHeaders
from ..storage.invoices import InvoiceRepository


@dataclass(frozen=True)
class InvoiceFacts:
    org: str
    invoice_id: str
    number: str
    period: str
    status: str
    total_cents: int
    currency: str
    sync_state: str
    sync_attempts: int
    last_error: str | None
    last_error_at: datetime | None
    requested_at: datetime | None
    synced_at: datetime | None
    stripe_invoice_id: str | None


def facts(invoice: Invoice) -> InvoiceFacts:
    return InvoiceFacts(
        org=invoice.org,
        invoice_id=invoice.id,
        number=invoice.number,
        period=str(invoice.period),
        status=invoice.status.value,
        total_cents=invoice.total_cents,
        currency=invoice.currency,
        sync_state=invoice.sync.state.value,
        sync_attempts=invoice.sync.attempts,
        last_error=invoice.sync.last_error,
        last_error_at=invoice.sync.last_error_at,
        requested_at=invoice.sync.requested_at,
        synced_at=invoice.sync.synced_at,
        stripe_invoice_id=invoice.sync.stripe_invoice_id,
    )


def lookup(repo: InvoiceHeaders, org: str, invoice_id: str) -> Invoice | None:
    """The invoice, or None when it does not exist or the ids could never name one."""
    try:
        return repo.get(org, invoice_id)
    except UnsafeKeyPart:
        # Ids read from a queue message are untrusted; ones outside the key alphabet match nothing.
        return None


def resync(repo: InvoiceRepository, org: str, invoice_id: str, now: datetime) -> InvoiceFacts:
    """Mark the invoice pending with a new requested time; the table's stream enqueues the sync.

    Raises NotFound, or InvalidTransition for drafts (they are not sent to Stripe yet).
    """
    invoice = lookup(repo, org, invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found for {org}")
    repo.request_sync(invoice, now)
    updated = repo.get(org, invoice_id)
    if updated is None:
        raise NotFound(f"invoice {invoice_id} of {org} disappeared while being re-synced")
    return facts(updated)
