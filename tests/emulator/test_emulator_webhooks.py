"""Signed invoice.* webhooks that stripe.Webhook.construct_event accepts."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
import stripe
from emulator_support import lines
from support.waiting import wait_for

pytestmark = pytest.mark.slow  # a webhook receiver and the emulator, both HTTP servers

SECRET = "whsec_test_secret_for_emulator"


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str]]

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append((body, self.headers["Stripe-Signature"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    received: list[tuple[str, str]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/stripe/webhook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hooked(receiver, emulator):
    url, received = receiver
    emulator.configure_webhooks(url, SECRET)
    client = stripe.StripeClient("sk_test_hooks", base_addresses={"api": emulator.base_url})
    return emulator, client, received


def _event_types(received) -> list[str]:
    return [json.loads(body)["type"] for body, _ in received]


def _finalized(client, line_count: int):
    """A new customer's invoice with `line_count` lines, finalized (which sends invoice.finalized)."""
    invoice = client.v1.invoices.create(params={"customer": client.v1.customers.create().id})
    client.v1.invoices.add_lines(invoice.id, params={"lines": lines(line_count)})
    return client.v1.invoices.finalize_invoice(invoice.id)


def test_finalize_and_pay_send_signed_events(hooked):
    emu, client, received = hooked
    invoice = _finalized(client, 2)
    client.v1.invoices.pay(invoice.id)
    wait_for(lambda: len(received) == 2)
    assert _event_types(received) == ["invoice.finalized", "invoice.paid"]

    payload, signature = received[0]
    event = stripe.Webhook.construct_event(payload, signature, SECRET)
    assert event.id.startswith("evt_") and event.type == "invoice.finalized"
    assert event.data.object.id == invoice.id
    assert event.data.object.status == "open" and event.data.object.total == 200
    assert stripe.Webhook.construct_event(*received[1], SECRET).data.object.status == "paid"

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.replace('"open"', '"paid"'), signature, SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, signature, "whsec_other")

    # The receiver answers before the emulator records the delivery: wait for both records.
    delivered = lambda: [d for d in emu.webhook_deliveries() if d["status"] == "delivered"]  # noqa: E731
    wait_for(lambda: len(delivered()) == 2)
    deliveries = delivered()
    assert {d["type"] for d in deliveries} == {"invoice.finalized", "invoice.paid"}
    assert all(d["attempts"][-1]["status_code"] == 200 for d in deliveries)


def test_payment_failure_and_void_events(hooked):
    emu, client, received = hooked
    invoice = _finalized(client, 1)

    failed = emu.mark_payment_failed(invoice.id)
    assert failed["attempt_count"] == 1 and failed["status"] == "open"
    emu.decline_next_payment(invoice.id)
    with pytest.raises(stripe.CardError) as excinfo:
        client.v1.invoices.pay(invoice.id)
    assert excinfo.value.code == "card_declined" and excinfo.value.http_status == 402
    client.v1.invoices.void_invoice(invoice.id)

    wait_for(lambda: len(received) == 4)
    assert _event_types(received) == ["invoice.finalized", "invoice.payment_failed",
                                      "invoice.payment_failed", "invoice.voided"]
    last = stripe.Webhook.construct_event(*received[-1], SECRET)
    assert last.data.object.status == "void" and last.data.object.attempt_count == 2


def test_unreachable_endpoint_is_recorded_as_failed(customer, client, emulator):
    emulator.webhooks.retry_delay_s = 0.01
    emulator.configure_webhooks("http://127.0.0.1:9/unreachable", SECRET)
    invoice = client.v1.invoices.create(params={"customer": customer.id})
    client.v1.invoices.finalize_invoice(invoice.id)
    delivery = wait_for(lambda: [d for d in emulator.webhook_deliveries()
                                   if d["status"] == "failed"])[0]
    assert len(delivery["attempts"]) == emulator.webhooks.max_attempts
    assert delivery["attempts"][0]["error"]
    # The event is stored and retrievable through the API all the same.
    assert client.v1.events.retrieve(delivery["event_id"]).type == "invoice.finalized"


def test_reset_restores_the_webhook_endpoint_and_forgets_deliveries(receiver, emulator, client):
    """One emulator serves every test of a run: a test's webhook endpoint must not outlive it."""
    url, received = receiver
    initial = (emulator.webhooks.url, emulator.webhook_secret, emulator.webhooks.retry_delay_s)
    emulator.configure_webhooks(url, "whsec_other")
    emulator.webhooks.retry_delay_s = 0.01

    _finalized(client, 1)
    wait_for(lambda: [d for d in emulator.webhook_deliveries() if d["status"] == "delivered"])
    delivered = len(received)

    emulator.reset()

    assert emulator.webhook_deliveries() == []
    assert (emulator.webhooks.url, emulator.webhook_secret, emulator.webhooks.retry_delay_s) == initial
    _finalized(client, 1)
    assert emulator.webhook_deliveries() == [] and len(received) == delivered
