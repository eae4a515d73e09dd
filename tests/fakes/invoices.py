"""The in-memory invoices: one store for every invoice port (`InvoiceDrafts`, `Invoices`, `SyncedInvoices`,
`ReconciledInvoices`, `InvoiceReads`), with the table's guarantees (tests/contract/ holds it to them: the
drafts, invoices and synced-invoices suites).

A period's draft is numbered from the org's sequence; a guarded status change commits the month totals and
any joined parts (credit, the plan timeline's check) in one `MemoryTransaction`; prices freeze; fixed items go
only onto an unchanged draft; the sync's record is written only over the status and request it read. Other
fakes that write lines in a transaction (usage, credit lines, recurring lines) write them here. Reads return
copies, as every DynamoDB read does, so an invoice a caller holds goes stale like a real read.
"""

from __future__ import annotations

import base64
import copy
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from chalicelib.domain import invoice as invoice_rules
from chalicelib.domain.catalog import Category
from chalicelib.domain.errors import Conflict, InvalidTransition, ValidationFailed
from chalicelib.domain.invoice import (
    Invoice,
    InvoiceStatus,
    SyncInfo,
    SyncState,
    check_transition,
    invoice_id_for,
    invoice_number,
    number_prefix,
)
from chalicelib.domain.lines import LineItem, LineKind, Totals, line_id, totals
from chalicelib.domain.periods import Period
from chalicelib.services.ports import TransactionPart

from .transaction import TABLE_LOCK, MemoryTransaction, TransactionCancelled

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


HEADER = "the invoice"  # the name of the header's condition in a cancelled transaction


class MemoryInvoices:
    def __init__(self, currencies: dict[str, str] | None = None) -> None:
        self._invoices: dict[tuple[str, str], Invoice] = {}
        self._lines: dict[tuple[str, str], list[LineItem]] = {}
        self._lock = TABLE_LOCK  # one writer at a time, as the table's conditional writes give; and transactions
        self._currencies = currencies or {}  # org → billing currency: the orgs that have a profile
        self._sequences: dict[str, int] = {}
        # The month totals, as the rollup items: (period, org) → [invoices, subtotal, credits, total].
        self._rollups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self.opened_months: set[str] = set()

    # -- reads and the sync's writes (SyncedInvoices, ReconciledInvoices) ---------------------------
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

    def set_status(self, org: str, invoice_id: str, status: InvoiceStatus, now: datetime | None = None) -> None:
        """As a transition made elsewhere without a new sync request (a finalize, the `invoice.paid` webhook)."""
        with self._lock:
            stored = self._invoices[(org, invoice_id)]
            self._invoices[(org, invoice_id)] = replace(stored, status=status, updated_at=now or stored.updated_at,
                                                        version=stored.version + 1)

    # -- the invoice service's reads and writes (Invoices, InvoiceDrafts) ----------------------------
    def page(self, org: str, limit: int, cursor: str | None) -> tuple[list[Invoice], str | None]:
        after = _decode_cursor(cursor) if cursor else None
        ids = sorted((invoice_id for owner, invoice_id in self._invoices if owner == org), reverse=True)
        ids = [invoice_id for invoice_id in ids if after is None or invoice_id < after]
        page = [copy.deepcopy(self._invoices[(org, invoice_id)]) for invoice_id in ids[:limit]]
        return page, _encode_cursor(page[-1].id) if len(ids) > limit else None

    def month_totals(self, period: Period, org: str | None = None) -> tuple[int, int, int, int]:
        """(invoices, subtotal, credits, total) of the month: all orgs', or one org's."""
        rows = [row for (month, owner), row in self._rollups.items()
                if month == str(period) and org in (None, owner)]
        count, subtotal, credits, total = (sum(row[i] for row in rows) for i in range(4))
        return count, subtotal, credits, total

    # -- writes ------------------------------------------------------------------------------------
    def create_draft(self, org: str, period: Period, now: datetime) -> Invoice:
        with self._lock:
            key = (org, invoice_id_for(period))
            if key not in self._invoices:
                sequence = self._sequences.get(org, 0) + 1
                self._sequences[org] = sequence
                self._invoices[key] = Invoice(org, key[1], invoice_number(number_prefix(org), sequence), period,
                                              InvoiceStatus.DRAFT, self._currencies[org], now, now)
                self._lines.setdefault(key, [])
            return copy.deepcopy(self._invoices[key])

    def transition(self, invoice: Invoice, target: InvoiceStatus, now: datetime, *, totals: Totals | None = None,
                   line_count: int | None = None, due_at: datetime | None = None,
                   sync_state: SyncState | None = None, rollup_sign: int = 0,
                   along: TransactionPart | None = None) -> Invoice:
        check_transition(invoice.status, target)
        updated = replace(invoice, status=target, updated_at=now, version=invoice.version + 1)
        if totals is not None and line_count is not None:
            updated = replace(updated, subtotal_cents=totals.subtotal_cents, credits_cents=totals.credits_cents,
                              total_cents=totals.total_cents, line_count=line_count, finalized_at=now,
                              due_at=due_at if due_at is not None else invoice.due_at)
        if target is InvoiceStatus.VOID:
            updated = replace(updated, voided_at=now)
        if sync_state is not None:
            updated = replace(updated, sync=replace(invoice.sync, state=sync_state, requested_at=now))
        key = (invoice.org, invoice.id)

        def unchanged() -> bool:
            stored = self._invoices.get(key)
            return stored is not None and (stored.status, stored.version) == (invoice.status, invoice.version) \
                and (sync_state is not None or stored.sync.state is invoice.sync.state)

        def write() -> None:
            stored = self._invoices[key]
            # Only the fields the table's update sets change: the rest of the stored sync record stays.
            sync = stored.sync if sync_state is None else replace(stored.sync, state=sync_state, requested_at=now)
            self._invoices[key] = replace(updated, sync=sync)
            if rollup_sign:
                row = self._rollups[(str(invoice.period), invoice.org)]
                for i, cents in enumerate((1, updated.subtotal_cents, updated.credits_cents, updated.total_cents)):
                    row[i] += rollup_sign * cents

        tx = MemoryTransaction()
        tx.check(HEADER, unchanged)
        tx.write(write)
        if along is not None:
            along(tx)
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            raise invoice_rules.refused_transition(invoice, self.get(invoice.org, invoice.id)) from cancelled
        return updated

    def freeze_lines(self, org: str, invoice_id: str, priced: list[LineItem]) -> None:
        with self._lock:
            stored = {line.id: line for line in self._lines.get((org, invoice_id), [])}
            for line in priced:
                if line.id in stored:  # as the table's update, conditioned on the line's existence
                    stored[line.id] = replace(stored[line.id], free_quantity=line.free_quantity,
                                              amount_cents=line.amount_cents)
            self._lines[(org, invoice_id)] = list(stored.values())

    def add_fixed_line(self, invoice: Invoice, line: LineItem, client_id: str, now: datetime) -> bool:
        key = (invoice.org, invoice.id)
        tx = MemoryTransaction()
        tx.check("the line", lambda: line.id not in {stored.id for stored in self._lines.get(key, [])})
        tx.check(HEADER, lambda: (self._invoices[key].status, self._invoices[key].version)
                 == (InvoiceStatus.DRAFT, invoice.version))
        tx.write(lambda: self._put_lines(key, [line]))
        tx.write(lambda: self._bump(key, now))
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if "the line" in cancelled.failed:
                return False
            raise InvalidTransition("the invoice changed or is no longer a draft; read it and retry",
                                    {"invoice": invoice.id}) from cancelled
        return True

    def open_month(self, period: Period) -> None:
        self.opened_months.add(str(period))

    # -- for other fakes' transaction parts ----------------------------------------------------------
    def is_draft(self, org: str, invoice_id: str) -> bool:
        stored = self._invoices.get((org, invoice_id))
        return stored is not None and stored.status is InvoiceStatus.DRAFT

    def write_lines(self, org: str, invoice_id: str, lines: list[LineItem], delete: tuple[str, ...] = ()) -> None:
        """Put (replace by id) and delete lines, as the table's puts and deletes of line records."""
        with self._lock:
            key = (org, invoice_id)
            kept = [line for line in self._lines.get(key, []) if line.id not in delete]
            self._lines[key] = kept
            self._put_lines(key, lines)

    def _put_lines(self, key: tuple[str, str], lines: list[LineItem]) -> None:
        by_id = {line.id: line for line in self._lines.get(key, [])}
        by_id.update({line.id: line for line in lines})
        self._lines[key] = list(by_id.values())

    def _bump(self, key: tuple[str, str], now: datetime) -> None:
        stored = self._invoices[key]
        self._invoices[key] = replace(stored, version=stored.version + 1, updated_at=now)


def _encode_cursor(invoice_id: str) -> str:
    return base64.urlsafe_b64encode(invoice_id.encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError as error:
        raise ValidationFailed("cursor is not one this API issued") from error
