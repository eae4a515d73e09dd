"""Spend alert latency, and ingestion with budgets being evaluated.

Latency: each sample is an org with a $1 budget (one threshold: 100 %) and a webhook endpoint on a
local receiver. One usage event worth more than $1 goes through the service layer; the clock
starts when `record_usage` returns (usage accepted). "Recorded" is the alert's `crossed_at`
(written by the stream handler), "delivered" is when the receiver got the signed
`budget.threshold_crossed` event. The event runner polls the stream and the delivery queue in the
background, as Lambda's event source mappings would; samples are spaced so each is measured alone.

Ingestion: batches of 100 events through the service layer, interleaved between an org with a
budget and one without, while the stream handler runs: POST /v1/usage never reads a budget, so the
two rates should agree within noise. (`ingest_throughput`, section 1, is the ingestion figure to
compare with earlier runs: this change added nothing to that path.)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .common import create_orgs, egress_events, figure, record, rounded, run_id, say

SAMPLES = 20
WAIT_S = 60  # per sample, a guard against a hang
INGEST_BATCHES = 10  # per org, of BATCH events each, interleaved
BATCH = 100
TARGET_RATIO = 0.9  # ingestion with budgets / without: "unchanged within noise"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _sample(org: str, receiver: Any) -> tuple[float, float]:
    from chalicelib.config import settings
    from chalicelib.domain.periods import Period
    from chalicelib.services.usage import UsageEvent, record_usage
    from chalicelib.storage.budgets import AlertRepository

    now = datetime.now(UTC)
    event = UsageEvent(f"alert-{org}", org, "web", "egress", Decimal(60), "iad", {}, now)  # $1.20
    results = record_usage([event], now, settings())
    accepted = time.time()
    assert results[0].status == "accepted", results
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        # The month-to-date alert (the projection crosses too, as its own alert and event).
        alerts = [a for a in AlertRepository().for_period(org, str(Period.of(now))) if a.kind.value == "actual"]
        arrived = [r.at for r in receiver.accepted() if alerts and r.event_id == alerts[0].event_id]
        if arrived:
            return (alerts[0].crossed_at.timestamp() - accepted) * 1000, (arrived[0] - accepted) * 1000
        time.sleep(0.02)  # the background runner delivers; this only paces the check
    raise TimeoutError(f"no alert delivered for {org} within {WAIT_S}s")


def _ingest_rates(budgeted: str, plain: str) -> tuple[float, float]:
    """Events/s for each org, their batches interleaved so both share whatever else the machine does
    (here the stream handler runs in this very process, evaluating the budgeted org's lines)."""
    seconds = {budgeted: 0.0, plain: 0.0}
    for index in range(INGEST_BATCHES):
        for org in (budgeted, plain) if index % 2 == 0 else (plain, budgeted):
            events = egress_events(org, list(range(10)), BATCH, f"ingest-{index}")
            started = time.perf_counter()
            record(events, BATCH)
            seconds[org] += time.perf_counter() - started
    sent = INGEST_BATCHES * BATCH
    return sent / seconds[budgeted], sent / seconds[plain]


def measure(stack: Any, samples: int = SAMPLES) -> dict[str, Any]:
    from chalicelib.domain.budgets import Threshold
    from chalicelib.domain.notifications import EventType
    from chalicelib.services.budgets import BudgetService
    from chalicelib.services.endpoints import register_endpoint
    from devstack.webhook_receiver import WebhookReceiver

    tag = run_id()
    orgs = create_orgs(f"alerts-{tag}", samples)
    with WebhookReceiver() as receiver:
        for org in orgs:
            BudgetService().set_budget(org, 100, "usd", [Threshold(percent=100)], datetime.now(UTC))
            receiver.other_secrets.add(register_endpoint(org, receiver.url, [EventType.BUDGET_THRESHOLD_CROSSED],
                                                         datetime.now(UTC), local_stage=True)[1])
        stack.runner.start()
        try:
            recorded, delivered = [], []
            for org in orgs:
                to_alert, to_delivery = _sample(org, receiver)
                recorded.append(to_alert)
                delivered.append(to_delivery)
            say(f"  alerts: {samples} samples, delivered p50 {_percentile(delivered, 0.5):.0f} ms")
            budgeted, plain = create_orgs(f"ingest-budget-{tag}", 1) + create_orgs(f"ingest-plain-{tag}", 1)
            BudgetService().set_budget(budgeted, 10**9, "usd", [Threshold(percent=50)], datetime.now(UTC))
            with_budget, without = _ingest_rates(budgeted, plain)
        finally:
            stack.runner.stop()
    assert all(r.verified for r in receiver.received)
    ratio = with_budget / without
    params = {"samples": samples, "runner": "background, stream + delivery queue"}
    ingest = {"batches_each": INGEST_BATCHES, "batch": BATCH, "with": "stream handler evaluating budgets"}
    return {
        "accepted_to_recorded_p50": figure(rounded(_percentile(recorded, 0.5), 0), "ms", params),
        "accepted_to_recorded_p95": figure(rounded(_percentile(recorded, 0.95), 0), "ms", params),
        "accepted_to_delivered_p50": figure(rounded(_percentile(delivered, 0.5), 0), "ms", params),
        "accepted_to_delivered_p95": figure(rounded(_percentile(delivered, 0.95), 0), "ms", params),
        "ingest_with_budget": figure(rounded(with_budget, 0), "events/s", ingest),
        "ingest_without_budget": figure(rounded(without, 0), "events/s", ingest),
        "ingest_ratio": figure(rounded(ratio), "x", ingest, target=f">= {TARGET_RATIO}", met=ratio >= TARGET_RATIO),
    }

