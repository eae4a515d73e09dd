"""A worker's death, for the sync and reliability tests."""

from __future__ import annotations

from collections.abc import Callable


class ProcessDied(BaseException):
    """The worker's process ends here: nothing above it catches this, as with SIGKILL or a Lambda timeout."""


def dies_at(step: str) -> Callable[[str], None]:
    """An `InvoiceSync` checkpoint whose process dies when the sync reaches `step`."""
    def checkpoint(reached: str) -> None:
        if reached == step:
            raise ProcessDied(reached)

    return checkpoint
