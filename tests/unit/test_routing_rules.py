"""Where an event goes, on the in-memory invoices (milliseconds): its period's draft while that is
open, else the next open one as late usage; a closed period gets no new invoice."""

from datetime import UTC, datetime, timedelta

import pytest
from fakes.invoices import MemoryInvoices

from chalicelib.domain.errors import Conflict
from chalicelib.domain.invoice import InvoiceStatus, invoice_id_for
from chalicelib.domain.periods import Period
from chalicelib.services.routing import InvoiceRouter

ORG = "acme"
NOV, DEC = Period(2026, 11), Period(2026, 12)
GRACE = timedelta(hours=72)


def router_at(now: datetime, drafts: MemoryInvoices) -> InvoiceRouter:
    return InvoiceRouter(drafts, now, GRACE)


def test_usage_goes_to_its_periods_draft_created_on_first_use():
    drafts = MemoryInvoices({ORG: "usd"})
    invoice, late = router_at(datetime(2026, 11, 20, tzinfo=UTC), drafts).target(ORG, NOV)
    assert (invoice.id, invoice.status, late) == (invoice_id_for(NOV), InvoiceStatus.DRAFT, False)


def test_usage_of_a_finalized_period_is_late_usage_on_the_next_draft():
    drafts = MemoryInvoices({ORG: "usd"})
    drafts.create_draft(ORG, NOV, datetime(2026, 11, 1, tzinfo=UTC))
    drafts.set_status(ORG, invoice_id_for(NOV), InvoiceStatus.FINALIZED)
    invoice, late = router_at(datetime(2026, 12, 2, tzinfo=UTC), drafts).target(ORG, NOV)
    assert (invoice.id, late) == (invoice_id_for(DEC), True)


def test_a_period_past_its_grace_gets_no_invoice_of_its_own():
    drafts = MemoryInvoices({ORG: "usd"})
    after_grace = NOV.end + GRACE + timedelta(seconds=1)
    invoice, late = router_at(after_grace, drafts).target(ORG, NOV)
    assert (invoice.id, late) == (invoice_id_for(DEC), True)
    assert drafts.get(ORG, invoice_id_for(NOV)) is None


def test_a_router_reads_an_invoice_again_only_after_being_told_it_closed():
    drafts = MemoryInvoices({ORG: "usd"})
    router = router_at(datetime(2026, 11, 20, tzinfo=UTC), drafts)
    assert router.target(ORG, NOV)[0].id == invoice_id_for(NOV)
    drafts.set_status(ORG, invoice_id_for(NOV), InvoiceStatus.FINALIZED)
    assert router.target(ORG, NOV)[0].id == invoice_id_for(NOV)  # cached: one read per request
    router.forget(ORG, invoice_id_for(NOV))
    assert router.target(ORG, NOV) == (drafts.get(ORG, invoice_id_for(DEC)), True)


def test_no_open_invoice_up_to_next_month_is_a_conflict():
    drafts = MemoryInvoices({ORG: "usd"})
    now = datetime(2026, 11, 20, tzinfo=UTC)
    for period in (NOV, DEC):
        drafts.create_draft(ORG, period, now)
        drafts.set_status(ORG, invoice_id_for(period), InvoiceStatus.FINALIZED)
    with pytest.raises(Conflict):
        router_at(now, drafts).target(ORG, NOV)
