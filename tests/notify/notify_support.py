"""Shared by the notify tests: orgs, endpoints, usage, and draining the event sources."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from support.waiting import wait_for as wait_for  # noqa: F401  (the notify tests import it from here)

ALL_EVENTS = ("invoice.finalized", "invoice.synced", "invoice.payment_succeeded", "invoice.payment_failed",
              "invoice.sync_delayed", "budget.threshold_crossed")


def create_org(prefix: str = "notify", collection: Any = None) -> str:
    from chalicelib.storage.orgs import OrgRepository

    org = f"{prefix}-{uuid.uuid4().hex[:10]}"
    OrgRepository().upsert(org, "Notify Test Org", f"{org}@example.com", "usd", datetime.now(UTC), collection)
    return org


def register(org: str, url: str, types: tuple[str, ...] = ALL_EVENTS) -> tuple[Any, str]:
    """An endpoint at `url` (the local stage allows loopback http) and its secret."""
    from chalicelib.domain.notifications import EventType
    from chalicelib.services.endpoints import register_endpoint

    return register_endpoint(org, url, [EventType(t) for t in types], datetime.now(UTC), local_stage=True)


def egress(org: str, event_id: str, gigabytes: str, now: datetime, app: str = "web") -> Any:
    """One usage event of `gigabytes` GB of egress from iad ($0.02 per GB)."""
    from chalicelib.services.usage import UsageEvent

    return UsageEvent(event_id, org, app, "egress", Decimal(gigabytes), "iad", {}, now)


def record(events: list[Any], now: datetime) -> None:
    from chalicelib.config import settings
    from chalicelib.services.usage import record_usage

    results = record_usage(events, now, settings())
    assert all(r.status in ("accepted", "duplicate") for r in results), [r for r in results if r.status == "rejected"]


def drain(stack: Any, timeout_s: float = 60) -> None:
    """Deliver everything the stream and the queues hold now (and what that delivery causes)."""
    stack.runner.run_until_idle(timeout_s)
