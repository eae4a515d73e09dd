"""Finalize, void and one-off items (`services/invoices.InvoiceService`) on the in-memory stores, in
milliseconds: usage recorded through the real ingestion path lands on fake invoices; finalize freezes what the
open invoice showed, moves the month totals, spends credit in the same transaction and reads again when a
grant or the plan timeline moved under it; late usage takes what its own period left of the allowance; a void
gives everything back; items are idempotent by the client's id. The fakes are held to the table by
`tests/contract/test_contract_invoices.py` and `test_contract_credits.py`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fakes.credits import MemoryCredits
from fakes.invoices import MemoryInvoices
from fakes.org_profiles import MemoryOrgProfiles
from fakes.subscriptions import MemoryTimelines
from fakes.usage_ledger import MemoryUsageLedger

from chalicelib.config import settings
from chalicelib.domain.credits import CreditReason
from chalicelib.domain.errors import Conflict, InvalidTransition
from chalicelib.domain.invoice import InvoiceStatus, SyncState, invoice_id_for
from chalicelib.domain.lines import LineKind
from chalicelib.domain.periods import Period
from chalicelib.domain.plans import PlanChange
from chalicelib.services.credits import CreditService
from chalicelib.services.invoices import InvoiceService
from chalicelib.services.subscriptions import SubscriptionService
from chalicelib.services.usage import UsageEvent, UsageStores, record_usage

ORG = "acme"
NOV, DEC = Period(2026, 11), Period(2026, 12)
IN_NOV, IN_DEC = datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 12, 3, 9, tzinfo=UTC)
MONTH_END = datetime(2026, 12, 1, 2, tzinfo=UTC)


class Books:
    """One org's invoices, usage, credit and plans, all in memory and sharing one transaction."""

    def __init__(self) -> None:
        self.invoices = MemoryInvoices({ORG: "usd"})
        self.orgs = MemoryOrgProfiles()
        self.orgs.add(ORG, "billing@acme.test", IN_NOV - timedelta(days=30))
        self.ledger = MemoryUsageLedger(self.invoices)
        self.credit = CreditService(MemoryCredits(self.invoices))
        self.timelines = MemoryTimelines(self.invoices)
        self.plans = SubscriptionService(settings(), self.timelines, self.invoices)
        self.service = InvoiceService(self.invoices, self.credit, self.plans)

    def use(self, now: datetime, *events: tuple[str, str, str, datetime]) -> list[str | None]:
        """Record (id, meter, quantity, at) events as of `now`; the invoice each landed on."""
        usage = [UsageEvent(event_id, ORG, "web", meter, Decimal(quantity), "iad" if meter == "egress" else None,
                            {}, at) for event_id, meter, quantity, at in events]
        results = record_usage(usage, now, settings(), UsageStores(self.invoices, self.orgs, self.ledger))
        assert {result.status for result in results} == {"accepted"}, results
        return [result.invoice_id for result in results]

    def line(self, invoice_id: str, kind: LineKind) -> tuple[Decimal, int]:
        """The free quantity and amount of the invoice's one line of `kind`, as stored."""
        [line] = [line for line in self.invoices.lines(ORG, invoice_id) if line.kind is kind]
        return line.free_quantity, line.amount_cents


@pytest.fixture
def books() -> Books:
    return Books()


def test_finalize_freezes_what_the_open_invoice_showed_and_moves_it_into_the_month(books):
    books.use(IN_NOV, ("e1", "egress", "100", IN_NOV), ("c1", "certificate_single", "12", IN_NOV))
    shown = books.service.view(ORG, invoice_id_for(NOV), IN_NOV)
    final = books.service.finalize(ORG, invoice_id_for(NOV), MONTH_END)
    assert (final.status, final.total_cents, final.line_count) == (InvoiceStatus.FINALIZED, 220, 2)
    assert final.total_cents == shown.totals.total_cents
    frozen = {line.meter: (line.free_quantity, line.amount_cents) for line in books.invoices.lines(ORG, final.id)}
    assert frozen == {"egress": (Decimal(0), 200), "certificate_single": (Decimal(10), 20)}
    assert (final.sync.state, final.due_at) == (SyncState.PENDING, MONTH_END + timedelta(days=14))
    assert books.invoices.month_totals(NOV) == (1, 220, 0, 220)
    with pytest.raises(InvalidTransition):
        books.service.finalize(ORG, final.id, MONTH_END)


def test_late_usage_takes_only_what_its_own_period_left_of_the_free_allowance(books):
    books.use(IN_NOV, ("nov", "certificate_single", "6", IN_NOV))
    books.service.finalize(ORG, invoice_id_for(NOV), MONTH_END)
    # After the close: 6 more November certificates (late) and 12 December ones.
    landed = books.use(IN_DEC, ("late", "certificate_single", "6", IN_NOV), ("dec", "certificate_single", "12", IN_DEC))
    assert landed == [invoice_id_for(DEC)] * 2
    upcoming = books.service.upcoming(ORG, "usd", IN_DEC)
    priced = {(line.kind, line.usage_period): (line.free_quantity, line.amount_cents) for line in upcoming.lines}
    assert priced == {(LineKind.LATE_USAGE, "2026-11"): (Decimal(4), 20),  # November left 4 of its 10
                      (LineKind.USAGE, "2026-12"): (Decimal(10), 20)}
    final = books.service.finalize(ORG, invoice_id_for(DEC), datetime(2027, 1, 1, 2, tzinfo=UTC))
    assert final.total_cents == upcoming.totals.total_cents == 40
    assert books.line(final.id, LineKind.LATE_USAGE) == (Decimal(4), 20)


def test_finalize_spends_credit_in_its_own_transaction_and_allocates_again_when_a_grant_moved(books):
    books.credit.grant(ORG, "promo", 1000, CreditReason.PROMOTION, "welcome", None, IN_NOV)
    books.service.add_item(ORG, books.invoices.create_draft(ORG, NOV, IN_NOV).id, "setup", LineKind.ONE_OFF, 2500,
                           "Setup", IN_NOV)
    books.invoices.create_draft(ORG, DEC, IN_NOV)
    books.service.add_item(ORG, invoice_id_for(DEC), "dec", LineKind.ONE_OFF, 300, "Training", IN_NOV)
    credits = books.credit.credits
    spend = credits.applying

    def racing(org, invoice_id, applications, lines, now):  # type: ignore[no-untyped-def]
        """The first allocation is overtaken: December is finalized first, spending 300 of the grant."""
        credits.applying = spend
        books.service.finalize(ORG, invoice_id_for(DEC), now)
        return spend(org, invoice_id, applications, lines, now)

    credits.applying = racing
    final = books.service.finalize(ORG, invoice_id_for(NOV), MONTH_END)
    assert (final.total_cents, final.credits_cents) == (1800, 700)
    assert books.line(final.id, LineKind.CREDIT_APPLIED) == (Decimal(0), -700)
    assert credits.grant(ORG, credits.grants(ORG)[0].id).remaining_cents == 0
    assert books.credit.statement(ORG).balance.applied_cents == 1000


def test_a_void_takes_the_invoice_out_of_its_month_and_gives_back_its_credit(books):
    grant, _ = books.credit.grant(ORG, "promo", 1000, CreditReason.PROMOTION, "welcome", None, IN_NOV)
    books.use(IN_NOV, ("e1", "egress", "100", IN_NOV))
    final = books.service.finalize(ORG, invoice_id_for(NOV), MONTH_END)
    assert (final.total_cents, books.invoices.month_totals(NOV)) == (0, (1, 200, 200, 0))
    voided = books.service.void(ORG, final.id, MONTH_END)
    assert (voided.status, voided.sync.state) == (InvoiceStatus.VOID, SyncState.PENDING)
    assert books.invoices.month_totals(NOV) == (0, 0, 0, 0)
    assert books.credit.credits.grant(ORG, grant.id).remaining_cents == 1000


def test_voiding_a_draft_closes_it_to_usage_and_leaves_the_month_alone(books):
    books.use(IN_NOV, ("e1", "egress", "100", IN_NOV))
    voided = books.service.void(ORG, invoice_id_for(NOV), IN_NOV)
    assert (voided.status, voided.sync.state) == (InvoiceStatus.VOID, SyncState.NOT_REQUIRED)
    assert books.invoices.month_totals(NOV) == (0, 0, 0, 0)
    assert books.use(IN_NOV, ("e2", "egress", "1", IN_NOV)) == [invoice_id_for(DEC)]  # routed past it


def test_the_month_end_job_waits_out_the_grace_and_finishes_what_a_crash_left_finalizing(books):
    books.use(IN_NOV, ("e1", "egress", "100", IN_NOV))
    books.use(IN_DEC, ("e2", "egress", "100", IN_DEC))
    grace = settings().finalize_grace
    november_ends = datetime(2026, 12, 1, tzinfo=UTC)
    assert books.service.finalize_due(november_ends + grace - timedelta(seconds=1), grace) == []
    december = books.invoices.get(ORG, invoice_id_for(DEC))
    books.invoices.transition(december, InvoiceStatus.FINALIZING, IN_DEC)  # a finalize that crashed mid-way
    done = books.service.finalize_due(november_ends + grace, grace)
    assert sorted(invoice.id for invoice in done) == [invoice_id_for(NOV), invoice_id_for(DEC)]
    assert "2026-11" in books.invoices.opened_months


def test_items_are_idempotent_by_the_clients_id_and_a_credit_never_takes_the_total_below_zero(books):
    draft = books.invoices.create_draft(ORG, NOV, IN_NOV)
    item, created = books.service.add_item(ORG, draft.id, "setup", LineKind.ONE_OFF, 1500, "Setup", IN_NOV)
    again, created_again = books.service.add_item(ORG, draft.id, "setup", LineKind.ONE_OFF, 1500, "Setup", IN_NOV)
    assert (created, created_again, again) == (True, False, item)
    with pytest.raises(Conflict):
        books.service.add_item(ORG, draft.id, "setup", LineKind.ONE_OFF, 1600, "Setup", IN_NOV)
    with pytest.raises(Conflict):
        books.service.add_item(ORG, draft.id, "refund", LineKind.CREDIT, 1501, "Refund", IN_NOV)
    books.service.add_item(ORG, draft.id, "refund", LineKind.CREDIT, 1500, "Refund", IN_NOV)
    books.service.finalize(ORG, draft.id, MONTH_END)
    with pytest.raises(InvalidTransition):
        books.service.add_item(ORG, draft.id, "late", LineKind.ONE_OFF, 100, "Late", MONTH_END)
    assert sorted(line.amount_cents for line in books.invoices.lines(ORG, draft.id)) == [-1500, 1500]


def test_invoice_pages_show_an_open_invoice_priced_live(books):
    books.use(IN_NOV, ("e1", "egress", "100", IN_NOV))
    [page], cursor = books.service.page(ORG, 5, None, IN_NOV)
    assert (page.id, page.total_cents, page.line_count, cursor) == (invoice_id_for(NOV), 200, 1, None)


def test_finalize_bills_the_plan_as_it_stands_when_a_change_races_the_close(books):
    """With the real subscription service: a plan change recorded between bringing the recurring lines up to
    date and the close cancels the close, which then writes the changed lines and closes with them."""
    timelines, plans = books.timelines, books.plans
    plans.change(ORG, "start", None, "support-standard", datetime(2026, 11, 1, tzinfo=UTC), IN_NOV)
    mark = timelines.mark_materialized

    def racing(org: str, version: int, period: Period) -> None:
        """A change is recorded just after finalize brought the lines up to date, before it closes; its
        writer dies before writing the lines (so only the close's check can notice it)."""
        mark(org, version, period)
        timelines.mark_materialized = mark  # type: ignore[method-assign]
        stop = PlanChange("stop", "support", None, datetime(2026, 11, 16, tzinfo=UTC), IN_NOV)  # half the month
        timelines.record(ORG, stop, IN_NOV)

    timelines.mark_materialized = racing  # type: ignore[method-assign]
    final = books.service.finalize(ORG, invoice_id_for(NOV), MONTH_END)
    assert final.total_cents == 1450  # $29 a month, held for 15 of 30 days
    assert sum(line.amount_cents for line in books.invoices.lines(ORG, final.id)) == 1450
    assert books.invoices.lines(ORG, invoice_id_for(DEC)) == []  # the cancelled plan bills December nothing
