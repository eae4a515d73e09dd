"""An in-memory `InvoiceDrafts` with the table's guarantees (tests/contract/ holds it to them)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from chalicelib.domain.invoice import Invoice, InvoiceStatus, invoice_id_for, invoice_number, number_prefix
from chalicelib.domain.periods import Period


class MemoryInvoiceDrafts:
    def __init__(self, currencies: dict[str, str]) -> None:
        self._currencies = currencies  # org → billing currency: the orgs that have a profile
        self._invoices: dict[tuple[str, str], Invoice] = {}
        self._sequences: dict[str, int] = {}
        self._lock = threading.Lock()  # one writer at a time, as the table's conditional writes give

    def get(self, org: str, invoice_id: str) -> Invoice | None:
        return self._invoices.get((org, invoice_id))

    def create_draft(self, org: str, period: Period, now: datetime) -> Invoice:
        with self._lock:
            key = (org, invoice_id_for(period))
            if key not in self._invoices:
                sequence = self._sequences.get(org, 0) + 1
                self._sequences[org] = sequence
                self._invoices[key] = Invoice(org, key[1], invoice_number(number_prefix(org), sequence), period,
                                              InvoiceStatus.DRAFT, self._currencies[org], now, now)
            return self._invoices[key]

    def set_status(self, org: str, invoice_id: str, status: InvoiceStatus) -> None:
        """For tests: as if the invoice moved on (finalize, void) elsewhere."""
        with self._lock:
            invoice = self._invoices[(org, invoice_id)]
            self._invoices[(org, invoice_id)] = replace(invoice, status=status, version=invoice.version + 1)
