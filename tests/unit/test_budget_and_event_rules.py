"""Pure rules of budgets, customer events, collection and endpoint addresses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.budgets import AlertKind, Budget, Threshold, crossings, projection_counts
from chalicelib.domain.collection import Collection, CollectionMethod, payment_drift
from chalicelib.domain.endpoints import check_url_shape, public_address
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.invoice import Invoice, InvoiceStatus, PaymentStatus, SyncInfo, SyncState
from chalicelib.domain.notifications import EventType, event_id, retry_delay, sign
from chalicelib.domain.periods import Period
from chalicelib.services.notifications import invoice_changes

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


def budget(*thresholds: Threshold, amount: int = 1000) -> Budget:
    return Budget("acme", amount, "usd", thresholds, NOW)


def test_a_percentage_threshold_crosses_at_its_share_rounded_up():
    assert Threshold(percent=80).cents(1000) == 800
    assert Threshold(percent=33).cents(1001) == 331  # 330.33 rounds up: never fires below 33 %
    found = crossings(budget(Threshold(percent=33), amount=1001), 330, None)
    assert found == []
    (crossed,) = crossings(budget(Threshold(percent=33), amount=1001), 331, None)
    assert (crossed.kind, crossed.threshold_cents, crossed.spend_cents) == (AlertKind.ACTUAL, 331, 331)


def test_actual_and_projected_are_separate_crossings():
    found = crossings(budget(Threshold(percent=50), Threshold(amount_cents=900)), 600, 1200)
    assert {(c.kind, c.threshold.key) for c in found} == {
        (AlertKind.ACTUAL, "pct-50"), (AlertKind.PROJECTED, "pct-50"), (AlertKind.PROJECTED, "amt-900")}
    assert crossings(budget(Threshold(percent=50)), 600, None)[0].kind is AlertKind.ACTUAL


def test_budgets_and_thresholds_refuse_what_cannot_be_evaluated():
    for bad in (lambda: Threshold(), lambda: Threshold(percent=50, amount_cents=5), lambda: Threshold(percent=0),
                lambda: budget(amount=0), lambda: budget(Threshold(percent=80), Threshold(percent=80))):
        with pytest.raises(ValidationFailed):
            bad()
    assert Threshold.from_key("pct-80") == Threshold(percent=80)
    assert Threshold.from_key("amt-500") == Threshold(amount_cents=500)


def test_projection_counts_only_after_the_first_day():
    start = Period.of(NOW).start
    assert not projection_counts(start, start + timedelta(hours=23))
    assert projection_counts(start, start + timedelta(days=1))


def test_collection_terms():
    assert Collection.of(CollectionMethod.SEND_INVOICE, None).days_until_due == 14
    assert Collection.of(CollectionMethod.CHARGE_AUTOMATICALLY, None).days_until_due is None
    with pytest.raises(ValidationFailed):
        Collection.of(CollectionMethod.CHARGE_AUTOMATICALLY, 30)
    with pytest.raises(ValidationFailed):
        Collection.of(CollectionMethod.SEND_INVOICE, 366)


@pytest.mark.parametrize(("stripe_status", "ours", "drifted"), [
    ("open", PaymentStatus.NONE, False), ("open", PaymentStatus.FAILED, False),
    ("open", PaymentStatus.PAID, True), ("paid", PaymentStatus.PAID, False), ("paid", PaymentStatus.FAILED, True),
    ("uncollectible", PaymentStatus.FAILED, True), ("void", PaymentStatus.VOID, False),
    ("void", PaymentStatus.NONE, True),
])
def test_payment_drift(stripe_status, ours, drifted):
    assert (payment_drift(stripe_status, ours) is not None) is drifted


def invoice(**changes: object) -> Invoice:
    base = Invoice("acme", "inv_202611", "ACME-0001", Period(2026, 11), InvoiceStatus.DRAFT, "usd", NOW, NOW)
    return replace(base, **changes)


def test_each_invoice_change_causes_its_events_once():
    draft = invoice()
    final = invoice(status=InvoiceStatus.FINALIZED, finalized_at=NOW, total_cents=500,
                    sync=SyncInfo(state=SyncState.PENDING))
    synced = replace(final, sync=SyncInfo(state=SyncState.SYNCED, synced_at=NOW, hosted_invoice_url="https://x"))
    failed_once = replace(synced, payment_status=PaymentStatus.FAILED, payment_event_id="evt_1", payment_attempts=1)
    failed_twice = replace(failed_once, payment_event_id="evt_2", payment_attempts=2)
    paid = replace(failed_twice, status=InvoiceStatus.PAID, payment_status=PaymentStatus.PAID)

    def kinds(old: Invoice | None, new: Invoice) -> list[str]:
        return [e.type.value for e in invoice_changes(old, new)]

    assert kinds(draft, draft) == []
    assert kinds(draft, final) == ["invoice.finalized"]
    assert kinds(final, final) == []  # a redelivered record of a later change causes nothing new
    assert kinds(final, synced) == ["invoice.synced"]
    assert kinds(synced, failed_once) == ["invoice.payment_failed"]
    assert kinds(failed_once, failed_twice) == ["invoice.payment_failed"]  # each failed attempt
    assert kinds(failed_twice, paid) == ["invoice.payment_succeeded"]
    first, second = invoice_changes(synced, failed_once), invoice_changes(failed_once, failed_twice)
    assert first[0].id != second[0].id
    assert invoice_changes(synced, failed_once)[0].id == first[0].id  # the same cause, the same id
    assert first[0].data["invoice"]["hosted_invoice_url"] == "https://x"


def test_event_ids_signatures_and_the_retry_schedule():
    assert event_id("a", "b") == event_id("a", "b") != event_id("a", "c")
    assert sign("{}", "whsec_x", 1700000000).startswith("t=1700000000,v1=")
    assert sign("{}", "whsec_x", 1700000000) != sign("{}", "whsec_y", 1700000000)
    delays = [retry_delay(n) for n in range(1, 20)]
    schedule = [d for d in delays if d is not None]
    assert timedelta(days=2.5) < sum(schedule, timedelta()) < timedelta(days=3.5)
    assert all(d <= timedelta(hours=12) for d in schedule)  # SQS's longest visibility
    assert delays[len(schedule)] is None
    assert EventType("budget.threshold_crossed") is EventType.BUDGET_THRESHOLD_CROSSED


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.215.14", True), ("2606:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("169.254.169.254", False), ("::1", False), ("::ffff:10.0.0.1", False), ("fd00::1", False),
    ("224.0.0.1", False), ("100.64.0.1", False),
])
def test_public_addresses(address, public):
    assert public_address(address) is public


def test_url_shapes():
    assert check_url_shape("https://hooks.example.com/x", allow_plain_http=False) == ("hooks.example.com", 443)
    assert check_url_shape("http://127.0.0.1:8080/x", allow_plain_http=True) == ("127.0.0.1", 8080)
    for bad in ("http://hooks.example.com/x", "https://", "https://u:p@hooks.example.com/",
                "https://hooks.example.com/#frag", "https://hooks.example.com:99999/"):
        with pytest.raises(ValidationFailed):
            check_url_shape(bad, allow_plain_http=False)
