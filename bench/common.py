"""Shared pieces of the benchmarks: progress lines, the time budget, result figures, test data.

Test data goes through the product's own types and services (UsageEvent, record_usage,
OrgRepository), so what is measured is what production runs.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_STARTED = time.monotonic()
# Egress is sold in every region, so app x region gives as many distinct lines as wanted.
EGRESS_REGIONS = ("iad", "sjc", "fra", "nrt", "gru", "syd", "jnb", "bom")


def say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


@dataclass
class Budget:
    """The whole run's deadline; expensive phases size themselves to what is left."""

    deadline: float

    @classmethod
    def of(cls, seconds: float) -> Budget:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def figure(value: Any, unit: str, params: dict[str, Any], target: str | None = None, met: bool | None = None,
           **extra: Any) -> dict[str, Any]:
    """One measured figure with what it was measured on and, when there is one, its target."""
    return {"value": value, "unit": unit, "params": params, "target": target, "met": met, **extra}


def rounded(value: float, digits: int = 2) -> float:
    return round(value, digits)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def run_id() -> str:
    return uuid.uuid4().hex[:6]


def in_threads(work: Callable[[T], R], items: Iterable[T], threads: int) -> list[R]:
    """Run `work` over `items` on a few threads; the first failure is raised."""
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="bench") as pool:
        return list(pool.map(work, items))


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def create_orgs(prefix: str, count: int, threads: int = 4, first: int = 0) -> list[str]:
    from chalicelib.storage.orgs import OrgRepository

    names = [f"{prefix}-{i:05d}" for i in range(first, first + count)]
    repo = OrgRepository()

    def create(name: str) -> str:
        repo.upsert(name, f"Bench {name}", f"billing@{name}.example.com", "usd", datetime.now(UTC))
        return name

    return in_threads(create, names, threads)


def egress_line(index: int) -> tuple[str, str]:
    """(app, region) of the index-th distinct egress line of an org."""
    return f"app{index // len(EGRESS_REGIONS):03d}", EGRESS_REGIONS[index % len(EGRESS_REGIONS)]


def egress_events(org: str, lines: Sequence[int], count: int, tag: str, end: datetime | None = None) -> list[Any]:
    """`count` egress events cycling over the given line indexes, timestamps rising to `end`.

    Timestamps step 1 ms and stay inside `end`'s month, so every event lands on the same
    invoice; quantities vary so amounts are not all alike.
    """
    from chalicelib.services.usage import UsageEvent

    end = end or datetime.now(UTC) - timedelta(seconds=1)
    month_start = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    events = []
    for k in range(count):
        app, region = egress_line(lines[k % len(lines)])
        stamp = max(month_start, end - timedelta(milliseconds=count - k))
        quantity = Decimal(1 + k % 7) + Decimal("0.25")
        events.append(UsageEvent(f"{tag}-{k}", org, app, "egress", quantity, region, {}, stamp))
    return events


def event_json(event: Any) -> dict[str, Any]:
    """A UsageEvent as a producer sends it in `POST /v1/usage`."""
    return {"id": event.id, "org": event.org, "app": event.app, "meter": event.meter, "quantity": str(event.quantity),
            "region": event.region, "timestamp": event.timestamp.isoformat()}


def record(events: Sequence[Any], batch_size: int) -> int:
    """Send events through the service layer in batches; every one must be accepted."""
    from chalicelib.config import settings
    from chalicelib.services.usage import record_usage

    accepted = 0
    for batch in chunks(events, batch_size):
        results = record_usage(list(batch), datetime.now(UTC), settings())
        refused = [r for r in results if r.status != "accepted"]
        if refused:
            raise RuntimeError(f"{len(refused)} events not accepted, first: {refused[0]}")
        accepted += len(results)
    return accepted
