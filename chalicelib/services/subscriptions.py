"""Subscriptions: record plan changes, and keep open invoices carrying their recurring lines.

`materialize` is the one way recurring lines reach invoices. It computes, from the timeline
alone, what every open draft must carry (its own period's prorated charges, and for periods
already invoiced the difference from what was billed) and writes the difference, guarded by
the timeline's version and the draft's status. It runs after each change, before each
finalize, and hourly for every subscribed org whose lines are not known to be current (so a
change whose writer crashed still lands, and the month-end job opens next month's drafts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import Settings
from ..domain.errors import Conflict, InvoiceClosed, StaleRead, ValidationFailed
from ..domain.invoice import Invoice, InvoiceStatus, invoice_id_for
from ..domain.lines import LineItem
from ..domain.periods import Period
from ..domain.plans import PlanChange, Timeline, materialized_mark, segments
from ..domain.pricebook import PRICE_BOOK, plan_for
from ..domain.proration import charges_for
from ..domain.recurring import recurring_lines
from ..storage.invoice_headers import InvoiceHeaders
from ..storage.subscriptions import SubscriptionRepository
from .ports import InvoiceDrafts, Timelines, TransactionPart
from .routing import InvoiceRouter

MAX_AHEAD = timedelta(days=366)  # how far ahead a change may be scheduled
MAX_ATTEMPTS = 12


def families() -> set[str]:
    return {plan.family for version in PRICE_BOOK for plan in version.plans.values()}


def _periods(first: Period, last: Period) -> Iterator[Period]:
    period = first
    while period <= last:
        yield period
        period = period.next()


@dataclass
class _Drafts:
    """Open invoices and what recurring lines each must carry."""

    invoices: dict[str, Invoice]
    lines: dict[str, list[LineItem]]

    def want(self, invoice: Invoice, lines: list[LineItem]) -> None:
        self.invoices[invoice.id] = invoice
        self.lines.setdefault(invoice.id, []).extend(lines)


class SubscriptionService:
    def __init__(self, settings: Settings, subscriptions: Timelines | None = None,
                 invoices: InvoiceDrafts | None = None) -> None:
        self.settings = settings
        self.subscriptions: Timelines = subscriptions if subscriptions is not None else SubscriptionRepository()
        self.invoices: InvoiceDrafts = invoices if invoices is not None else InvoiceHeaders()

    def timeline(self, org: str) -> Timeline | None:
        return self.subscriptions.get(org)

    def change(self, org: str, change_id: str, family: str | None, plan: str | None, effective_at: datetime,
               now: datetime) -> tuple[Timeline, bool]:
        """Subscribe or change plan (`plan`), or cancel (`plan` None, `family` given), from `effective_at`."""
        effective_at = effective_at.replace(microsecond=0)  # prorated to the second
        if effective_at < now - self.settings.late_usage_window:
            days = self.settings.late_usage_window.days
            raise ValidationFailed(f"effective_at is more than {days} days ago (the late-usage window)")
        if effective_at > now + MAX_AHEAD:
            raise ValidationFailed("effective_at is more than a year ahead")
        if plan is not None:
            family = plan_for(plan, Period.of(effective_at))[0].family
        elif family not in families():
            raise ValidationFailed(f"unknown plan family {family!r}", {"families": sorted(families())})
        assert family is not None
        change = PlanChange(change_id, family, plan, effective_at, now)
        timeline, created = self.subscriptions.record(org, change, now)
        existing = timeline.change(change_id)
        if not created and existing is not None and not existing.same_request(change):
            raise Conflict("this change id was already used for a different change", {"change_id": change_id})
        self.materialize(org, now)
        return timeline, created

    def materialize(self, org: str, now: datetime) -> int | None:
        """Write every open draft's recurring lines; the timeline version they reflect (None: no timeline)."""
        for _ in range(MAX_ATTEMPTS):
            timeline = self.subscriptions.get(org)
            if timeline is None:
                return None
            try:
                drafts = self._drafts(timeline, now)
                for invoice_id, invoice in drafts.invoices.items():
                    self._write(org, invoice, drafts.lines.get(invoice_id, []), timeline.version, now)
            except (StaleRead, InvoiceClosed):
                continue  # the timeline moved or a draft closed meanwhile: compute again from fresh reads
            self.subscriptions.mark_materialized(org, timeline.version, Period.of(now))
            return timeline.version
        raise Conflict(f"the recurring lines of {org} kept changing under us; retry")

    def unchanged_since(self, org: str, version: int | None) -> TransactionPart | None:
        """For another transaction: commit only if no plan change was recorded after `version`."""
        return None if version is None else self.subscriptions.guard(org, version)

    def sweep(self, now: datetime) -> list[str]:
        """Hourly: bring every subscribed org whose lines are not known current up to date."""
        done = []
        for timeline in self.subscriptions.subscribed():
            if timeline.materialized != materialized_mark(timeline.version, Period.of(now)):
                self.materialize(timeline.org, now)
                done.append(timeline.org)
        return done

    def _drafts(self, timeline: Timeline, now: datetime) -> _Drafts:
        held = segments(timeline.changes)
        first = max(Period.of(min(c.effective_at for c in timeline.changes)),
                    Period.of(now - 2 * self.settings.late_usage_window))
        router = InvoiceRouter(self.invoices, now, self.settings.finalize_grace)
        stored = {p: self.invoices.get(timeline.org, invoice_id_for(p)) for p in _periods(first, Period.of(now).next())}
        drafts = _Drafts({}, {})
        for invoice in stored.values():
            if invoice is not None and invoice.status is InvoiceStatus.DRAFT:
                drafts.want(invoice, [])  # a draft no period needs lines on must lose any it carries
        # Every period up to now, and up to the latest open draft (next month's, when this one closed early).
        last = max([Period.of(now), *(invoice.period for invoice in drafts.invoices.values())])
        frozen_lines: dict[str, list[LineItem]] = {}
        for period in _periods(first, last):
            charges = charges_for(period, held, plan_for)
            billed = [line for later in _periods(period, last)
                      for line in self._frozen_lines(stored.get(later), frozen_lines)
                      if line.usage_period == str(period)]
            if not recurring_lines(period, charges, billed, late=True):
                continue  # nothing owed for this period, so no invoice needs creating for it
            target, late = router.target(timeline.org, period)
            drafts.want(target, recurring_lines(period, charges, billed if late else [], late))
        return drafts

    def _frozen_lines(self, invoice: Invoice | None, cache: dict[str, list[LineItem]]) -> list[LineItem]:
        if invoice is None or invoice.status is InvoiceStatus.DRAFT:
            return []
        if invoice.id not in cache:
            cache[invoice.id] = self.subscriptions.recurring_lines(invoice.org, invoice.id)
        return cache[invoice.id]

    def _write(self, org: str, invoice: Invoice, wanted: list[LineItem], version: int, now: datetime) -> None:
        current = {line.id: line for line in self.subscriptions.recurring_lines(org, invoice.id)}
        put = [line for line in wanted if _differs(current.get(line.id), line)]
        delete = sorted(set(current) - {line.id for line in wanted})
        if put or delete:
            self.subscriptions.write_lines(org, invoice.id, version, put, delete, now)


def _differs(stored: LineItem | None, wanted: LineItem) -> bool:
    if stored is None:
        return True
    return (stored.kind, stored.amount_cents, stored.description, stored.quantity) != (
        wanted.kind, wanted.amount_cents, wanted.description, wanted.quantity)
