"""The customer-event rules (`services/notifications`) on the in-memory `Notices` and invoices, in
milliseconds: what an invoice's changes store, once each however often the stream shows them, and the notice
of a sync that waits too long, once per request. The fakes are held to the table by
`tests/contract/test_contract_notices.py` and `test_contract_synced_invoices.py`; which change causes which
event, as a pure rule, is in `test_budget_and_event_rules.py`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fakes.invoices import MemoryInvoices, fixed_line
from fakes.notices import MemoryNotices

from chalicelib.domain.invoice import Invoice, InvoiceStatus, PaymentStatus, SyncInfo, SyncState
from chalicelib.domain.notifications import EventType
from chalicelib.domain.periods import Period
from chalicelib.services.notifications import announce_delayed_syncs, invoice_changes, publish_all

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
NOV = Period(2026, 11)
DELAY = timedelta(minutes=15)


@pytest.fixture
def notices() -> MemoryNotices:
    return MemoryNotices()


def _life() -> list[Invoice]:
    """One invoice's headers as the stream shows them: finalized, synced, two declined attempts, paid."""
    draft = Invoice("acme", "inv_202611", "ACME-0001", NOV, InvoiceStatus.DRAFT, "usd", NOW, NOW)
    final = replace(draft, status=InvoiceStatus.FINALIZED, finalized_at=NOW, total_cents=500,
                    sync=SyncInfo(state=SyncState.PENDING, requested_at=NOW))
    synced = replace(final, sync=SyncInfo(state=SyncState.SYNCED, synced_at=NOW, hosted_invoice_url="https://x"))
    declined = replace(synced, payment_status=PaymentStatus.FAILED, payment_event_id="evt_1", payment_attempts=1)
    again = replace(declined, payment_status=PaymentStatus.ACTION_REQUIRED, payment_event_id="evt_2",
                    payment_attempts=2)
    paid = replace(again, status=InvoiceStatus.PAID, payment_status=PaymentStatus.PAID)
    return [draft, final, synced, declined, again, paid]


def test_an_invoices_life_stores_each_of_its_events_once_however_often_the_stream_shows_it(notices):
    life = _life()
    steps = list(zip(life, life[1:], strict=False))
    assert [publish_all(invoice_changes(old, new), notices) for old, new in steps] == [1, 1, 1, 1, 1]
    # A redelivered batch, a bisected one, a replay of the whole stream: nothing is stored again.
    assert sum(publish_all(invoice_changes(old, new), notices) for old, new in steps * 2) == 0
    stored = sorted((e.type.value, e.data["invoice"]["payment_attempts"]) for e in notices.of_org("acme"))
    assert stored == [("invoice.finalized", 0), ("invoice.payment_failed", 1), ("invoice.payment_failed", 2),
                      ("invoice.payment_succeeded", 2), ("invoice.synced", 0)]


def test_a_header_first_seen_without_its_before_image_tells_what_it_already_is(notices):
    synced = _life()[2]
    assert {e.type for e in invoice_changes(None, synced)} == {EventType.INVOICE_FINALIZED, EventType.INVOICE_SYNCED}
    # The later change of the same header, stored earlier, names the same events: nothing twice.
    publish_all(invoice_changes(_life()[1], synced), notices)
    assert publish_all(invoice_changes(None, synced), notices) == 1  # only the finalized event was new


def test_a_voided_invoice_synced_to_stripe_tells_the_customer_nothing_of_the_sync():
    final = _life()[1]
    void = replace(final, status=InvoiceStatus.VOID, sync=SyncInfo(state=SyncState.SYNCED, synced_at=NOW))
    assert invoice_changes(final, void) == []


def test_a_sync_waiting_past_the_delay_is_announced_once_per_request(notices):
    invoices = MemoryInvoices()
    requested = NOW - timedelta(hours=1)
    invoice = invoices.finalized("acme", NOV, [fixed_line("setup", 500)], requested)
    invoices.finalized("globex", NOV, [fixed_line("setup", 500)], NOW - DELAY + timedelta(seconds=1))

    def announce(at: datetime) -> list[str]:
        return [e.org for e in announce_delayed_syncs(at, DELAY, invoices=invoices, notices=notices)]

    assert announce(NOW) == ["acme"]  # globex has waited a second less than the delay
    assert announce(NOW + timedelta(seconds=1)) == ["acme", "globex"]  # the delay to the second: due
    assert announce(NOW + timedelta(hours=1)) == ["acme", "globex"]  # the next hourly run notices them again...
    (event,) = notices.of_org("acme")  # ...and stores nothing new
    assert event.type is EventType.INVOICE_SYNC_DELAYED
    assert event.data["sync"] == {"state": "pending", "requested_at": "2026-12-01T09:00:00.000000Z",
                                  "pending_seconds": 3600}
    invoices.request_sync("acme", invoice.id, NOW + timedelta(hours=2))  # a new request, waiting in turn
    announce(NOW + timedelta(hours=3))
    assert len(notices.of_org("acme")) == 2
    invoices.record_sync(invoices.get("acme", invoice.id), SyncState.SYNCED, NOW + timedelta(hours=3))
    assert "acme" not in announce(NOW + timedelta(hours=4))
