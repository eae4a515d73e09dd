"""Ingestion throughput, side by side on one DynamoDB Local: the service layer and the HTTP API
(batches of 100 usage events) next to raw single-item PutItem and raw BatchWriteItem.

Each round runs every kind once, in a rotated order, so background load on the machine
touches them alike; rates are total items over total time across rounds. Raw items have
the shape of the service's dedup records (the bulk of what ingestion writes). A raw
TransactWriteItems figure (100 Puts per transaction) is recorded as well: it is the floor
that any exactly-once write in one transaction per batch starts from on this DynamoDB.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import requests

from .common import create_orgs, egress_events, event_json, figure, record, rounded, run_id, say

BATCH = 100
LINES_PER_BATCH = 10
ROUND_SIZES = {"service": 5 * BATCH, "http": 5 * BATCH, "put_item": 300, "batch_write_item": 1000,
               "transact_write_items": 1000}
TARGET_RATIO = 0.5


def _raw_item(run: str, index: int) -> dict[str, Any]:
    expires = int((datetime.now(UTC) + timedelta(days=36)).timestamp())
    return {"pk": {"S": f"EVT#bench-raw#{run}-{index}"}, "sk": {"S": "EVT"}, "invoice_id": {"S": "inv_202611"},
            "line_id": {"S": "usage.egress.app001.fra..network-egress."}, "expires_at": {"N": str(expires)}}


class _Raw:
    def __init__(self, table: str) -> None:
        self.client = boto3.client("dynamodb")
        self.table = table

    def put_item(self, count: int, run: str) -> int:
        for i in range(count):
            self.client.put_item(TableName=self.table, Item=_raw_item(run, i))
        return count

    def batch_write_item(self, count: int, run: str) -> int:
        for start in range(0, count, 25):
            writes = [{"PutRequest": {"Item": _raw_item(run, i)}} for i in range(start, min(count, start + 25))]
            pending: dict[str, Any] = {self.table: writes}
            for _ in range(50):  # UnprocessedItems only under throttling; bounded anyway
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
        return count

    def transact_write_items(self, count: int, run: str) -> int:
        for start in range(0, count, 100):
            self.client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table, "Item": _raw_item(run, i)}}
                for i in range(start, min(count, start + 100))])
        return count


class _Service:
    def __init__(self, org: str) -> None:
        self.org = org

    def ingest(self, count: int, run: str) -> int:
        events = egress_events(self.org, range(LINES_PER_BATCH), count, f"svc-{run}")
        return record(events, BATCH)


class _Http:
    def __init__(self, api_url: str, token: str, org: str) -> None:
        self.url = api_url + "/v1/usage"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        self.org = org

    def ingest(self, count: int, run: str) -> int:
        events = egress_events(self.org, range(LINES_PER_BATCH), count, f"http-{run}")
        accepted = 0
        for start in range(0, count, BATCH):
            body = {"events": [event_json(e) for e in events[start:start + BATCH]]}
            response = self.session.post(self.url, data=json.dumps(body), timeout=60)
            response.raise_for_status()
            counts = response.json()["counts"]
            if counts["accepted"] != len(body["events"]):
                raise RuntimeError(f"HTTP ingest: not all accepted: {counts}")
            accepted += counts["accepted"]
        return accepted


def warm_up(table: str, seconds: float) -> None:
    """Give DynamoDB Local's JIT a few seconds of the same calls before anything is timed."""
    raw, service = _Raw(table), _Service(create_orgs(f"bench-warm-{run_id()}", 1)[0])
    deadline = time.monotonic() + seconds
    round_ = 0
    while time.monotonic() < deadline and round_ < 50:
        run = f"warm{round_}-{run_id()}"
        raw.put_item(20, run)
        raw.batch_write_item(100, run)
        raw.transact_write_items(100, run)
        service.ingest(100, run)
        round_ += 1


def measure(table: str, api_url: str, usage_token: str, rounds: int = 3) -> dict[str, Any]:
    orgs = create_orgs(f"bench-ingest-{run_id()}", 2)
    raw, service, http = _Raw(table), _Service(orgs[0]), _Http(api_url, usage_token, orgs[1])
    # First batch of each org creates its invoice and lines: outside the timing.
    service.ingest(BATCH, "first")
    http.ingest(BATCH, "first")
    kinds: dict[str, Callable[[int, str], int]] = {
        "service": service.ingest, "http": http.ingest, "put_item": raw.put_item,
        "batch_write_item": raw.batch_write_item, "transact_write_items": raw.transact_write_items,
    }
    totals = {kind: [0, 0.0] for kind in kinds}
    per_round: dict[str, list[float]] = {kind: [] for kind in kinds}
    names = list(kinds)
    for round_ in range(rounds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for kind in order:
            run = f"r{round_}-{run_id()}"
            started = time.perf_counter()
            done = kinds[kind](ROUND_SIZES[kind], run)
            elapsed = time.perf_counter() - started
            totals[kind][0] += done
            totals[kind][1] += elapsed
            per_round[kind].append(done / elapsed)
        say(f"  ingest round {round_ + 1}/{rounds}: " + ", ".join(
            f"{k} {per_round[k][-1]:.0f}/s" for k in names))
    rates = {kind: totals[kind][0] / totals[kind][1] for kind in kinds}
    service_ratio = rates["service"] / rates["batch_write_item"]
    common = {"rounds": rounds, "dynamodb": "DynamoDB Local 10.3.0, in memory, one process"}

    def rate(kind: str, unit: str, params: dict[str, Any]) -> dict[str, Any]:
        return figure(rounded(rates[kind], 1), unit, {**common, "items": int(totals[kind][0]), **params},
                      seconds=rounded(totals[kind][1], 2),
                      per_round=[rounded(r, 1) for r in per_round[kind]])

    batch_params = {"batch_size": BATCH, "lines_per_batch": LINES_PER_BATCH, "meter": "egress"}
    return {
        "service_layer": rate("service", "events/s", {**batch_params, "path": "record_usage in process"}),
        "http_api": rate("http", "events/s", {**batch_params, "path": "POST /v1/usage on chalice local"}),
        "raw_put_item": rate("put_item", "items/s", {"item": "dedup-record shaped, one PutItem each"}),
        "raw_batch_write_item": rate("batch_write_item", "items/s", {"item": "dedup-record shaped, 25 per call"}),
        "raw_transact_write_items": rate("transact_write_items", "items/s",
                                         {"item": "dedup-record shaped, 100 Puts per transaction"}),
        "ratio_service_to_batch_write_item": figure(
            rounded(service_ratio), "ratio", {"of": "service_layer ÷ raw_batch_write_item"},
            target=f">= {TARGET_RATIO}", met=service_ratio >= TARGET_RATIO),
        "ratio_service_to_put_item": figure(rounded(rates["service"] / rates["put_item"]), "ratio",
                                            {"of": "service_layer ÷ raw_put_item"}),
        "ratio_http_to_batch_write_item": figure(rounded(rates["http"] / rates["batch_write_item"]), "ratio",
                                                 {"of": "http_api ÷ raw_batch_write_item"}),
        "ratio_service_to_transact_write_items": figure(
            rounded(rates["service"] / rates["transact_write_items"]), "ratio",
            {"of": "service_layer ÷ raw_transact_write_items"}),
    }
