"""Prepaid credits: grant them, show the balance and the ledger, apply them at finalize, restore
them at void, expire what is left after the expiry.

Applied credits are lines on the invoice (kind `credit_applied`, one per grant used, negative),
so the invoice's total is the amount due, and Stripe, which gets every line as an invoice item,
totals to exactly the same amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ..domain.catalog import Category
from ..domain.credits import (
    Application,
    CreditReason,
    Grant,
    Statement,
    allocate,
    applied_line_id,
    carryover_grant_id,
    carryover_line_id,
    grant_id_for,
)
from ..domain.errors import Conflict
from ..domain.invoice import Invoice
from ..domain.lines import LineItem, LineKind, totals
from ..domain.periods import Period, utc_iso
from ..storage.credits import CreditRepository
from .ports import Credits, TransactionPart

REASON_LABELS = {CreditReason.PROMOTION: "Promotional credit", CreditReason.PREPAYMENT: "Prepaid credit",
                 CreditReason.GOODWILL: "Goodwill credit", CreditReason.CARRYOVER: "Carried-over credit"}


@dataclass(frozen=True)
class CreditPreview:
    """What finalizing the invoice now would do with the org's credit."""

    balance_cents: int
    would_apply_cents: int
    balance_after_cents: int
    amount_due_after_cents: int


@dataclass(frozen=True)
class Settlement:
    """The credit lines a finalize adds, and the ledger writes that go in its transaction."""

    lines: list[LineItem]
    write: TransactionPart | None


def _fixed_line(line_id: str, kind: LineKind, product: str, description: str, resource: str, amount_cents: int,
                period: Period) -> LineItem:
    return LineItem(
        id=line_id, kind=kind, category=Category.ADJUSTMENTS, product=product, description=description, app=None,
        region=None, resource=resource, meter=None, quantity=Decimal(1), unit="item", display_unit="items",
        display_divisor=Decimal(1), unit_price=Decimal(amount_cents) / 100, price_per=Decimal(1), price_unit="item",
        tiers=(), free_pool=None, free_allowance=Decimal(0), price_version=None, usage_period=str(period),
        event_count=0, first_usage_at=None, last_usage_at=None, amount_cents=amount_cents,
    )


def applied_line(grant: Grant, amount_cents: int, period: Period) -> LineItem:
    """The grant's id rides in `resource`, so a void knows what to give back from the lines alone."""
    return _fixed_line(applied_line_id(grant.id), LineKind.CREDIT_APPLIED, REASON_LABELS[grant.reason],
                       f"{REASON_LABELS[grant.reason]} applied: {grant.description}", grant.id, -amount_cents, period)


class CreditService:
    def __init__(self, credits: Credits | None = None) -> None:
        self.credits: Credits = credits or CreditRepository()

    def grant(self, org: str, client_id: str, amount_cents: int, reason: CreditReason, description: str,
              expires_at: datetime | None, now: datetime) -> tuple[Grant, bool]:
        """Grant credit, idempotent by the caller's id (the same id for another grant is a conflict)."""
        grant = Grant(grant_id_for(client_id), org, amount_cents, amount_cents, reason, description, now,
                      expires_at.replace(microsecond=0) if expires_at else None, client_id)
        if self.credits.add_grant(grant, now):
            return grant, True
        stored = self.credits.grant(org, grant.id)
        assert stored is not None
        if (stored.amount_cents, stored.reason, stored.description, stored.expires_at) != (
                grant.amount_cents, grant.reason, grant.description, grant.expires_at):
            raise Conflict("this client id was already used for a different grant", {"grant_id": stored.id})
        return stored, False

    def statement(self, org: str) -> Statement:
        return self.credits.statement(org)

    def preview(self, org: str, period: Period, total_cents: int) -> CreditPreview:
        grants = self.credits.grants(org)
        balance = sum(g.remaining_cents for g in grants)
        applying = sum(a.amount_cents for a in allocate(grants, period, total_cents))
        return CreditPreview(balance, applying, balance - applying, total_cents - applying)

    def settle(self, invoice: Invoice, priced: list[LineItem], now: datetime) -> Settlement:
        """At finalize: apply credit up to the total, or carry a negative total over to the balance."""
        total = totals(priced).total_cents
        if total < 0:
            grant = Grant(carryover_grant_id(invoice.id), invoice.org, -total, -total, CreditReason.CARRYOVER,
                          f"negative total of invoice {invoice.number or invoice.id}", now, None, None)
            line = _fixed_line(carryover_line_id(invoice.id), LineKind.CARRYOVER, "Carried to your credit balance",
                               "This invoice's credits exceed its charges: the rest is kept as credit", grant.id,
                               -total, invoice.period)
            return Settlement([line], self.credits.carrying(invoice.id, grant, line, now))
        applications = allocate(self.credits.grants(invoice.org), invoice.period, total)
        if not applications:
            return Settlement([], None)
        lines = [applied_line(a.grant, a.amount_cents, invoice.period) for a in applications]
        return Settlement(lines, self.credits.applying(invoice.org, invoice.id, applications, lines, now))

    def release(self, invoice: Invoice, lines: list[LineItem], now: datetime) -> TransactionPart | None:
        """At void of a finalized invoice: the writes that restore what it used and revoke what it carried."""
        used = [(line.resource, -line.amount_cents) for line in lines
                if line.kind is LineKind.CREDIT_APPLIED and line.resource]
        restores = []
        for grant_id, amount in used:
            grant = self.credits.grant(invoice.org, grant_id)
            assert grant is not None, f"invoice {invoice.id} used grant {grant_id}, which does not exist"
            restores.append(Application(grant, amount))
        revoked = None
        if any(line.kind is LineKind.CARRYOVER for line in lines):
            revoked = self.credits.grant(invoice.org, carryover_grant_id(invoice.id))
            assert revoked is not None
            if revoked.remaining_cents != revoked.amount_cents:
                raise Conflict("a later invoice used the credit this invoice carried over; void that one first",
                               {"grant_id": revoked.id, "remaining_cents": revoked.remaining_cents})
        if not restores and revoked is None:
            return None
        return self.credits.restoring(invoice.org, invoice.id, restores, revoked, now)

    def expire_due(self, now: datetime, grace: timedelta) -> list[str]:
        """Hourly, after the month-end finalize: expire what grants have left once no invoice can use it.

        A grant serves invoices of periods ending by its expiry; those are finalized by the month-end
        job once the grace has passed, so expiring at `expiry + grace` never takes credit from one.
        """
        cutoff = now - grace
        expired = []
        for org, grant_id in self.credits.expiring(utc_iso(cutoff)):
            grant = self.credits.grant(org, grant_id)
            if grant is None or grant.remaining_cents <= 0 or grant.expires_at is None or grant.expires_at > cutoff:
                continue
            if self.credits.expire(grant, now):
                expired.append(f"{org}/{grant_id}")
        return expired
