"""The credit ledger on the in-memory ports under any sequence of grants, finalizes, voids and expiries: the
balance is always granted - applied - expired + restored, equals what the grants have left and is never
negative; a finalize applies exactly what usable credit could pay of its total; a void gives back exactly what
its invoice used. (The fakes are held to the table by tests/contract/test_contract_credits.py and
test_contract_invoices.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fakes.credits import MemoryCredits
from fakes.invoices import MemoryInvoices
from fakes.subscriptions import MemoryTimelines
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ledger import assert_ledger_identity_of

from chalicelib.config import settings as app_settings
from chalicelib.domain.credits import CreditReason, Statement
from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.lines import LineKind
from chalicelib.domain.periods import Period
from chalicelib.services.credits import CreditService
from chalicelib.services.invoices import InvoiceService
from chalicelib.services.subscriptions import SubscriptionService

ORG = "acme"
PERIODS = ["2026-01", "2026-02", "2026-03", "2026-04"]
EXPIRIES = [None, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC),
            datetime(2026, 5, 1, tzinfo=UTC)]
CREATED = datetime(2026, 1, 2, tzinfo=UTC)
NOW = datetime(2026, 5, 2, tzinfo=UTC)

operations = st.lists(st.one_of(
    st.tuples(st.just("grant"), st.integers(1, 4000), st.integers(0, len(EXPIRIES) - 1)),
    st.tuples(st.just("finalize"), st.integers(0, len(PERIODS) - 1)),
    st.tuples(st.just("void"), st.integers(0, len(PERIODS) - 1)),
    st.tuples(st.just("expire"), st.integers(0, len(PERIODS))),  # the month (after January) the job runs in
), min_size=1, max_size=10)


def assert_ledger_identity(credits: CreditService) -> Statement:
    return assert_ledger_identity_of(credits.statement(ORG))


@given(st.lists(st.integers(0, 5000), min_size=len(PERIODS), max_size=len(PERIODS)), operations)
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
def test_the_ledger_identity_holds_for_any_sequence_of_grants_finalizes_voids_and_expiries(charges, ops):
    invoices = MemoryInvoices({ORG: "usd"})
    credits = CreditService(MemoryCredits(invoices))
    service = InvoiceService(invoices, credits,
                             SubscriptionService(app_settings(), MemoryTimelines(invoices), invoices))
    ids = []
    for period, cents in zip(PERIODS, charges, strict=True):
        draft = invoices.create_draft(ORG, Period.parse(period), CREATED)
        if cents:
            service.add_item(ORG, draft.id, f"fee-{period}", LineKind.ONE_OFF, cents, "Platform fee", CREATED)
        ids.append(draft.id)

    for number, op in enumerate(ops):
        if op[0] == "grant":
            credits.grant(ORG, f"g{number}", op[1], CreditReason.PROMOTION, "promo", EXPIRIES[op[2]], CREATED)
        elif op[0] == "expire":
            credits.expire_due(datetime(2026, 2 + op[1], 1, 2, tzinfo=UTC), timedelta(hours=1))
        elif op[0] == "finalize":
            before = assert_ledger_identity(credits)
            period = Period.parse(PERIODS[op[1]])
            usable = sum(g.remaining_cents for g in before.grants if g.usable_for(period))
            try:
                final = service.finalize(ORG, ids[op[1]], NOW)
            except InvalidTransition:
                continue
            applied = assert_ledger_identity(credits).balance.applied_cents - before.balance.applied_cents
            assert applied == min(charges[op[1]], usable)  # up to the total; the rest carries over
            assert final.total_cents == charges[op[1]] - applied and final.credits_cents == applied
        else:
            try:
                service.void(ORG, ids[op[1]], NOW)
            except InvalidTransition:
                continue
        assert_ledger_identity(credits)

    found = assert_ledger_identity(credits)
    for invoice_id in ids:
        invoice = invoices.get(ORG, invoice_id)
        assert invoice is not None
        moved = {m: sum(e.amount_cents for e in found.entries if e.invoice_id == invoice_id and e.movement.value == m)
                 for m in ("apply", "restore")}
        if invoice.status.value == "void":
            assert moved["restore"] == moved["apply"]  # exactly what it used
        else:
            assert moved["restore"] == 0 and moved["apply"] == invoice.credits_cents
