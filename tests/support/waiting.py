"""The one way a test waits: poll a condition until it holds, bounded by a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout_s: float = 10.0, step: Callable[[], object] | None = None,
             what: str = "the condition", *, give_up: Callable[[], str | None] | None = None,
             interval_s: float = 0.05) -> T:
    """Check `condition` until it returns something truthy, and return that.

    Between checks run `step` (a poll that blocks briefly on its own: a receive, a stream read), or else
    pause `interval_s`. Fail at the deadline, or as soon as `give_up` names a reason the wait is hopeless.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        reason = give_up() if give_up is not None else None
        if reason:
            raise AssertionError(f"stopped waiting for {what}: {reason}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        if step is not None:
            step()
        else:
            time.sleep(interval_s)  # the poll's pace, bounded by the deadline above
