"""Helpers shared by the emulator tests."""

from __future__ import annotations

from collections.abc import Callable

import stripe


def lines(count: int, amount: int = 100, start: int = 0) -> list:
    """``count`` add_lines entries with distinct descriptions and metadata."""
    return [{"amount": amount, "description": f"usage {start + i}",
             "metadata": {"usage_id": f"u{start + i}"},
             "period": {"start": 1_700_000_000, "end": 1_700_003_600}}
            for i in range(count)]


def until_rate_limited(call: Callable[[], object], attempts: int = 20) -> stripe.RateLimitError:
    """Call until a 429; a handful of calls land within one second."""
    for _ in range(attempts):
        try:
            call()
        except stripe.RateLimitError as exc:
            return exc
    raise AssertionError("never rate limited")
