"""Shared by the acceptance tests: event builders, the public price sheet written out
independently of the product's price book, and a meter of what DynamoDB actually reads."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

D = Decimal
NOV_NOW = "2026-11-15T12:00:00Z"


def create_org(prefix: str = "org") -> str:
    """A fresh organisation with a billing profile."""
    from chalicelib.storage.orgs import OrgRepository

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    OrgRepository().upsert(name, "Test Org", "billing@example.com", "usd", datetime.now(UTC))
    return name


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def usage_event(org: str, event_id: str, *, meter: str = "egress", quantity: Any = "1", region: str | None = "iad",
                app: str = "web", timestamp: str = "2026-11-15T11:00:00Z",
                attributes: dict[str, str] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"id": event_id, "org": org, "app": app, "meter": meter, "quantity": quantity,
                             "timestamp": timestamp}
    if region is not None:
        event["region"] = region
    if attributes:
        event["attributes"] = attributes
    return event


def post_usage(api: Any, token: str, events: list[dict[str, Any]]) -> Any:
    return api.http.post("/v1/usage", headers=bearer(token), body=json.dumps({"events": events}))


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error envelope: {"error": {"code", "message", "details"}}."""
    assert response.status_code == status, (response.status_code, response.body)
    body = response.json_body
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


# The platform's public price book (DESIGN.md, "Prices"), written out here on purpose so
# the tests do not take the product's own numbers on trust.
EGRESS_PER_GB = {"iad": D("0.02"), "sjc": D("0.02"), "fra": D("0.02"), "nrt": D("0.04"), "gru": D("0.04"),
                 "syd": D("0.04"), "jnb": D("0.12"), "bom": D("0.12")}
MACHINE_MULTIPLIER = {"iad": D("1"), "sjc": D("1.192"), "fra": D("1.154"), "nrt": D("1.308"), "gru": D("1.615")}
CPU_SECOND = {"shared": D("0.00000075"), "performance": D("0.00001196")}
EXTRA_RAM_GB_SECOND = D("0.00000193")
GB_HOURS_PER_MONTH = D(720)


@dataclass(frozen=True)
class Price:
    unit_price: Decimal
    per: Decimal = D(1)
    free: Decimal = D(0)  # base units free per org and period, shared by the meter's lines


def machine_price(cpu_kind: str, cpus: int, included_mb: int, memory_mb: int, region: str) -> Price:
    extra_gb = D(memory_mb - included_mb) / D(1024)
    return Price((cpus * CPU_SECOND[cpu_kind] + extra_gb * EXTRA_RAM_GB_SECOND) * MACHINE_MULTIPLIER[region])


def list_price(meter: str, region: str | None) -> Price:
    if meter == "egress":
        return Price(EGRESS_PER_GB[region or ""])
    return {
        "volume_storage": Price(D("0.15"), GB_HOURS_PER_MONTH),
        "snapshot_storage": Price(D("0.08"), GB_HOURS_PER_MONTH, free=D(10) * GB_HOURS_PER_MONTH),
        "rootfs_storage": Price(D("0.15"), GB_HOURS_PER_MONTH),
        "ipv4_address": Price(D("2"), GB_HOURS_PER_MONTH),
        "certificate_single": Price(D("0.10"), D(1), free=D(10)),
        "certificate_wildcard": Price(D("1"), D(1)),
    }[meter]


def cents(dollars: Decimal) -> int:
    """Half-up to the cent, once per line."""
    return int((dollars * 100).quantize(D(1), rounding=ROUND_HALF_UP))


@dataclass
class ExpectedLine:
    key: tuple[str, str, str | None]  # meter (with resource), app, region
    price: Price
    pool: str | None
    quantity: Decimal = D(0)
    events: int = 0
    first_use: str = ""  # the earliest event timestamp, as sent ("...Z", so text order is time order)

    def add(self, event: dict[str, Any]) -> None:
        self.quantity += D(event["quantity"])
        self.events += 1
        self.first_use = min(self.first_use or event["timestamp"], event["timestamp"])


def expected_amounts(lines: Iterable[tuple[str, ExpectedLine]]) -> dict[str, int]:
    """Amount per line id: the free allowance goes to a pool's lines in order of first use (then line id),
    then the list price."""
    remaining: dict[str, Decimal] = {}
    out = {}
    for line_id, line in sorted(lines, key=lambda pair: (pair[1].first_use, pair[0])):
        free = D(0)
        if line.pool:
            pool = remaining.setdefault(line.pool, line.price.free)
            free = min(pool, line.quantity)
            remaining[line.pool] = pool - free
        out[line_id] = cents((line.quantity - free) * line.price.unit_price / line.price.per)
    return out


@dataclass
class DynamoReads:
    """What DynamoDB answered while the meter ran: calls per operation and items read."""

    calls: Counter[str] = field(default_factory=Counter)
    items: int = 0
    scanned: int = 0
    capacity: Decimal = D(0)

    def record(self, operation: str, data: dict[str, Any]) -> None:
        self.calls[operation] += 1
        if operation == "GetItem":
            self.items += 1 if data.get("Item") else 0
        elif operation in ("Query", "Scan"):
            self.items += int(data.get("Count", 0))
            self.scanned += int(data.get("ScannedCount", 0))
        elif operation == "BatchGetItem":
            self.items += sum(len(rows) for rows in data.get("Responses", {}).values())
        capacity = data.get("ConsumedCapacity")
        for entry in capacity if isinstance(capacity, list) else [capacity] if capacity else []:
            self.capacity += D(str(entry.get("CapacityUnits", 0)))


@contextmanager
def dynamo_reads(monkeypatch: Any) -> Iterator[DynamoReads]:
    """Meter every DynamoDB call PynamoDB makes from this thread (all models share this code path)."""
    from pynamodb.connection.base import Connection

    meter = DynamoReads()
    original = Connection._make_api_call
    me = threading.get_ident()

    def metered(self: Any, operation_name: str, operation_kwargs: dict[str, Any]) -> dict[str, Any]:
        data = original(self, operation_name, operation_kwargs)
        if threading.get_ident() == me:
            meter.record(operation_name, data or {})
        return data

    monkeypatch.setattr(Connection, "_make_api_call", metered)
    try:
        yield meter
    finally:
        monkeypatch.setattr(Connection, "_make_api_call", original)


def stored_buckets(org: str, *periods: str) -> dict[tuple[str, str, datetime], Decimal]:
    """(invoice, line, hour) → quantity, from the stored day items' hour attributes."""
    from chalicelib.domain.periods import Period
    from chalicelib.storage.buckets import month_buckets

    out: dict[tuple[str, str, datetime], Decimal] = {}
    for period in periods:
        for day in month_buckets(org, Period.parse(period)):
            assert day.quantity == sum(day.hours.values())  # the day total and its hours moved together
            for hour, quantity in day.hourly():
                out[(day.invoice_id, day.line_id, hour)] = quantity
    return out
