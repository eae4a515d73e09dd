"""Fixtures for the Stripe emulator tests: the session's emulator, reset before each test, and
real stripe-python clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import stripe

from devstack.stripe_emulator import StripeEmulator

API_KEY = "sk_test_emulator"


@pytest.fixture
def emulator(stripe_server: StripeEmulator) -> StripeEmulator:
    stripe_server.reset()
    return stripe_server


@pytest.fixture
def make_client(emulator: StripeEmulator) -> Callable[..., stripe.StripeClient]:
    def make(retries: int = 0, api_key: str = API_KEY) -> stripe.StripeClient:
        return stripe.StripeClient(api_key, base_addresses={"api": emulator.base_url},
                                   max_network_retries=retries)
    return make


@pytest.fixture
def client(make_client: Callable[..., stripe.StripeClient]) -> stripe.StripeClient:
    return make_client()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink stripe-python's retry back-off (0.5 s minimum) for speed."""
    from stripe import _http_client
    monkeypatch.setattr(_http_client.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(_http_client.HTTPClient, "MAX_DELAY", 0.05)


@pytest.fixture
def customer(client: stripe.StripeClient) -> stripe.Customer:
    return client.v1.customers.create(params={"email": "billing@example.com",
                                              "name": "Example Ltd"})


@pytest.fixture
def draft(client: stripe.StripeClient, customer: stripe.Customer) -> stripe.Invoice:
    return client.v1.invoices.create(params={"customer": customer.id, "currency": "usd",
                                             "auto_advance": False})
