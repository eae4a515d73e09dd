"""Idempotency-Key semantics, through stripe-python's request options."""

from __future__ import annotations

import threading

import pytest
import stripe
from support.waiting import wait_for


def test_same_key_and_params_replays_the_first_response(client, emulator, customer):
    options = {"idempotency_key": "sync-invoice-42"}
    first = client.v1.invoices.create(params={"customer": customer.id}, options=options)
    again = client.v1.invoices.create(params={"customer": customer.id}, options=options)
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert again.last_response.idempotency_key == "sync-invoice-42"
    assert len(emulator.state()["invoices"]) == 1


def test_same_key_with_other_params_is_an_idempotency_error(client, customer):
    options = {"idempotency_key": "k-1"}
    client.v1.invoices.create(params={"customer": customer.id}, options=options)
    with pytest.raises(stripe.IdempotencyError) as excinfo:
        client.v1.invoices.create(params={"customer": customer.id, "description": "x"},
                                  options=options)
    assert excinfo.value.http_status == 400
    with pytest.raises(stripe.IdempotencyError):  # other endpoint, same key
        client.v1.customers.create(params={}, options=options)


def test_errors_from_execution_are_replayed_but_validation_errors_are_not(client, draft):
    client.v1.invoices.finalize_invoice(draft.id)
    options = {"idempotency_key": "add-after-finalize"}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 1}]},
                                         options=options)
    assert excinfo.value.headers.get("Idempotent-Replayed") == "true"

    bad = {"idempotency_key": "bad-params"}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            client.v1.customers.create(params={"nope": "1"}, options=bad)
        assert excinfo.value.headers.get("Idempotent-Replayed") is None


def test_concurrent_request_with_key_in_flight_gets_409(make_client, emulator, customer):
    client = make_client()
    emulator.add_fault("POST /v1/invoices", latency_ms=2500)
    options = {"idempotency_key": "slow-key"}
    result = {}

    def slow_create() -> None:
        result["invoice"] = client.v1.invoices.create(params={"customer": customer.id},
                                                      options=options)

    worker = threading.Thread(target=slow_create)
    worker.start()
    try:
        wait_for(lambda: "slow-key" in emulator.idempotency_keys_in_flight())
        with pytest.raises(stripe.APIError) as excinfo:
            client.v1.invoices.create(params={"customer": customer.id}, options=options)
        assert excinfo.value.http_status == 409
        # stripe-python maps 409 to a plain APIError whose .code is unset; the
        # code is on the error object built from the body.
        assert excinfo.value.error.code == "idempotency_key_in_use"
        assert excinfo.value.error.type == "idempotency_error"
        # Another key is not held up by the one in flight.
        other = client.v1.customers.create(params={}, options={"idempotency_key": "other"})
        assert other.id.startswith("cus_")
        assert "slow-key" in emulator.idempotency_keys_in_flight()
    finally:
        worker.join(10)
    replay = client.v1.invoices.create(params={"customer": customer.id}, options=options)
    assert replay.id == result["invoice"].id


def test_forgotten_keys_create_new_objects(client, emulator):
    options = {"idempotency_key": "cus-key"}
    first = client.v1.customers.create(params={"email": "a@example.com"}, options=options)
    assert emulator.forget_idempotency_keys() >= 1
    second = client.v1.customers.create(params={"email": "a@example.com"}, options=options)
    assert second.id != first.id
    assert len(emulator.state()["customers"]) == 2


def test_keys_expire_after_the_retention_period(client, emulator):
    emulator.set_idempotency_ttl(0.2)
    options = {"idempotency_key": "short-lived"}
    first = client.v1.customers.create(params={}, options=options)
    wait_for(lambda: emulator.idempotency_key_count() == 0)
    assert client.v1.customers.create(params={}, options=options).id != first.id


def test_client_retry_after_lost_response_is_replayed(make_client, emulator, customer,
                                                      fast_retries):
    """stripe-python keeps one generated key across retries: the retry of an
    applied request whose response was lost gets the saved response."""
    emulator.fail_next("POST /v1/invoices", kind="lost_response")
    invoice = make_client(retries=2).v1.invoices.create(params={"customer": customer.id})
    assert [i["id"] for i in emulator.state()["invoices"]] == [invoice.id]
    log = [e for e in emulator.request_log() if e["endpoint"] == "POST /v1/invoices"]
    assert [e["lost"] for e in log] == [True, False]
    assert log[1].get("replayed") is True
    assert log[0]["idempotency_key"] == log[1]["idempotency_key"] is not None
