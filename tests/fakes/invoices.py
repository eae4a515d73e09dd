"""An in-memory `Invoices`: what finalize, void and one-off items need of invoices, with the table's
guarantees (tests/contract/test_contract_invoices.py holds it to them).

It is the synced-invoices fake grown by the writes the invoice service makes: a period's draft numbered from
the org's sequence, a guarded status change that commits the month totals and any joined parts (credit, the
plan timeline's check) in one `MemoryTransaction`, frozen prices, and fixed items only on an unchanged draft.
Other fakes that write lines in a transaction (credit lines, recurring lines) write them here.
"""

from __future__ import annotations

import base64
import copy
from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from chalicelib.domain.errors import InvalidTransition, StaleRead, ValidationFailed
from chalicelib.domain.invoice import (
    Invoice,
    InvoiceStatus,
    SyncState,
    check_transition,
    invoice_id_for,
    invoice_number,
    number_prefix,
)
from chalicelib.domain.lines import LineItem, Totals
from chalicelib.domain.periods import Period
from chalicelib.services.ports import TransactionPart

from .synced_invoices import MemorySyncedInvoices
from .transaction import MemoryTransaction, TransactionCancelled

HEADER = "the invoice"  # the name of the header's condition in a cancelled transaction


class MemoryInvoices(MemorySyncedInvoices):
    def __init__(self, currencies: dict[str, str] | None = None) -> None:
        super().__init__()
        self._currencies = currencies or {}  # org → billing currency: the orgs that have a profile
        self._sequences: dict[str, int] = {}
        # The month totals, as the rollup items: (period, org) → [invoices, subtotal, credits, total].
        self._rollups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self.opened_months: set[str] = set()

    # -- reads -------------------------------------------------------------------------------------
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
            current = self.get(invoice.org, invoice.id)
            if current is None or (current.status, current.version) != (invoice.status, invoice.version):
                raise InvalidTransition(
                    f"invoice {invoice.id} changed while being updated; read it again",
                    {"expected_status": invoice.status.value, "expected_version": invoice.version},
                ) from cancelled
            raise StaleRead("something this change depends on changed meanwhile; read again") from cancelled
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
