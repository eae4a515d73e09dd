"""A stateful Stripe API emulator for local development and tests.

It serves the subset of Stripe's v1 API that invoice syncing uses
(customers, invoices, invoice items and lines, events) to the real
stripe-python client over HTTP on loopback, and reproduces the production
behaviours such a sync must cope with: idempotency keys, rate limits, the
250-item invoice limit, draft-only edits, metadata limits, signed webhooks,
and injectable failures including responses lost after the request was
applied.

    from devstack.stripe_emulator import StripeEmulator

    emulator = StripeEmulator(webhook_url="http://127.0.0.1:8000/hooks")
    base_url = emulator.start()          # http://127.0.0.1:<free port>
    client = stripe.StripeClient("sk_test_local", base_addresses={"api": base_url})
    ...
    emulator.stop()
"""

from .emulator import StripeEmulator
from .faults import FaultRule

__all__ = ["StripeEmulator", "FaultRule"]
