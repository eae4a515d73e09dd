"""Adapters are built once per process: a warm Lambda reuses the Stripe client across SQS batches."""

from __future__ import annotations

from chalicelib.stripe.gateway import gateway_for


def test_the_same_key_and_address_get_the_same_gateway_and_client():
    first = gateway_for("sk_test_once", "http://127.0.0.1:1", 2)
    again = gateway_for("sk_test_once", "http://127.0.0.1:1", 2)
    assert again is first and again.client is first.client


def test_another_key_or_address_gets_its_own_gateway():
    first = gateway_for("sk_test_once", "http://127.0.0.1:1", 2)
    assert gateway_for("sk_test_other", "http://127.0.0.1:1", 2) is not first
    assert gateway_for("sk_test_once", "http://127.0.0.1:2", 2) is not first
