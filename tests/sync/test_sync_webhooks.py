"""POST /v1/stripe/webhook: only Stripe's signed, fresh events act, and each event acts once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from sync_support import create_org, finalized_invoice, stored

PATH = "/v1/stripe/webhook"


def event(kind: str, org: str, invoice_id: str, event_id: str | None = None) -> str:
    """An event as Stripe sends it for the Stripe copy of our invoice."""
    import stripe

    return json.dumps({
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": {
            "id": f"in_{uuid.uuid4().hex[:24]}",
            "object": "invoice",
            "status": "paid" if kind == "invoice.paid" else "open",
            "number": "TEST-0001",
            "total": 1234,
            "metadata": {"org": org, "invoice_id": invoice_id},
        }},
    })


def signature(payload: str, secret: str, timestamp: int | None = None) -> str:
    """Stripe's scheme: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>" under the endpoint secret>."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def deliver(api: Any, payload: str, signed: str) -> Any:
    return api.http.post(PATH, headers={"Content-Type": "application/json", "Stripe-Signature": signed},
                         body=payload)


@pytest.fixture
def secret(local_aws) -> str:
    from chalicelib.config import settings

    return settings().stripe_webhook_secret


@pytest.fixture
def invoice(local_aws):
    return finalized_invoice(create_org("hook"), lines=2)


def test_a_signed_invoice_paid_event_marks_our_invoice_paid(api, secret, invoice):
    payload = event("invoice.paid", invoice.org, invoice.id)
    response = deliver(api, payload, signature(payload, secret))
    assert response.status_code == 200, response.body
    assert response.json_body == {"received": True, "outcome": "applied"}
    paid = stored(invoice.org, invoice.id)
    assert paid.status.value == "paid"
    assert paid.payment_status.value == "paid"


def test_a_forged_signature_is_refused_and_changes_nothing(api, secret, invoice):
    before = stored(invoice.org, invoice.id)
    payload = event("invoice.paid", invoice.org, invoice.id)
    response = deliver(api, payload, signature(payload, "whsec_not_the_secret"))
    assert 400 <= response.status_code < 500, (response.status_code, response.body)
    assert stored(invoice.org, invoice.id) == before
    # Tampering with a genuinely signed payload is refused too.
    genuine = signature(payload, secret)
    tampered = payload.replace('"total": 1234', '"total": 1')
    assert 400 <= deliver(api, tampered, genuine).status_code < 500
    assert stored(invoice.org, invoice.id) == before
    # The refused event was not remembered: Stripe's genuine delivery of it still acts.
    assert deliver(api, payload, genuine).json_body["outcome"] == "applied"


def test_a_stale_signature_is_refused(api, secret, invoice):
    before = stored(invoice.org, invoice.id)
    payload = event("invoice.paid", invoice.org, invoice.id)
    response = deliver(api, payload, signature(payload, secret, int(time.time()) - 301))
    assert 400 <= response.status_code < 500, (response.status_code, response.body)
    assert stored(invoice.org, invoice.id) == before


def test_the_same_event_replayed_is_ignored(api, secret, invoice):
    failed_id = f"evt_{uuid.uuid4().hex[:24]}"
    payment_failed = event("invoice.payment_failed", invoice.org, invoice.id, failed_id)
    assert deliver(api, payment_failed, signature(payment_failed, secret)).json_body["outcome"] == "applied"
    assert stored(invoice.org, invoice.id).payment_status.value == "failed"
    paid = event("invoice.paid", invoice.org, invoice.id)
    assert deliver(api, paid, signature(paid, secret)).json_body["outcome"] == "applied"
    after_paid = stored(invoice.org, invoice.id)
    assert after_paid.payment_status.value == "paid"

    # Stripe retries a delivery with a fresh signature; applied again it would undo the payment.
    response = deliver(api, payment_failed, signature(payment_failed, secret))
    assert response.status_code == 200, response.body
    assert response.json_body["outcome"] == "duplicate"
    assert stored(invoice.org, invoice.id) == after_paid


def test_an_event_for_an_invoice_that_is_not_ours_changes_nothing(api, secret, invoice):
    before = stored(invoice.org, invoice.id)
    payload = event("invoice.paid", invoice.org, "inv_209901")
    response = deliver(api, payload, signature(payload, secret))
    assert response.status_code == 200, response.body
    assert response.json_body["outcome"] == "not_ours"
    assert stored(invoice.org, invoice.id) == before
