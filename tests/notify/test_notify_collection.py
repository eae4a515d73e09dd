"""Stripe collects: a synced invoice is charged or sent, Stripe's pages and payment status come back to our
invoice, and the customer hears of each payment; reconciliation flags a payment status that drifted."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from notify_support import create_org, drain, egress, record, register

from devstack.stripe_emulator.webhooks import DELIVERED_EVENT_TYPES, sign


class StripeWebhooks:
    """Stripe's webhook deliveries, through the app's real route: each emulator event once, when asked."""

    def __init__(self, stack: Any, api: Any) -> None:
        self.stack, self.api, self.sent = stack, api, set()

    def forward(self) -> list[str]:
        outcomes = []
        for event in self.stack.stripe.events():
            if event["id"] in self.sent or event["type"] not in DELIVERED_EVENT_TYPES:
                continue
            payload = json.dumps(event)
            signature = sign(payload, self.stack.env["STRIPE_WEBHOOK_SECRET"], int(time.time()))
            response = self.api.http.post("/v1/stripe/webhook", body=payload, headers={
                "Content-Type": "application/json", "Stripe-Signature": signature})
            assert response.status_code == 200, response.body
            self.sent.add(event["id"])
            outcomes.append(response.json_body["outcome"])
        return outcomes


@pytest.fixture
def stripe_webhooks(stack: Any, api: Any) -> StripeWebhooks:
    return StripeWebhooks(stack, api)


def billed_org(prefix: str, method: str, days: int | None = None) -> str:
    from chalicelib.domain.collection import Collection, CollectionMethod

    return create_org(prefix, Collection.of(CollectionMethod(method), days))


def finalized(org: str) -> Any:
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService

    now = datetime.now(UTC)
    record([egress(org, "e1", "150", now), egress(org, "e2", "100", now, app="api")], now)  # $5.00
    return InvoiceService().finalize(org, invoice_id_for(Period.of(now)), now)


def stored(org: str, invoice_id: str) -> Any:
    from chalicelib.storage.invoices import InvoiceRepository

    return InvoiceRepository().get(org, invoice_id)


def stripe_copy(stack: Any, org: str) -> dict[str, Any]:
    (copy,) = [i for i in stack.stripe.state()["invoices"] if i["metadata"].get("org") == org]
    return copy


def customer_events(receiver: Any, invoice_id: str) -> dict[str, dict[str, Any]]:
    return {r.body["type"]: r.body for r in receiver.accepted()
            if r.body.get("data", {}).get("invoice", {}).get("id") == invoice_id}


def test_a_declined_payment_becomes_payment_failed_on_our_invoice_and_an_event_to_the_customer(
        stack, receiver, stripe_webhooks):
    org = billed_org("declined", "charge_automatically")
    _, receiver.secret = register(org, receiver.url)
    stack.stripe.set_payment_outcome("declines", customer=f"{org}@example.com")
    invoice = finalized(org)
    drain(stack)  # stream -> sync queue -> worker: Stripe creates, finalizes with auto_advance, charges
    copy = stripe_copy(stack, org)
    assert (copy["collection_method"], copy["auto_advance"], copy["status"], copy["attempt_count"]) == \
        ("charge_automatically", True, "open", 1)
    assert stripe_webhooks.forward() == ["applied", "applied"]  # invoice.finalized, invoice.payment_failed
    drain(stack)

    ours = stored(org, invoice.id)
    assert (ours.status.value, ours.payment_status.value, ours.payment_attempts) == ("finalized", "failed", 1)
    assert ours.sync.hosted_invoice_url == copy["hosted_invoice_url"] and ours.sync.invoice_pdf == copy["invoice_pdf"]
    told = customer_events(receiver, invoice.id)
    assert set(told) == {"invoice.finalized", "invoice.synced", "invoice.payment_failed"}
    failure = told["invoice.payment_failed"]["data"]["invoice"]
    assert failure["payment_status"] == "failed" and failure["hosted_invoice_url"] == copy["hosted_invoice_url"]
    assert failure["total_cents"] == ours.total_cents == copy["total"] == 500


def test_a_successful_payment_marks_our_invoice_paid_and_tells_the_customer(stack, receiver, stripe_webhooks):
    org = billed_org("charged", "charge_automatically")
    _, receiver.secret = register(org, receiver.url)
    stack.stripe.set_payment_outcome("succeeds", customer=f"{org}@example.com")
    invoice = finalized(org)
    drain(stack)
    assert stripe_copy(stack, org)["status"] == "paid"
    stripe_webhooks.forward()
    drain(stack)

    ours = stored(org, invoice.id)
    assert (ours.status.value, ours.payment_status.value, ours.sync.state.value) == ("paid", "paid", "synced")
    told = customer_events(receiver, invoice.id)
    assert set(told) == {"invoice.finalized", "invoice.synced", "invoice.payment_succeeded"}
    assert told["invoice.payment_succeeded"]["data"]["invoice"]["status"] == "paid"


def test_an_action_required_payment_is_reported_to_the_customer_as_a_failed_attempt(stack, receiver,
                                                                                    stripe_webhooks):
    org = billed_org("confirm", "charge_automatically")
    _, receiver.secret = register(org, receiver.url, ("invoice.payment_failed",))
    stack.stripe.set_payment_outcome("requires_action", customer=f"{org}@example.com")
    invoice = finalized(org)
    drain(stack)
    stripe_webhooks.forward()
    drain(stack)
    assert stored(org, invoice.id).payment_status.value == "action_required"
    told = customer_events(receiver, invoice.id)
    assert set(told) == {"invoice.payment_failed"}  # the endpoint subscribed to this type only
    assert told["invoice.payment_failed"]["data"]["invoice"]["payment_status"] == "action_required"


def test_send_invoice_orgs_get_an_emailed_invoice_with_their_terms(stack, stripe_webhooks):
    org = billed_org("emailed", "send_invoice", 30)
    invoice = finalized(org)
    drain(stack)
    copy = stripe_copy(stack, org)
    assert (copy["collection_method"], copy["days_until_due"], copy["status"], copy["attempt_count"]) == \
        ("send_invoice", 30, "open", 0)
    sent = [e for e in stack.stripe.events("invoice.sent") if e["data"]["object"]["id"] == copy["id"]]
    assert len(sent) == 1
    stripe_webhooks.forward()
    ours = stored(org, invoice.id)
    assert ours.payment_status.value == "none" and ours.sync.hosted_invoice_url == copy["hosted_invoice_url"]


def test_a_payment_webhook_that_overtakes_the_sync_does_not_leave_it_pending(stack, stripe_webhooks):
    """Stripe charges at finalize; its `invoice.paid` can move our invoice to paid before the worker records
    the sync. The sync still records itself: no invoice waits for the reconciler."""
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.services.sync_worker import default_gateway

    org = billed_org("overtaken", "charge_automatically")
    invoice = finalized(org)

    def webhook_first(step: str) -> None:
        if step == "before_mark_synced":
            assert "applied" in stripe_webhooks.forward()

    result = InvoiceSync(default_gateway(), checkpoint=webhook_first).sync(org, invoice.id, datetime.now(UTC))
    assert result is SyncResult.SYNCED
    ours = stored(org, invoice.id)
    assert (ours.status.value, ours.payment_status.value, ours.sync.state.value) == ("paid", "paid", "synced")
    drain(stack)  # the stream's sync message finds it synced


def test_reconciliation_flags_a_payment_status_that_drifted_from_stripe(stack, stripe_webhooks):
    from chalicelib.domain.periods import Period
    from chalicelib.services.reconcile import check_period
    from chalicelib.services.sync_worker import default_gateway

    org = billed_org("drift", "charge_automatically")
    invoice = finalized(org)
    drain(stack)  # Stripe charged it; its webhooks are lost (never forwarded)
    now = datetime.now(UTC)
    report = check_period(Period.of(now), default_gateway(), now)
    name = f"{org}/{invoice.id}"
    drifted = [entry for entry in report.payment_drift if entry.startswith(name)]
    assert drifted == [f"{name}: Stripe invoice is paid; our payment status is none"]
    assert name in report.matched  # the totals agree: only the payment status differs

    stripe_webhooks.forward()  # the events arrive after all (or on-call resends them from Stripe)
    report = check_period(Period.of(now), default_gateway(), now)
    assert not [entry for entry in report.payment_drift if entry.startswith(name)]


def test_collection_is_set_on_the_org_profile(stack, api):
    org = create_org("profile")
    admin = {"Authorization": f"Bearer {stack.tokens['admin']}", "Content-Type": "application/json"}
    base = {"name": "Acme", "email": "billing@acme.test"}
    for bad in [{"collection_method": "charge_automatically", "days_until_due": 30},
                {"collection_method": "cash"}, {"days_until_due": 30},
                {"collection_method": "send_invoice", "days_until_due": 0}]:
        response = api.http.put(f"/v1/orgs/{org}", headers=admin, body=json.dumps({**base, **bad}))
        assert response.status_code == 422, (bad, response.body)
    assert api.http.get(f"/v1/orgs/{org}", headers=admin).json_body["collection_method"] == "send_invoice"
    response = api.http.put(f"/v1/orgs/{org}", headers=admin, body=json.dumps(
        {**base, "collection_method": "send_invoice", "days_until_due": 30}))
    assert response.status_code == 200, response.body
    assert (response.json_body["collection_method"], response.json_body["days_until_due"]) == ("send_invoice", 30)
    response = api.http.put(f"/v1/orgs/{org}", headers=admin, body=json.dumps(base))  # unchanged when omitted
    assert response.json_body["days_until_due"] == 30
    response = api.http.put(f"/v1/orgs/{org}", headers=admin, body=json.dumps(
        {**base, "collection_method": "charge_automatically"}))
    assert (response.json_body["collection_method"], response.json_body["days_until_due"]) == \
        ("charge_automatically", None)


def test_a_sync_pending_past_the_threshold_tells_the_customer_once(stack, receiver):
    from datetime import timedelta

    from chalicelib.services.notifications import announce_delayed_syncs
    from chalicelib.storage.notices import NoticeRepository

    org = billed_org("delayed", "send_invoice")
    _, receiver.secret = register(org, receiver.url, ("invoice.sync_delayed",))
    invoice = finalized(org)  # its sync is pending: nothing polls the queue yet
    requested = stored(org, invoice.id).sync.requested_at
    assert not [e for e in announce_delayed_syncs(requested + timedelta(minutes=14), timedelta(minutes=15))
                if e.org == org]
    later = requested + timedelta(minutes=20)
    (event,) = [e for e in announce_delayed_syncs(later, timedelta(minutes=15)) if e.org == org]
    announce_delayed_syncs(later + timedelta(hours=1), timedelta(minutes=15))  # the next hourly run
    stored_events = [e for e in NoticeRepository().of_org(org) if e.type.value == "invoice.sync_delayed"]
    assert [e.id for e in stored_events] == [event.id]  # one per sync request, however often it is noticed
    assert event.data["sync"]["pending_seconds"] == 20 * 60
    drain(stack)
    assert {r.type for r in receiver.accepted()} == {"invoice.sync_delayed"}
