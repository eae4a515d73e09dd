"""Rate limits and injected failures, as stripe-python experiences them."""

from __future__ import annotations

import time

import pytest
import stripe
from emulator_support import lines, until_rate_limited


def test_endpoint_rate_limit_answers_429(client, emulator):
    emulator.set_rate_limits(per_endpoint_per_second=3)
    for _ in range(3):
        client.v1.customers.list()
    error = until_rate_limited(client.v1.customers.list)
    # RateLimitError leaves .code unset; the code is on the error object.
    assert error.http_status == 429 and error.error.code == "rate_limit"
    assert "rate limit" in error.user_message
    # Another endpoint has its own budget.
    assert client.v1.invoices.list().data == []
    assert emulator.request_counts()["by_status"]["429"] >= 1


def test_global_rate_limit_spans_endpoints(client, emulator):
    emulator.set_rate_limits(global_per_second=2, per_endpoint_per_second=None)
    client.v1.customers.list()
    client.v1.invoices.list()
    until_rate_limited(client.v1.invoice_items.list)


def test_default_limits_are_live_mode_ones(emulator):
    assert emulator.limiter.describe()["global_per_second"] == 100
    assert emulator.limiter.describe()["per_endpoint_per_second"] == 25


def test_injected_5xx_is_an_api_error_and_nothing_is_applied(client, emulator, customer):
    emulator.fail_next("POST /v1/invoices", count=1)
    with pytest.raises(stripe.APIError) as excinfo:
        client.v1.invoices.create(params={"customer": customer.id})
    assert excinfo.value.http_status == 500
    assert excinfo.value.json_body["error"]["type"] == "api_error"
    assert emulator.state()["invoices"] == []
    assert client.v1.invoices.create(params={"customer": customer.id}).status == "draft"


def test_client_retries_through_5xx(make_client, emulator, customer, fast_retries):
    emulator.fail_next("POST /v1/invoices", count=2, status=503)
    invoice = make_client(retries=2).v1.invoices.create(params={"customer": customer.id})
    assert invoice.status == "draft"
    assert emulator.request_counts()["by_endpoint"]["POST /v1/invoices"] == 3
    assert len(emulator.state()["invoices"]) == 1


def test_lock_timeout_is_retried_by_the_client(make_client, emulator, customer,
                                               fast_retries):
    emulator.fail_next("POST /v1/customers", kind="lock_timeout")
    with pytest.raises(stripe.RateLimitError) as excinfo:
        make_client().v1.customers.create()
    assert excinfo.value.error.code == "lock_timeout"
    emulator.fail_next("POST /v1/customers", kind="lock_timeout")
    assert make_client(retries=1).v1.customers.create().id.startswith("cus_")


def test_lost_response_is_applied_but_client_sees_connection_error(client, emulator, draft):
    emulator.fail_next("POST /v1/invoices/*/add_lines", kind="lost_response")
    options = {"idempotency_key": "lines-batch-1"}
    with pytest.raises(stripe.APIConnectionError):
        client.v1.invoices.add_lines(draft.id, params={"lines": lines(3)}, options=options)
    assert client.v1.invoices.retrieve(draft.id).lines.total_count == 3
    # Retrying with the same key replays instead of adding the lines twice.
    again = client.v1.invoices.add_lines(draft.id, params={"lines": lines(3)},
                                         options=options)
    assert again.lines.total_count == 3 and again.total == 300


def test_error_rate_rule_matches_by_method_and_path(client, emulator, draft):
    fault_id = emulator.add_fault("GET /v1/invoices/*", error_rate=1.0)
    with pytest.raises(stripe.APIError):
        client.v1.invoices.retrieve(draft.id)
    assert client.v1.invoices.list().data  # GET /v1/invoices does not match
    assert emulator.remove_fault(fault_id)
    assert client.v1.invoices.retrieve(draft.id).id == draft.id


def test_rate_of_429s_and_seeded_rng_are_reproducible(client, emulator):
    emulator.set_rate_limits(global_per_second=None, per_endpoint_per_second=None)
    emulator.add_fault("*", rate_limit_rate=0.5)

    def outcomes() -> list:
        seen = []
        for _ in range(30):
            try:
                client.v1.customers.list()
                seen.append("ok")
            except stripe.RateLimitError:
                seen.append("429")
        return seen

    emulator.seed(1234)
    first = outcomes()
    emulator.seed(1234)
    assert outcomes() == first
    assert "ok" in first and "429" in first


def test_added_latency(client, emulator):
    emulator.add_fault("GET /v1/customers", latency_ms=250)
    started = time.monotonic()
    client.v1.customers.list()
    assert time.monotonic() - started >= 0.25


def test_requests_are_counted_per_endpoint_and_invoice(client, emulator, customer):
    emulator.reset_request_counts()
    invoice = client.v1.invoices.create(params={"customer": customer.id})
    client.v1.invoices.add_lines(invoice.id, params={"lines": lines(5)})
    client.v1.invoice_items.create(params={"invoice": invoice.id, "amount": 7})
    client.v1.invoices.finalize_invoice(invoice.id)
    client.v1.invoices.line_items.list(invoice.id)
    counts = emulator.request_counts()
    assert counts["total"] == 5
    assert emulator.requests_for_invoice(invoice.id) == 5
    assert counts["by_endpoint"]["POST /v1/invoices/{invoice}/add_lines"] == 1
    assert counts["by_invoice_endpoint"][invoice.id]["POST /v1/invoices"] == 1
