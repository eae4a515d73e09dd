"""One contract, two implementations: the DynamoDB usage write path and the in-memory fake.

What recording usage relies on (chalicelib/services/ports.py, `UsageLedger`): an event is claimed and
counted on its line together, once; a claimed event written again changes nothing; an event whose invoice is
no longer a draft is neither claimed nor counted; and the dedup record says where an event was counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fakes.invoices import MemoryInvoices
from fakes.usage_ledger import MemoryUsageLedger

from chalicelib.domain.invoice import Invoice, InvoiceStatus
from chalicelib.domain.lines import describe, usage_kind, usage_line_id
from chalicelib.domain.periods import Period
from chalicelib.domain.placement import CountedEvent, LineTarget, Placement, WriteOutcome
from chalicelib.domain.pricebook import quote

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
NOV = Period(2026, 11)


@dataclass
class Ledger:
    """A ledger, its org's November draft, and the implementation's own ways to read a line and close the draft."""

    ledger: Any
    org: str
    draft: Invoice
    quantity: Callable[[str], Decimal]  # line id → its quantity (0 when never written)
    close: Callable[[], None]

    def placement(self, event_id: str, quantity: str, app: str = "web", digest: str = "d1") -> Placement:
        event_quote = quote("egress", "iad", {}, NOV)
        target = LineTarget(self.org, self.draft.id, usage_line_id(event_quote, app, "iad", str(NOV), False),
                            usage_kind(event_quote, False), event_quote, describe(event_quote, app, "iad", None),
                            app, "iad", str(NOV))
        return Placement(self.org, event_id, Decimal(quantity), NOW - timedelta(hours=1), target,
                         int((NOW + timedelta(days=40)).timestamp()), digest)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def ledger(request: Any) -> Ledger:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        drafts = MemoryInvoices({org: "usd"})
        draft = drafts.create_draft(org, NOV, NOW)
        memory = MemoryUsageLedger(drafts)
        return Ledger(memory, org, draft, lambda line_id: memory.quantity(org, draft.id, line_id),
                      lambda: drafts.set_status(org, draft.id, InvoiceStatus.FINALIZING))
    request.getfixturevalue("local_aws")
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.storage.orgs import OrgRepository
    from chalicelib.storage.usage_writer import UsageLedgerTable

    OrgRepository().upsert(org, "Contract Org", "billing@example.com", "usd", NOW)
    invoices = InvoiceRepository()
    draft = invoices.create_draft(org, NOV, NOW)

    def quantity(line_id: str) -> Decimal:
        return next((line.quantity for line in invoices.lines(org, draft.id) if line.id == line_id), Decimal(0))

    def close() -> None:
        invoices.transition(draft, InvoiceStatus.FINALIZING, NOW)

    return Ledger(UsageLedgerTable(), org, draft, quantity, close)


def test_events_are_counted_on_their_lines_and_their_dedup_records_say_where(ledger):
    a1, a2 = ledger.placement("a1", "2.5"), ledger.placement("a2", "4", digest="d2")
    b1 = ledger.placement("b1", "7", app="api")

    outcomes = ledger.ledger.write([a1, a2, b1], NOW)

    assert outcomes == {(ledger.org, e): WriteOutcome.ACCEPTED for e in ("a1", "a2", "b1")}
    assert ledger.quantity(a1.target.line_id) == Decimal("6.5")
    assert ledger.quantity(b1.target.line_id) == Decimal(7)
    assert ledger.ledger.dedup_records([(ledger.org, "a2"), (ledger.org, "b1"), (ledger.org, "never")]) == {
        (ledger.org, "a2"): CountedEvent(ledger.draft.id, a1.target.line_id, "d2"),
        (ledger.org, "b1"): CountedEvent(ledger.draft.id, b1.target.line_id, "d1"),
    }


def test_a_claimed_event_written_again_is_a_duplicate_and_changes_nothing(ledger):
    first = ledger.placement("e1", "3")
    assert ledger.ledger.write([first], NOW) == {(ledger.org, "e1"): WriteOutcome.ACCEPTED}

    again = ledger.ledger.write([ledger.placement("e1", "100", digest="other"), ledger.placement("e2", "1")], NOW)

    assert again == {(ledger.org, "e1"): WriteOutcome.DUPLICATE, (ledger.org, "e2"): WriteOutcome.ACCEPTED}
    assert ledger.quantity(first.target.line_id) == Decimal(4)
    assert ledger.ledger.dedup_records([(ledger.org, "e1")])[(ledger.org, "e1")].digest == "d1"


def test_an_event_whose_invoice_is_no_longer_a_draft_is_neither_claimed_nor_counted(ledger):
    ledger.ledger.write([ledger.placement("before", "2")], NOW)
    ledger.close()

    outcomes = ledger.ledger.write([ledger.placement("after", "5")], NOW)

    assert outcomes == {(ledger.org, "after"): WriteOutcome.INVOICE_CLOSED}
    assert ledger.quantity(ledger.placement("after", "5").target.line_id) == Decimal(2)
    assert ledger.ledger.dedup_records([(ledger.org, "after")]) == {}


def test_racing_writers_of_one_event_count_it_once(ledger):
    # One write first, in this thread: the table's client is then made before the threads share it.
    assert ledger.ledger.write([ledger.placement("first", "1", app="api")], NOW)[(ledger.org, "first")] == "accepted"
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: ledger.ledger.write([ledger.placement("raced", "9")], NOW), range(6)))

    outcomes = [answer[(ledger.org, "raced")] for answer in answers]
    assert outcomes.count(WriteOutcome.ACCEPTED) == 1
    assert set(outcomes) == {WriteOutcome.ACCEPTED, WriteOutcome.DUPLICATE}
    assert ledger.quantity(ledger.placement("raced", "9").target.line_id) == Decimal(9)
