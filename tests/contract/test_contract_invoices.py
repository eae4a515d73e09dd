"""One contract, two implementations of `Invoices` and of the parts credit joins to it: the DynamoDB
repositories and the in-memory fakes (`fakes/invoices.py`, `fakes/credits.py`, one `MemoryTransaction`).

What finalize, void and one-off items rely on (chalicelib/services/ports.py): a transition moves an invoice on
only from the status and version it was read with; the month totals move with it; a joined part whose
condition fails cancels the whole transaction (StaleRead) and writes nothing; spending, carrying over and
restoring credit commit with the invoice's change, lines included; frozen prices are stored; a fixed item is
added once, only to a draft as it was read; pages run newest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.credits import MemoryCredits
from fakes.invoices import MemoryInvoices, fixed_line

from chalicelib.domain.credits import CreditReason, carryover_grant_id
from chalicelib.domain.errors import InvalidTransition, StaleRead
from chalicelib.domain.invoice import PAYMENT_TERMS, Invoice, InvoiceStatus, SyncState, invoice_id_for
from chalicelib.domain.lines import LineItem, LineKind, totals
from chalicelib.domain.periods import Period
from chalicelib.services.credits import CreditService

NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)
SEP, OCT, NOV = Period(2026, 9), Period(2026, 10), Period(2026, 11)
MonthTotals = tuple[int, int, int, int]  # invoices, subtotal, credits, total


@dataclass
class Store:
    invoices: Any
    credits: CreditService
    org: str
    month: Callable[[Period], MonthTotals]  # the org's month totals


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def store(request: Any) -> Store:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        invoices = MemoryInvoices({org: "usd"})
        return Store(invoices, CreditService(MemoryCredits(invoices)), org,
                     lambda period: invoices.month_totals(period, org))
    request.getfixturevalue("local_aws")
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.storage.orgs import OrgRepository
    from chalicelib.storage.rollups import monthly_totals

    OrgRepository().upsert(org, "Contract Org", "billing@example.com", "usd", NOW)

    def month(period: Period) -> MonthTotals:
        [row] = monthly_totals(period, period, org).months
        return row.invoice_count, row.subtotal_cents, row.credits_cents, row.total_cents

    return Store(InvoiceRepository(), CreditService(), org, month)


def _draft(store: Store, *cents: int, period: Period = NOV) -> Invoice:
    """The period's draft carrying one fixed line per amount (a negative one is a credit)."""
    draft = store.invoices.create_draft(store.org, period, NOW)
    for n, amount in enumerate(cents):
        assert store.invoices.add_fixed_line(draft, fixed_line(f"item-{n}", amount), f"item-{n}", NOW)
        draft = store.invoices.get(store.org, draft.id)
    return draft


def _finalize(store: Store, invoice: Invoice, extra: tuple[LineItem, ...] | list[LineItem] = (),
              along: Any = None) -> Invoice:
    lines = store.invoices.lines(store.org, invoice.id) + list(extra)
    return store.invoices.transition(invoice, InvoiceStatus.FINALIZED, NOW, totals=totals(lines),
                                     line_count=len(lines), due_at=NOW + PAYMENT_TERMS,
                                     sync_state=SyncState.PENDING, rollup_sign=+1, along=along)


def _closing(store: Store, *cents: int, period: Period = NOV) -> Invoice:
    return store.invoices.transition(_draft(store, *cents, period=period), InvoiceStatus.FINALIZING, NOW)


def _grant(store: Store, client_id: str, cents: int) -> str:
    grant, _ = store.credits.grant(store.org, client_id, cents, CreditReason.PROMOTION, "welcome", None, NOW)
    return grant.id


def _remaining(store: Store, grant_id: str) -> int:
    grant = store.credits.credits.grant(store.org, grant_id)
    assert grant is not None
    return grant.remaining_cents


# -- transitions and the month totals -------------------------------------------------------------------
def test_a_transition_moves_an_invoice_on_only_from_the_status_and_version_it_was_read_with(store):
    draft = _draft(store)
    closing = store.invoices.transition(draft, InvoiceStatus.FINALIZING, NOW)
    assert (closing.status, closing.version) == (InvoiceStatus.FINALIZING, draft.version + 1)
    stored = store.invoices.get(store.org, draft.id)
    assert (stored.status, stored.version, stored.updated_at) == (InvoiceStatus.FINALIZING, closing.version, NOW)
    with pytest.raises(InvalidTransition):
        store.invoices.transition(draft, InvoiceStatus.VOID, NOW)  # read before the change: refused
    assert store.invoices.get(store.org, draft.id).status is InvoiceStatus.FINALIZING


def test_finalize_adds_the_totals_to_the_month_and_a_void_takes_them_back(store):
    closing = _closing(store, 4000, -500)
    final = _finalize(store, closing)
    stored = store.invoices.get(store.org, closing.id)
    assert (stored.subtotal_cents, stored.credits_cents, stored.total_cents, stored.line_count) == (4000, 500, 3500, 2)
    assert (stored.finalized_at, stored.due_at, stored.sync.state) == (NOW, NOW + PAYMENT_TERMS, SyncState.PENDING)
    assert store.month(NOV) == (1, 4000, 500, 3500)
    assert closing.id in [i.id for i in store.invoices.by_state("sync_pending") if i.org == store.org]
    store.invoices.transition(final, InvoiceStatus.VOID, NOW, sync_state=SyncState.PENDING, rollup_sign=-1)
    voided = store.invoices.get(store.org, closing.id)
    assert (voided.status, voided.voided_at) == (InvoiceStatus.VOID, NOW)
    assert store.month(NOV) == (0, 0, 0, 0)


def test_a_transition_that_requests_no_sync_is_refused_once_the_sync_state_moved(store):
    final = _finalize(store, _closing(store, 1200))
    assert store.invoices.record_sync(final, SyncState.SYNCED, NOW)  # the sync finished after our read
    with pytest.raises(StaleRead):
        store.invoices.transition(final, InvoiceStatus.PAID, NOW)
    fresh = store.invoices.get(store.org, final.id)
    assert fresh.status is InvoiceStatus.FINALIZED
    paid = store.invoices.transition(fresh, InvoiceStatus.PAID, NOW)
    assert paid.sync.state is SyncState.SYNCED and store.invoices.get(store.org, final.id).status is InvoiceStatus.PAID


def test_opening_a_month_leaves_its_totals_as_they_are(store):
    _finalize(store, _closing(store, 900))
    store.invoices.open_month(NOV)
    store.invoices.open_month(NOV)
    assert store.month(NOV) == (1, 900, 0, 900)


# -- parts joined to a transition: credit ------------------------------------------------------------------
def test_credit_spent_at_finalize_commits_with_it_lines_and_all(store):
    grant_id = _grant(store, "promo", 1000)
    closing = _closing(store, 2500)
    settlement = store.credits.settle(closing, store.invoices.lines(store.org, closing.id), NOW)
    _finalize(store, closing, settlement.lines, settlement.write)
    assert _remaining(store, grant_id) == 0
    assert store.credits.statement(store.org).balance.applied_cents == 1000
    lines = store.invoices.lines(store.org, closing.id)
    assert [(line.kind, line.amount_cents) for line in lines if line.kind is LineKind.CREDIT_APPLIED] == [
        (LineKind.CREDIT_APPLIED, -1000)]
    assert store.month(NOV) == (1, 2500, 1000, 1500)


def test_a_joined_part_whose_condition_failed_cancels_the_transition_and_writes_nothing(store):
    grant_id = _grant(store, "promo", 1000)
    closing = _closing(store, 2500)
    settlement = store.credits.settle(closing, store.invoices.lines(store.org, closing.id), NOW)
    # Another invoice spends the grant between our read and our commit.
    other = _closing(store, 300, period=OCT)
    spent = store.credits.settle(other, store.invoices.lines(store.org, other.id), NOW)
    _finalize(store, other, spent.lines, spent.write)
    with pytest.raises(StaleRead):
        _finalize(store, closing, settlement.lines, settlement.write)
    assert store.invoices.get(store.org, closing.id).status is InvoiceStatus.FINALIZING
    assert [line.kind for line in store.invoices.lines(store.org, closing.id)] == [LineKind.ONE_OFF]
    assert store.month(NOV) == (0, 0, 0, 0)
    assert _remaining(store, grant_id) == 700


def test_a_negative_total_is_carried_over_with_the_finalize(store):
    closing = _closing(store, 300, -1000)
    settlement = store.credits.settle(closing, store.invoices.lines(store.org, closing.id), NOW)
    _finalize(store, closing, settlement.lines, settlement.write)
    carried = store.credits.credits.grant(store.org, carryover_grant_id(closing.id))
    assert carried is not None and (carried.amount_cents, carried.remaining_cents) == (700, 700)
    assert LineKind.CARRYOVER in [line.kind for line in store.invoices.lines(store.org, closing.id)]
    assert store.credits.statement(store.org).balance.granted_cents == 700


def test_a_void_gives_back_spent_credit_and_takes_back_unspent_carried_credit(store):
    grant_id = _grant(store, "promo", 1000)
    spending = _closing(store, 600)
    used = store.credits.settle(spending, store.invoices.lines(store.org, spending.id), NOW)
    spent = _finalize(store, spending, used.lines, used.write)
    carrying = _closing(store, -400, period=OCT)
    kept = store.credits.settle(carrying, store.invoices.lines(store.org, carrying.id), NOW)
    carried = _finalize(store, carrying, kept.lines, kept.write)
    for invoice in (spent, carried):
        release = store.credits.release(invoice, store.invoices.lines(store.org, invoice.id), NOW)
        store.invoices.transition(invoice, InvoiceStatus.VOID, NOW, sync_state=SyncState.PENDING, rollup_sign=-1,
                                  along=release)
    assert _remaining(store, grant_id) == 1000
    assert _remaining(store, carryover_grant_id(carrying.id)) == 0
    balance = store.credits.statement(store.org).balance
    assert (balance.restored_cents, balance.expired_cents, balance.balance_cents) == (600, 400, 1000)


# -- lines ---------------------------------------------------------------------------------------------------
def test_freezing_stores_each_existing_lines_free_quantity_and_amount(store):
    closing = _closing(store, 1000)
    [line] = store.invoices.lines(store.org, closing.id)
    store.invoices.freeze_lines(store.org, closing.id, [replace(line, amount_cents=800)])
    assert [line.amount_cents for line in store.invoices.lines(store.org, closing.id)] == [800]


def test_a_fixed_item_is_added_once_and_only_to_the_draft_as_it_was_read(store):
    draft = _draft(store)
    line = fixed_line("setup", 1500)
    assert store.invoices.add_fixed_line(draft, line, "setup", NOW)
    bumped = store.invoices.get(store.org, draft.id)
    assert bumped.version == draft.version + 1
    assert not store.invoices.add_fixed_line(bumped, line, "setup", NOW)  # the id is taken
    with pytest.raises(InvalidTransition):
        store.invoices.add_fixed_line(draft, fixed_line("other", 100), "other", NOW)  # read before the bump
    closing = store.invoices.transition(store.invoices.get(store.org, draft.id), InvoiceStatus.FINALIZING, NOW)
    with pytest.raises(InvalidTransition):
        store.invoices.add_fixed_line(closing, fixed_line("late", 100), "late", NOW)
    assert [line.id for line in store.invoices.lines(store.org, draft.id)] == [line.id]


def test_pages_run_newest_first_and_the_state_index_lists_earlier_drafts(store):
    for period in (SEP, OCT, NOV):
        store.invoices.create_draft(store.org, period, NOW - timedelta(days=1))
    first, cursor = store.invoices.page(store.org, 2, None)
    assert [invoice.id for invoice in first] == [invoice_id_for(NOV), invoice_id_for(OCT)] and cursor
    rest, end = store.invoices.page(store.org, 2, cursor)
    assert ([invoice.id for invoice in rest], end) == ([invoice_id_for(SEP)], None)
    earlier = [i.id for i in store.invoices.by_state("draft", before_period=NOV) if i.org == store.org]
    assert earlier == [invoice_id_for(SEP), invoice_id_for(OCT)]
