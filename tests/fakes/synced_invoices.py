"""An in-memory `SyncedInvoices` and `ReconciledInvoices` with the table's guarantees (tests/contract/ holds
it to them).

Reads return copies, as every DynamoDB read does, so an invoice a caller holds goes stale like a real read.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from chalicelib.domain.catalog import Category
from chalicelib.domain.errors import Conflict
from chalicelib.domain.invoice import Invoice, InvoiceStatus, SyncInfo, SyncState, invoice_id_for
from chalicelib.domain.lines import LineItem, LineKind, line_id, totals
from chalicelib.domain.periods import Period

from .transaction import TABLE_LOCK

ERROR_LIMIT = 1000  # the table keeps the first 1000 characters of an error


def fixed_line(client_id: str, amount_cents: int, description: str = "One-off charge") -> LineItem:
    """A one-off charge as the invoice service builds it (credits: a negative amount)."""
    return LineItem(
        id=line_id("fixed", client_id), kind=LineKind.ONE_OFF if amount_cents >= 0 else LineKind.CREDIT,
        category=Category.ADJUSTMENTS, product="One-off charge", description=description, app=None, region=None,
        resource=None, meter=None, quantity=Decimal(1), unit="item", display_unit="items",
        display_divisor=Decimal(1), unit_price=Decimal(amount_cents) / 100, price_per=Decimal(1), price_unit="item",
        tiers=(), free_pool=None, free_allowance=Decimal(0), price_version=None, usage_period="2026-11",
        event_count=0, first_usage_at=None, last_usage_at=None, amount_cents=amount_cents,
    )


def _index_state(invoice: Invoice) -> str:
    """The state index partition the table puts an invoice in: what work, if any, it waits for."""
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.FINALIZING):
        return invoice.status.value
    if invoice.sync.state in (SyncState.PENDING, SyncState.FAILED):
        return f"sync_{invoice.sync.state.value}"
    return invoice.status.value


class MemorySyncedInvoices:
    def __init__(self) -> None:
        self._invoices: dict[tuple[str, str], Invoice] = {}
        self._lines: dict[tuple[str, str], list[LineItem]] = {}
        self._lock = TABLE_LOCK  # one writer at a time, as the table's conditional writes give; and transactions

    # -- the port ----------------------------------------------------------------------------------
    def get(self, org: str, invoice_id: str) -> Invoice | None:
        return copy.deepcopy(self._invoices.get((org, invoice_id)))

    def by_state(self, state: str, before_period: Period | None = None) -> list[Invoice]:
        """As the table's state index, read at once (no lag): its sort key is `{period}#{org}`."""
        with self._lock:
            found = [invoice for invoice in self._invoices.values() if _index_state(invoice) == state
                     and (before_period is None or invoice.period < before_period)]
        return [copy.deepcopy(invoice) for invoice in sorted(found, key=lambda i: (i.period, i.org, i.id))]

    def lines(self, org: str, invoice_id: str) -> list[LineItem]:
        return sorted(self._lines.get((org, invoice_id), []), key=lambda line: line.id)

    def record_sync(self, invoice: Invoice, state: SyncState, now: datetime, *, error: str | None = None,
                    stripe_invoice_id: str | None = None, stripe_number: str | None = None,
                    hosted_invoice_url: str | None = None, invoice_pdf: str | None = None,
                    count_attempt: bool = False) -> bool:
        with self._lock:
            stored = self._invoices.get((invoice.org, invoice.id))
            if stored is None or stored.status is not invoice.status:
                return False
            if invoice.sync.requested_at is not None and stored.sync.requested_at != invoice.sync.requested_at:
                return False
            sync = replace(stored.sync, state=state,
                           attempts=stored.sync.attempts + (1 if count_attempt else 0),
                           last_error=error[:ERROR_LIMIT] if error else None, last_error_at=now if error else None)
            # Only what is given is written: a missing Stripe field keeps its stored value.
            if stripe_invoice_id:
                sync.stripe_invoice_id = stripe_invoice_id
            if stripe_number:
                sync.stripe_invoice_number = stripe_number
            if hosted_invoice_url:
                sync.hosted_invoice_url = hosted_invoice_url
            if invoice_pdf:
                sync.invoice_pdf = invoice_pdf
            if state is SyncState.SYNCED:
                sync.synced_at = now
            self._invoices[(invoice.org, invoice.id)] = replace(stored, sync=sync)  # no version bump, as the table
            return True

    def note_sync_error(self, invoice: Invoice, error: str, now: datetime) -> None:
        with self._lock:
            stored = self._invoices[(invoice.org, invoice.id)]
            if stored.sync.state is SyncState.SYNCED:
                return
            sync = replace(stored.sync, last_error=error[:ERROR_LIMIT], last_error_at=now,
                           attempts=stored.sync.attempts + 1)
            self._invoices[(invoice.org, invoice.id)] = replace(stored, sync=sync)

    def record_stripe_invoice(self, invoice: Invoice, stripe_invoice_id: str) -> None:
        with self._lock:
            stored = self._invoices.get((invoice.org, invoice.id))
            if stored is None:
                raise Conflict(f"invoice {invoice.id} does not exist")
            self._invoices[(invoice.org, invoice.id)] = replace(
                stored, sync=replace(stored.sync, stripe_invoice_id=stripe_invoice_id))

    # -- for tests: what other services do to the invoice -----------------------------------------
    def put(self, invoice: Invoice, lines: list[LineItem]) -> Invoice:
        """Store an invoice as the invoice service leaves it (its totals are the caller's)."""
        with self._lock:
            self._invoices[(invoice.org, invoice.id)] = copy.deepcopy(invoice)
            self._lines[(invoice.org, invoice.id)] = list(lines)
        return copy.deepcopy(invoice)

    def finalized(self, org: str, period: Period, lines: list[LineItem], now: datetime,
                  number: str = "ORG-0001", currency: str = "usd") -> Invoice:
        """The period's invoice as `InvoiceService.finalize` leaves it: lines frozen, totals set, sync pending."""
        sums = totals(lines)
        return self.put(Invoice(
            org, invoice_id_for(period), number, period, InvoiceStatus.FINALIZED, currency, now, now, version=3,
            subtotal_cents=sums.subtotal_cents, credits_cents=sums.credits_cents, total_cents=sums.total_cents,
            line_count=len(lines), finalized_at=now, sync=SyncInfo(SyncState.PENDING, requested_at=now),
        ), lines)

    def request_sync(self, org: str, invoice_id: str, now: datetime) -> None:
        """As `InvoiceRepository.request_sync`: a (re-)sync is pending from `now`."""
        with self._lock:
            stored = self._invoices[(org, invoice_id)]
            self._invoices[(org, invoice_id)] = replace(
                stored, sync=replace(stored.sync, state=SyncState.PENDING, requested_at=now))

    def set_status(self, org: str, invoice_id: str, status: InvoiceStatus, now: datetime) -> None:
        """As a transition without a new sync request (say the `invoice.paid` webhook)."""
        with self._lock:
            stored = self._invoices[(org, invoice_id)]
            self._invoices[(org, invoice_id)] = replace(stored, status=status, updated_at=now,
                                                        version=stored.version + 1)
