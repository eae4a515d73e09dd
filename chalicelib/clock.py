"""The one clock. Services take `now` from here so tests can pin time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_source: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    return _source()


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Pin the clock (tests, the demo's simulated month); None restores real time."""
    global _source
    _source = source or (lambda: datetime.now(UTC))
