"""Which invoice an event goes to: its period's draft, else the org's next open invoice.

An invoice for a period may be created until the period's end plus the finalize grace;
after that the period is closed even if it never had an invoice, and its usage is billed
as late usage on the next open invoice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..domain.errors import Conflict
from ..domain.invoice import Invoice, InvoiceStatus, invoice_id_for
from ..domain.periods import Period
from .ports import InvoiceDrafts


class InvoiceRouter:
    def __init__(self, invoices: InvoiceDrafts, now: datetime, grace: timedelta) -> None:
        self._invoices = invoices
        self._now = now
        self._grace = grace
        self._cache: dict[tuple[str, Period], Invoice | None] = {}

    def target(self, org: str, usage_period: Period) -> tuple[Invoice, bool]:
        """The open invoice for usage of `usage_period`, and whether it is late usage there."""
        period = usage_period
        last = Period.of(self._now).next()
        while period <= last:
            invoice = self._open(org, period)
            if invoice is not None and invoice.status is InvoiceStatus.DRAFT:
                return invoice, period != usage_period
            period = period.next()
        raise Conflict(f"no open invoice for {org} after {usage_period}")

    def forget(self, org: str, invoice_id: str) -> None:
        """The invoice closed under us: read it again next time."""
        for key in [k for k, v in self._cache.items() if k[0] == org and v is not None and v.id == invoice_id]:
            del self._cache[key]

    def _open(self, org: str, period: Period) -> Invoice | None:
        key = (org, period)
        if key not in self._cache:
            invoice = self._invoices.get(org, invoice_id_for(period))
            if invoice is None and self._now < period.end + self._grace:
                invoice = self._invoices.create_draft(org, period, self._now)
            self._cache[key] = invoice
        return self._cache[key]
