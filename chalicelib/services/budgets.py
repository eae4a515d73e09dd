"""Budgets and spend alerts, evaluated off the hot path from the table's stream of line changes.

`POST /v1/usage` never looks at a budget. Each stream batch names the invoices whose lines
changed; for the orgs among them that have a budget, the invoice is priced (O(lines)) and every
threshold reached that has no alert yet for the period and kind gets one, stored together with
its `budget.threshold_crossed` event in one conditional transaction.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.budgets import Alert, Budget, Crossing, Threshold, crossings, projection_counts
from ..domain.errors import NotFound, ValidationFailed
from ..domain.invoice import Invoice, InvoiceStatus
from ..domain.notifications import CustomerEvent, EventType, event_id
from ..domain.periods import utc_iso
from ..observability import logger
from ..storage.budgets import AlertRepository, BudgetRepository
from ..storage.invoices import InvoiceRepository
from ..storage.stream_images import Change, invoices_with_lines_written
from .invoices import InvoiceView, build_view
from .ports import Alerts, Budgets, InvoiceReads

_ALERT_KEY = re.compile(r"^ALERT#\d{4}-\d{2}#(actual|projected)#(pct|amt)-\d{1,13}$")


@dataclass(frozen=True)
class BudgetStatus:
    """The budget as the upcoming invoice shows it."""

    budget: Budget
    period: str
    spent_cents: int
    projected_cents: int | None
    alerts: list[Alert]

    @property
    def used_percent(self) -> str:
        return f"{self.spent_cents * 100 / self.budget.amount_cents:.1f}"


class BudgetService:
    def __init__(self, budgets: Budgets | None = None, alerts: Alerts | None = None,
                 invoices: InvoiceReads | None = None) -> None:
        self.budgets: Budgets = budgets if budgets is not None else BudgetRepository()
        self.alerts: Alerts = alerts if alerts is not None else AlertRepository()
        self.invoices: InvoiceReads = invoices if invoices is not None else InvoiceRepository()

    def set_budget(self, org: str, amount_cents: int, currency: str, thresholds: Iterable[Threshold],
                   now: datetime) -> Budget:
        budget = Budget(org, amount_cents, currency, tuple(thresholds), now)
        self.budgets.put(budget)
        return budget

    def require_budget(self, org: str) -> Budget:
        budget = self.budgets.get(org)
        if budget is None:
            raise NotFound(f"{org} has no budget")
        return budget

    def alert_history(self, org: str, limit: int, cursor: str | None) -> tuple[list[Alert], str | None]:
        """Alerts newest period first, a page at a time; the cursor is opaque to clients."""
        after = None
        if cursor:
            try:
                after = base64.urlsafe_b64decode(cursor.encode()).decode()
            except (ValueError, UnicodeError, binascii.Error) as error:
                raise ValidationFailed("cursor is not one this API issued") from error
            if not _ALERT_KEY.match(after):
                raise ValidationFailed("cursor is not one this API issued")
        alerts, last = self.alerts.history(org, limit, after)
        return alerts, base64.urlsafe_b64encode(last.encode()).decode() if last else None

    def budget_status(self, org: str, view: InvoiceView) -> BudgetStatus | None:
        budget = self.budgets.get(org)
        if budget is None:
            return None
        period = str(view.invoice.period)
        return BudgetStatus(budget, period, view.totals.total_cents, view.projected_total_cents,
                            self.alerts.for_period(org, period))

    def evaluate_changes(self, changes: Iterable[Change], now: datetime) -> list[Alert]:
        touched = invoices_with_lines_written(changes)
        budgets = self.budgets.get_many({org for org, _ in touched})
        recorded = []
        for org, invoice_id in sorted(touched):
            if org in budgets:
                recorded += self.evaluate(budgets[org], invoice_id, now)
        return recorded

    def evaluate(self, budget: Budget, invoice_id: str, now: datetime) -> list[Alert]:
        """Record an alert for every threshold the invoice's spend reached and no alert covers yet."""
        invoice = self.invoices.get(budget.org, invoice_id)
        if invoice is None or invoice.status is InvoiceStatus.VOID:
            return []
        period = str(invoice.period)
        project = invoice.period.start <= now < invoice.period.end and projection_counts(invoice.period.start, now)
        view = build_view(invoice, self.invoices.lines(budget.org, invoice_id), now, project=project)
        fired = {(a.kind, a.threshold.key) for a in self.alerts.for_period(budget.org, period)}
        recorded = []
        for crossing in crossings(budget, view.totals.total_cents, view.projected_total_cents):
            if (crossing.kind, crossing.threshold.key) in fired:
                continue
            alert, event = _alert(budget, invoice, crossing, now)
            if self.alerts.record(alert, event):
                recorded.append(alert)
                logger.info("budget threshold crossed", extra={"org": budget.org, "period": period,
                                                               "kind": crossing.kind.value,
                                                               "threshold": crossing.threshold.key})
        return recorded


def _alert(budget: Budget, invoice: Invoice, crossing: Crossing, now: datetime) -> tuple[Alert, CustomerEvent]:
    period = str(invoice.period)
    kind = EventType.BUDGET_THRESHOLD_CROSSED
    identity = event_id(budget.org, period, crossing.kind.value, crossing.threshold.key, kind.value)
    alert = Alert(org=budget.org, period=period, kind=crossing.kind, threshold=crossing.threshold,
                  threshold_cents=crossing.threshold_cents, budget_cents=budget.amount_cents,
                  spend_cents=crossing.spend_cents, currency=invoice.currency, invoice_id=invoice.id,
                  crossed_at=now, event_id=identity)
    return alert, CustomerEvent(identity, kind, budget.org, now, {"alert": alert_json(alert)})


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.event_id, "period": alert.period, "kind": alert.kind.value,
        "threshold": {"percent": alert.threshold.percent, "amount_cents": alert.threshold.amount_cents},
        "threshold_cents": alert.threshold_cents, "budget_cents": alert.budget_cents,
        "spend_cents": alert.spend_cents, "currency": alert.currency, "invoice_id": alert.invoice_id,
        "crossed_at": utc_iso(alert.crossed_at),
    }
