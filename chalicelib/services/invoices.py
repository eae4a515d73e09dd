"""Invoice use cases: read (with live pricing for drafts), finalize, void, add items."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from ..config import settings
from ..domain.catalog import Category
from ..domain.errors import Conflict, InvalidTransition, NotFound, StaleRead
from ..domain.invoice import PAYMENT_TERMS, Invoice, InvoiceStatus, SyncState, invoice_id_for
from ..domain.lines import LineItem, LineKind, PoolKey, Totals, free_used, line_id, price_lines, totals
from ..domain.periods import Period
from ..storage.invoices import InvoiceRepository
from .credits import CreditPreview, CreditService
from .ports import Invoices, RecurringLines
from .subscriptions import SubscriptionService

MAX_ATTEMPTS = 12  # reads and retries when a guarded finalize or void finds its inputs moved


@dataclass(frozen=True)
class InvoiceView:
    """An invoice with priced lines and the breakdowns customers read it by."""

    invoice: Invoice
    lines: list[LineItem]
    totals: Totals
    by_app: dict[str, int]
    by_category: dict[str, int]
    by_region: dict[str, int]
    as_of: datetime
    projected_total_cents: int | None = None
    credit_preview: CreditPreview | None = None  # the open invoice: what prepaid credit would do to it


def _breakdown(lines: Iterable[LineItem], key: Callable[[LineItem], str | None]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for line in lines:
        sums[key(line) or "(none)"] += line.amount_cents
    return dict(sorted(sums.items()))


OPEN = (InvoiceStatus.DRAFT, InvoiceStatus.FINALIZING)  # lines priced live; frozen from finalized on


def build_view(invoice: Invoice, lines: list[LineItem], now: datetime, project: bool = False,
               used_before: Mapping[PoolKey, Decimal] | None = None) -> InvoiceView:
    priced = price_lines(lines, used_before) if invoice.status in OPEN else lines
    priced = sorted(priced, key=lambda line: (line.category, line.app or "", line.description, line.id))
    view_totals = totals(priced)
    projected = _projected_total(invoice, lines, now, used_before) if project else None
    return InvoiceView(
        invoice=replace(invoice, line_count=len(priced), subtotal_cents=view_totals.subtotal_cents,
                        credits_cents=view_totals.credits_cents, total_cents=view_totals.total_cents),
        lines=priced,
        totals=view_totals,
        by_app=_breakdown(priced, lambda line: line.app),
        by_category=_breakdown(priced, lambda line: line.category.value),
        by_region=_breakdown(priced, lambda line: line.region),
        as_of=now,
        projected_total_cents=projected,
    )


def _projected_total(invoice: Invoice, lines: list[LineItem], now: datetime,
                     used_before: Mapping[PoolKey, Decimal] | None) -> int:
    """Month-end run rate: this period's usage scaled by elapsed time; fixed lines as they are."""
    period = invoice.period
    elapsed = Decimal(max(int((now - period.start).total_seconds()), 1))
    length = Decimal(int((period.end - period.start).total_seconds()))
    if elapsed >= length:
        return totals(price_lines(lines, used_before)).total_cents
    scale = length / elapsed
    projected = [
        replace(line, quantity=line.quantity * scale) if line.kind is LineKind.USAGE else line for line in lines
    ]
    return max(0, totals(price_lines(projected, used_before)).total_cents)


class InvoiceService:
    def __init__(self, invoices: Invoices | None = None, credits: CreditService | None = None,
                 recurring: RecurringLines | None = None) -> None:
        self.invoices: Invoices = invoices or InvoiceRepository()
        self.credits = credits or CreditService()
        self.recurring: RecurringLines = recurring or SubscriptionService(settings())

    def require(self, org: str, invoice_id: str) -> Invoice:
        invoice = self.invoices.get(org, invoice_id)
        if invoice is None:
            raise NotFound(f"invoice {invoice_id} not found for {org}")
        return invoice

    def page(self, org: str, limit: int, cursor: str | None, now: datetime) -> tuple[list[Invoice], str | None]:
        """A page of the org's invoices, newest first, each with the figures its own view shows: an open
        invoice's header holds no amounts (they are priced live), so those are priced here too."""
        invoices, next_cursor = self.invoices.page(org, limit, cursor)
        return [self._current(invoice, now) for invoice in invoices], next_cursor

    def _current(self, invoice: Invoice, now: datetime) -> Invoice:
        return invoice if invoice.status not in OPEN else self._build(invoice, now).invoice

    def view(self, org: str, invoice_id: str, now: datetime) -> InvoiceView:
        return self._build(self.require(org, invoice_id), now)

    def _build(self, invoice: Invoice, now: datetime, project: bool = False) -> InvoiceView:
        lines = self.invoices.lines(invoice.org, invoice.id)
        used_before = self._allowance_used_before(invoice, lines) if invoice.status in OPEN else None
        return build_view(invoice, lines, now, project, used_before)

    def _priced(self, invoice: Invoice, lines: list[LineItem]) -> list[LineItem]:
        return price_lines(lines, self._allowance_used_before(invoice, lines))

    def _allowance_used_before(self, invoice: Invoice, lines: list[LineItem]) -> dict[PoolKey, Decimal]:
        """What invoices before this one took from the allowance of each period its late lines belong to:
        that period's own invoice, and late lines of it billed on invoices in between. Voided invoices
        bill nothing and take nothing. Reads other invoices only when a late line has a free pool."""
        wanted = {(line.usage_period, line.free_pool) for line in lines
                  if line.kind is LineKind.LATE_USAGE and line.free_pool}
        used: dict[PoolKey, Decimal] = defaultdict(Decimal)
        for usage_period in sorted({Period.parse(period) for period, _ in wanted}):
            period = usage_period
            while period < invoice.period:
                earlier = self.invoices.get(invoice.org, invoice_id_for(period))
                period = period.next()
                if earlier is None or earlier.status is InvoiceStatus.VOID:
                    continue
                of_period = [line for line in self.invoices.lines(invoice.org, earlier.id)
                             if line.usage_period == str(usage_period)]
                # An open earlier invoice can only be the period's own: its lines take from no one before.
                priced = price_lines(of_period) if earlier.status in OPEN else of_period
                for key, quantity in free_used(priced).items():
                    used[key] += quantity
        return {key: quantity for key, quantity in used.items() if key in wanted}

    def upcoming(self, org: str, currency: str, now: datetime) -> InvoiceView:
        """The invoice being built now: the current period's draft (or the next one, if this period was
        closed early and stragglers gather there), else an empty preview of it."""
        period = Period.of(now)
        invoice = self.invoices.get(org, invoice_id_for(period))
        if invoice is not None and invoice.status is not InvoiceStatus.DRAFT:
            period = period.next()
            invoice = self.invoices.get(org, invoice_id_for(period))
        if invoice is None or invoice.status is not InvoiceStatus.DRAFT:
            invoice = Invoice(org=org, id=invoice_id_for(period), number="", period=period,
                              status=InvoiceStatus.DRAFT, currency=currency, created_at=now, updated_at=now)
            view = build_view(invoice, [], now, project=True)
        else:
            view = self._build(invoice, now, project=True)
        return replace(view, credit_preview=self.credits.preview(org, period, view.totals.total_cents))

    def finalize(self, org: str, invoice_id: str, now: datetime) -> Invoice:
        """Close the invoice to usage, freeze every line's amount, then mark it finalized.

        Each step is guarded and idempotent, so a crash anywhere is finished by running
        finalize again (the month-end job resumes invoices left in `finalizing`). Recurring
        lines are brought up to date just before closing, and the close checks the plan
        timeline did not move since; prepaid credit is applied in the same transaction as
        `finalizing -> finalized`, so it is spent exactly when the invoice is final.
        """
        invoice = self.require(org, invoice_id)
        if invoice.status is InvoiceStatus.DRAFT:
            invoice = self._close(invoice, now)
        if invoice.status is not InvoiceStatus.FINALIZING:
            raise InvalidTransition(f"invoice is already {invoice.status.value}", {"status": invoice.status.value})
        priced = self._priced(invoice, self.invoices.lines(org, invoice.id))
        self.invoices.freeze_lines(org, invoice.id, priced)
        for _ in range(MAX_ATTEMPTS):
            settlement = self.credits.settle(invoice, priced, now)  # reads the grants as they are now
            final = priced + settlement.lines
            try:
                return self.invoices.transition(
                    invoice, InvoiceStatus.FINALIZED, now, totals=totals(final), line_count=len(final),
                    due_at=now + PAYMENT_TERMS, sync_state=SyncState.PENDING, rollup_sign=+1,
                    along=settlement.write,
                )
            except StaleRead:
                continue  # another invoice spent a grant we meant to use: allocate again
        raise Conflict(f"could not finalize {invoice_id}: its credit kept changing; retry")

    def _close(self, invoice: Invoice, now: datetime) -> Invoice:
        """draft -> finalizing, once the draft carries the recurring lines of the timeline it checks."""
        for _ in range(MAX_ATTEMPTS):
            version = self.recurring.materialize(invoice.org, now)
            try:
                return self.invoices.transition(invoice, InvoiceStatus.FINALIZING, now,
                                                along=self.recurring.unchanged_since(invoice.org, version))
            except StaleRead:
                invoice = self.require(invoice.org, invoice.id)  # a plan changed meanwhile: write its lines first
                if invoice.status is not InvoiceStatus.DRAFT:
                    return invoice
        raise Conflict(f"could not close {invoice.id}: its plans kept changing; retry")

    def void(self, org: str, invoice_id: str, now: datetime) -> Invoice:
        invoice = self.require(org, invoice_id)
        if invoice.status is InvoiceStatus.DRAFT:
            return self.invoices.transition(invoice, InvoiceStatus.VOID, now)
        # A finalized invoice leaves the month totals, gives back the credit it used, and is voided in Stripe.
        for _ in range(MAX_ATTEMPTS):
            release = self.credits.release(invoice, self.invoices.lines(org, invoice.id), now)
            try:
                return self.invoices.transition(invoice, InvoiceStatus.VOID, now, sync_state=SyncState.PENDING,
                                                rollup_sign=-1, along=release)
            except StaleRead:
                continue
        raise Conflict(f"could not void {invoice_id}: its credit kept changing; retry")

    def add_item(
        self, org: str, invoice_id: str, client_id: str, kind: LineKind, amount_cents: int,
        description: str, now: datetime,
    ) -> tuple[LineItem, bool]:
        """A one-off charge or a credit on a draft, idempotent by the client's id."""
        invoice = self.require(org, invoice_id)
        signed = -amount_cents if kind is LineKind.CREDIT else amount_cents
        item = LineItem(
            id=line_id("fixed", client_id), kind=kind,
            category=Category.ADJUSTMENTS,
            product="Credit" if kind is LineKind.CREDIT else "One-off charge", description=description,
            app=None, region=None, resource=None, meter=None, quantity=Decimal(1), unit="item",
            display_unit="items", display_divisor=Decimal(1), unit_price=Decimal(signed) / 100,
            price_per=Decimal(1), price_unit="item", tiers=(), free_pool=None, free_allowance=Decimal(0),
            price_version=None, usage_period=str(invoice.period), event_count=0, first_usage_at=None,
            last_usage_at=None, amount_cents=signed,
        )
        existing = {line.id: line for line in self.invoices.lines(org, invoice.id)}
        if item.id in existing:
            return self._replayed(existing[item.id], item), False
        if invoice.status is not InvoiceStatus.DRAFT:
            raise InvalidTransition("only a draft invoice takes new items", {"status": invoice.status.value})
        if kind is LineKind.CREDIT:
            current = totals(self._priced(invoice, list(existing.values()))).total_cents
            if current + signed < 0:
                raise Conflict("a credit cannot take the invoice total below zero",
                               {"total_cents": current, "credit_cents": amount_cents})
        if not self.invoices.add_fixed_line(invoice, item, client_id, now):
            stored = {line.id: line for line in self.invoices.lines(org, invoice.id)}[item.id]
            return self._replayed(stored, item), False
        return item, True

    @staticmethod
    def _replayed(stored: LineItem, asked: LineItem) -> LineItem:
        same = (stored.kind, stored.amount_cents, stored.description) == (asked.kind, asked.amount_cents,
                                                                          asked.description)
        if not same:
            raise Conflict("this client id was already used for a different item", {"line_id": stored.id})
        return stored

    def finalize_due(self, now: datetime, grace: timedelta) -> list[Invoice]:
        """Month-end: finalize every draft of a past period once its grace has passed."""
        cutoff = Period.of(now - grace)
        self.invoices.open_month(cutoff.previous())
        due = list(self.invoices.by_state(InvoiceStatus.FINALIZING.value))
        due += list(self.invoices.by_state(InvoiceStatus.DRAFT.value, before_period=cutoff))
        finalized = []
        for invoice in due:
            try:
                finalized.append(self.finalize(invoice.org, invoice.id, now))
            except InvalidTransition:
                continue  # someone else finalized or voided it meanwhile
        return finalized
