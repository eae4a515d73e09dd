"""The credit ledger on DynamoDB Local under any sequence of grants, finalizes, voids and expiries: the balance
is always granted - applied - expired + restored, equals what the grants have left and is never negative; a
finalize applies exactly what usable credit could pay of its total; a void gives back exactly what its invoice
used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from acceptance_support import create_org
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_integration_credits import assert_ledger_identity, charge

PERIODS = ["2026-01", "2026-02", "2026-03", "2026-04"]
EXPIRIES = [None, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC),
            datetime(2026, 5, 1, tzinfo=UTC)]
CREATED = datetime(2026, 1, 2, tzinfo=UTC)

operations = st.lists(st.one_of(
    st.tuples(st.just("grant"), st.integers(1, 4000), st.integers(0, len(EXPIRIES) - 1)),
    st.tuples(st.just("finalize"), st.integers(0, len(PERIODS) - 1)),
    st.tuples(st.just("void"), st.integers(0, len(PERIODS) - 1)),
    st.tuples(st.just("expire"), st.integers(0, len(PERIODS))),  # the month (after January) the job runs in
), min_size=1, max_size=10)


@given(st.lists(st.integers(0, 5000), min_size=len(PERIODS), max_size=len(PERIODS)), operations)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
def test_the_ledger_identity_holds_for_any_sequence_of_grants_finalizes_voids_and_expiries(local_aws, charges, ops):
    from chalicelib.domain.credits import CreditReason
    from chalicelib.domain.errors import InvalidTransition
    from chalicelib.domain.periods import Period
    from chalicelib.services.credits import CreditService
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.storage.invoices import InvoiceRepository

    org = create_org("ledger")
    invoices = [charge(org, period, cents, CREATED) if cents else InvoiceRepository().create_draft(
        org, Period.parse(period), CREATED).id for period, cents in zip(PERIODS, charges, strict=True)]
    service, credits = InvoiceService(), CreditService()
    now = datetime(2026, 5, 2, tzinfo=UTC)
    for number, op in enumerate(ops):
        if op[0] == "grant":
            credits.grant(org, f"g{number}", op[1], CreditReason.PROMOTION, "promo", EXPIRIES[op[2]], CREATED)
        elif op[0] == "expire":
            credits.expire_due(datetime(2026, 2 + op[1], 1, 2, tzinfo=UTC), timedelta(hours=1))
        elif op[0] == "finalize":
            before = assert_ledger_identity(org)
            period = Period.parse(PERIODS[op[1]])
            usable = sum(g.remaining_cents for g in before.grants if g.usable_for(period))
            try:
                final = service.finalize(org, invoices[op[1]], now)
            except InvalidTransition:
                continue
            applied = assert_ledger_identity(org).balance.applied_cents - before.balance.applied_cents
            assert applied == min(charges[op[1]], usable)  # up to the total; the rest carries over
            assert final.total_cents == charges[op[1]] - applied and final.credits_cents == applied
        else:
            try:
                service.void(org, invoices[op[1]], now)
            except InvalidTransition:
                continue
        assert_ledger_identity(org)
    found = assert_ledger_identity(org)
    for invoice_id in invoices:
        invoice = InvoiceRepository().get(org, invoice_id)
        assert invoice is not None
        moved = {m: sum(e.amount_cents for e in found.entries if e.invoice_id == invoice_id and e.movement.value == m)
                 for m in ("apply", "restore")}
        if invoice.status.value == "void":
            assert moved["restore"] == moved["apply"]  # exactly what it used
        else:
            assert moved["restore"] == 0 and moved["apply"] == invoice.credits_cents
