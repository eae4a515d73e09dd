"""Customer events about invoices, noticed where they happen: in the table's stream of changes.

Whatever changed an invoice header (finalize, the sync worker, a Stripe webhook), its stream record
shows the before and after; an event is due when the after crossed a line the before had not.
Each event's id names its cause, so a redelivered or replayed record stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from ..domain.invoice import Invoice, InvoiceStatus, PaymentStatus, SyncState
from ..domain.notifications import CustomerEvent, EventType, event_id
from ..domain.periods import utc_iso
from ..observability import logger
from ..storage import stream_images
from ..storage.invoices import InvoiceRepository
from ..storage.notices import NoticeRepository
from ..storage.stream_images import Change
from .ports import Notices, ReconciledInvoices

_FAILED = (PaymentStatus.FAILED, PaymentStatus.ACTION_REQUIRED)


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    """What a customer's system needs to act on an invoice event, with links to Stripe's pages."""
    return {"invoice": {
        "id": invoice.id, "number": invoice.number, "period": str(invoice.period), "status": invoice.status.value,
        "currency": invoice.currency, "total_cents": invoice.total_cents,
        "due_at": utc_iso(invoice.due_at) if invoice.due_at else None,
        "payment_status": invoice.payment_status.value, "payment_attempts": invoice.payment_attempts,
        "stripe_invoice_id": invoice.sync.stripe_invoice_id,
        "hosted_invoice_url": invoice.sync.hosted_invoice_url, "invoice_pdf": invoice.sync.invoice_pdf,
    }}


def _event(kind: EventType, invoice: Invoice, created: datetime, *cause: str) -> CustomerEvent:
    return CustomerEvent(event_id(invoice.org, invoice.id, kind.value, *cause), kind, invoice.org, created,
                         invoice_data(invoice))


def invoice_changes(old: Invoice | None, new: Invoice) -> list[CustomerEvent]:
    """The customer events one change of an invoice header causes."""
    events = []
    if new.status is InvoiceStatus.FINALIZED and (old is None or old.status in (InvoiceStatus.DRAFT,
                                                                                  InvoiceStatus.FINALIZING)):
        events.append(_event(EventType.INVOICE_FINALIZED, new, new.finalized_at or new.updated_at))
    if new.sync.state is SyncState.SYNCED and new.status is not InvoiceStatus.VOID and \
            (old is None or old.sync.state is not SyncState.SYNCED):
        events.append(_event(EventType.INVOICE_SYNCED, new, new.sync.synced_at or new.updated_at))
    if new.payment_status is PaymentStatus.PAID and (old is None or old.payment_status is not PaymentStatus.PAID):
        events.append(_event(EventType.INVOICE_PAYMENT_SUCCEEDED, new, new.updated_at))
    if new.payment_status in _FAILED and new.payment_event_id and \
            (old is None or old.payment_event_id != new.payment_event_id):
        # Each failed attempt is its own cause: Stripe retries, and the customer hears of each.
        events.append(_event(EventType.INVOICE_PAYMENT_FAILED, new, new.updated_at, new.payment_event_id))
    return events


def events_from_changes(changes: Iterable[Change]) -> list[CustomerEvent]:
    events = []
    for change in stream_images.invoice_changes(changes):
        events += invoice_changes(change.old, change.new)
    return events


def publish_all(events: Iterable[CustomerEvent], notices: Notices | None = None) -> int:
    """Store each event once; the number stored by this call (the others existed already)."""
    store: Notices = notices if notices is not None else NoticeRepository()
    stored = 0
    for event in events:
        if store.publish(event):
            stored += 1
            logger.info("customer event", extra={"org": event.org, "event": event.id, "type": event.type.value})
    return stored


def announce_delayed_syncs(now: datetime, delayed_after: timedelta, *, invoices: ReconciledInvoices | None = None,
                           notices: Notices | None = None) -> list[CustomerEvent]:
    """Tell customers whose invoice has waited for Stripe longer than `delayed_after` (once per request)."""
    waiting: ReconciledInvoices = invoices if invoices is not None else InvoiceRepository()
    events = []
    for invoice in waiting.by_state(f"sync_{SyncState.PENDING.value}"):
        requested = invoice.sync.requested_at
        if requested is None or requested > now - delayed_after:
            continue
        event = _event(EventType.INVOICE_SYNC_DELAYED, invoice, now, utc_iso(requested))
        event.data["sync"] = {"state": invoice.sync.state.value, "requested_at": utc_iso(requested),
                              "pending_seconds": int((now - requested).total_seconds())}
        events.append(event)
    publish_all(events, notices)
    return events
