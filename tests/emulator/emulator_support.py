"""Helpers shared by the emulator tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import stripe

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 5.0,
               interval: float = 0.01) -> T:
    """Poll ``condition`` until it returns something truthy, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


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
