"""Shared by the sync and reliability tests: a worker's death, and a wait bounded by a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


class ProcessDied(BaseException):
    """The worker's process ends here: nothing above it catches this, as with SIGKILL or a Lambda timeout."""


def dies_at(step: str) -> Callable[[str], None]:
    """An `InvoiceSync` checkpoint whose process dies when the sync reaches `step`."""
    def checkpoint(reached: str) -> None:
        if reached == step:
            raise ProcessDied(reached)

    return checkpoint


def wait_for(predicate: Callable[[], bool], timeout_s: float, step: Callable[[], object], what: str,
             give_up: Callable[[], str | None] = lambda: None) -> None:
    """Run `step` (which blocks briefly: a poll) until `predicate` holds; fail at the deadline, or as soon
    as `give_up` names a reason the wait is hopeless."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        reason = give_up()
        if reason:
            raise AssertionError(f"stopped waiting for {what}: {reason}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        step()
