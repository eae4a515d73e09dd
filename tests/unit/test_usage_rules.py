"""Recording usage on the in-memory stores (milliseconds): each event counted once on its line, repeats and
resends answered duplicate or conflict, unknown orgs and out-of-window times rejected, late usage routed to
the next open invoice, and an invoice closing mid-write re-routes its events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from fakes.invoices import MemoryInvoices
from fakes.org_profiles import MemoryOrgProfiles
from fakes.usage_ledger import MemoryUsageLedger

from chalicelib.config import settings
from chalicelib.domain.invoice import InvoiceStatus, invoice_id_for
from chalicelib.domain.lines import LineKind
from chalicelib.domain.periods import Period
from chalicelib.services.usage import EventResult, Rejection, UsageEvent, UsageStores, record_usage

ORG, OTHER = "acme", "globex"
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
NOV, DEC = Period(2026, 11), Period(2026, 12)


class Stores:
    def __init__(self) -> None:
        self.drafts = MemoryInvoices({ORG: "usd", OTHER: "usd"})
        self.orgs = MemoryOrgProfiles()
        for org in (ORG, OTHER):
            self.orgs.add(org, f"billing@{org}.test", NOW)
        self.ledger = MemoryUsageLedger(self.drafts)

    def results(self, *events: UsageEvent | Rejection) -> list[EventResult]:
        return record_usage(list(events), NOW, settings(), UsageStores(self.drafts, self.orgs, self.ledger))

    def record(self, *events: UsageEvent | Rejection) -> list[tuple[str, str | None]]:
        return [(r.status, r.invoice_id) for r in self.results(*events)]

    def quantity(self, invoice_id: str, kind: LineKind = LineKind.USAGE) -> Decimal:
        return sum((line.quantity for (org, invoice, _), line in self.ledger.lines.items()
                    if org == ORG and invoice == invoice_id and line.target.kind is kind), Decimal(0))


def usage(event_id: str, quantity: str = "1", at: datetime = NOW - timedelta(hours=1), **changes: object) -> UsageEvent:
    event = UsageEvent(event_id, ORG, "web", "egress", Decimal(quantity), "iad", {}, at)
    return replace(event, **changes)  # type: ignore[arg-type]


@pytest.fixture
def stores() -> Stores:
    return Stores()


def test_events_are_counted_on_their_periods_draft(stores):
    assert stores.record(usage("a", "2"), usage("b", "3.5")) == [("accepted", "inv_202612")] * 2
    assert stores.quantity("inv_202612") == Decimal("5.5")


def test_an_event_sent_again_is_a_duplicate_counted_once(stores):
    stores.record(usage("a", "2"))
    assert stores.record(usage("a", "2")) == [("duplicate", "inv_202612")]
    assert stores.quantity("inv_202612") == Decimal(2)


def test_a_resend_with_other_content_is_a_conflict_naming_what_differs_and_changes_nothing(stores):
    stores.record(usage("a", "2"))
    [result] = stores.results(usage("a", "3", app="api"))
    assert result.status == "conflict"
    assert result.error is not None and result.error["details"]["differs"] == ["app", "quantity"]
    assert stores.quantity("inv_202612") == Decimal(2)


def test_a_resend_written_differently_but_meaning_the_same_is_a_duplicate(stores):
    stores.record(usage("a", "2"))
    same_instant = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert stores.record(usage("a", "2.000", at=same_instant)) == [("duplicate", "inv_202612")]


def test_an_id_repeated_in_one_batch_counts_once_and_a_differing_repeat_is_a_conflict(stores):
    assert [s for s, _ in stores.record(usage("a", "2"), usage("a", "2"), usage("a", "9"))] == [
        "accepted", "duplicate", "conflict"]
    assert stores.quantity("inv_202612") == Decimal(2)


def test_the_same_id_in_two_orgs_is_two_events(stores):
    assert [s for s, _ in stores.record(usage("a", "2"), usage("a", "2", org=OTHER))] == ["accepted", "accepted"]


def test_unknown_orgs_and_times_outside_the_window_are_rejected_and_the_rest_counted(stores):
    current = settings()
    answers = stores.record(
        usage("unknown", org="initech"),
        usage("future", at=NOW + current.future_tolerance + timedelta(seconds=1)),
        usage("old", at=NOW - current.late_usage_window - timedelta(seconds=1)),
        Rejection("invalid_event", "quantity must be positive", "bad"),
        usage("good", "4"))
    assert [s for s, _ in answers] == ["rejected"] * 4 + ["accepted"]
    assert stores.quantity("inv_202612") == Decimal(4)
    assert len(stores.ledger.lines) == 1


def test_usage_of_a_finalized_period_is_late_usage_on_the_next_draft(stores):
    stores.drafts.create_draft(ORG, NOV, NOW)
    stores.drafts.set_status(ORG, invoice_id_for(NOV), InvoiceStatus.FINALIZED)
    assert stores.record(usage("late", "6", at=datetime(2026, 11, 28, tzinfo=UTC))) == [("accepted", "inv_202612")]
    assert stores.quantity("inv_202612", LineKind.LATE_USAGE) == Decimal(6)
    assert stores.quantity("inv_202612", LineKind.USAGE) == 0


def test_an_invoice_closing_during_the_write_sends_its_events_to_the_next_draft_as_late_usage(stores):
    stores.drafts.create_draft(ORG, NOV, NOW)

    def finalize_november_first(writes: int) -> None:
        if writes == 0:
            stores.drafts.set_status(ORG, invoice_id_for(NOV), InvoiceStatus.FINALIZED)

    stores.ledger.before_write = finalize_november_first
    assert stores.record(usage("raced", "3", at=datetime(2026, 11, 30, tzinfo=UTC))) == [("accepted", "inv_202612")]
    assert stores.quantity("inv_202612", LineKind.LATE_USAGE) == Decimal(3)
    assert stores.quantity(invoice_id_for(NOV), LineKind.USAGE) == 0
    assert stores.ledger.writes == 2


def test_an_event_whose_invoices_all_close_during_the_write_is_rejected_alone_and_counted_nowhere(stores):
    """Every open invoice closes under the write: the events of other orgs in the batch are still counted
    and answered, and this one is refused with a reason (not the whole batch)."""
    def close_every_draft_of_acme(writes: int) -> None:
        for period in (NOV, DEC, DEC.next()):
            invoice = stores.drafts.get(ORG, invoice_id_for(period))
            if invoice is not None and invoice.status is InvoiceStatus.DRAFT:
                stores.drafts.set_status(ORG, invoice.id, InvoiceStatus.FINALIZED)

    stores.ledger.before_write = close_every_draft_of_acme
    results = stores.results(usage("doomed"), usage("fine", "2", org=OTHER))
    assert [(r.status, r.error["code"] if r.error else None) for r in results] == [
        ("rejected", "conflict"), ("accepted", None)]
    assert [key[0] for key in stores.ledger.lines] == [OTHER]
    assert stores.ledger.dedup_records([(ORG, "doomed")]) == {}
