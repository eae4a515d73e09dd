"""Sync errors are sorted: retryable ones go back to the queue with backoff, permanent ones to the DLQ."""

from __future__ import annotations

import stripe


class RetryableSyncError(Exception):
    """Try again later: network, Stripe 5xx, 429 (rate limit or lock timeout), a lease held elsewhere."""


class PermanentSyncError(Exception):
    """Retrying cannot help until someone fixes the cause; the reason is recorded on the invoice."""


def classify(error: stripe.StripeError) -> Exception:
    """Map a Stripe error to retryable or permanent, keeping a readable reason."""
    status = error.http_status or 0
    code = getattr(error, "code", None) or ""
    reason = f"stripe {type(error).__name__} ({status or 'no response'}{', ' + code if code else ''}): "
    reason += error.user_message or str(error) or "no message"
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)):
        return RetryableSyncError(reason)
    if isinstance(error, stripe.IdempotencyError) or code == "idempotency_key_in_use" or status == 409:
        # 409: the same request is in flight elsewhere; 400 idempotency_error: same key, other params.
        return RetryableSyncError(reason) if status == 409 else PermanentSyncError(reason)
    if status == 429 or status >= 500 or isinstance(error, stripe.APIError):
        return RetryableSyncError(reason)
    return PermanentSyncError(reason)
