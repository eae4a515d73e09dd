"""Ingestion throughput on DynamoDB Local: the service layer in batches of 100, next to raw PutItem.

Both run against the same DynamoDB Local in the same process, so the ratio is meaningful
even though absolute numbers depend on the machine.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3

from chalicelib.config import settings
from chalicelib.services.usage import UsageEvent, record_usage
from chalicelib.storage.orgs import OrgRepository

NOW = datetime.now(UTC)


def service_events_per_second(batches: int, batch_size: int = 100) -> dict[str, Any]:
    org = f"bench-{uuid.uuid4().hex[:8]}"
    OrgRepository().upsert(org, "Bench", "bench@example.com", "usd", NOW)
    presets = ["shared-cpu-1x", "shared-cpu-2x", "performance-1x"]
    regions = ["iad", "fra", "nrt"]
    all_batches = [
        [UsageEvent(f"b{b}-{i}", org, f"app-{i % 4}", "machine_runtime", Decimal(60), regions[i % 3],
                    {"preset": presets[(i // 3) % 3]}, NOW - timedelta(seconds=i)) for i in range(batch_size)]
        for b in range(batches)
    ]
    record_usage(all_batches[0], NOW, settings())  # warm up: creates the invoice and lines
    started = time.perf_counter()
    accepted = 0
    for batch in all_batches[1:]:
        accepted += sum(r.status == "accepted" for r in record_usage(batch, NOW, settings()))
    elapsed = time.perf_counter() - started
    return {"events": accepted, "seconds": round(elapsed, 3), "events_per_second": round(accepted / elapsed, 1)}


def raw_put_items_per_second(count: int) -> dict[str, Any]:
    client = boto3.client("dynamodb")
    table = settings().table_name
    run = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    for i in range(count):
        client.put_item(TableName=table, Item={"pk": {"S": f"BENCH#{run}#{i}"}, "sk": {"S": "RAW"},
                                               "quantity": {"N": "60"}})
    elapsed = time.perf_counter() - started
    return {"items": count, "seconds": round(elapsed, 3), "items_per_second": round(count / elapsed, 1)}


def raw_batch_write_items_per_second(count: int) -> dict[str, Any]:
    client = boto3.client("dynamodb")
    table = settings().table_name
    run = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    for start in range(0, count, 25):
        requests = [{"PutRequest": {"Item": {"pk": {"S": f"BENCHB#{run}#{i}"}, "sk": {"S": "RAW"},
                                             "quantity": {"N": "60"}}}} for i in range(start, min(count, start + 25))]
        pending: dict[str, Any] = {table: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    elapsed = time.perf_counter() - started
    return {"items": count, "seconds": round(elapsed, 3), "items_per_second": round(count / elapsed, 1)}
