"""DynamoDB write units per usage event: single-event batches and batches of 100.

Counted by `CapacityMeter` from the requests `record_usage` makes (see capacity.py for the
rules and their sources), next to what DynamoDB Local reports for the same requests. The
org's invoice and lines exist before counting starts (steady state: a line is created once
per month, its events arrive all month long).
"""

from __future__ import annotations

from typing import Any

import boto3

from .capacity import CapacityMeter, Tally
from .common import create_orgs, egress_events, figure, record, rounded, run_id

LINES = 10
SINGLE_EVENTS = 20
BATCHES_OF_100 = 5
TARGET_BATCHED = 2.5


def _pynamodb_clients() -> list[Any]:
    from chalicelib.storage.models import MODELS

    return [model._get_connection().connection.client for model in MODELS]


def _count(table: str, events: list[Any], batch_size: int) -> Tally:
    meter = CapacityMeter(boto3.client("dynamodb"), table).attach(_pynamodb_clients())
    try:
        record(events, batch_size)
    finally:
        meter.detach()
    return meter.tally


def _per_event(tally: Tally, events: int, batch_size: int, target: bool) -> dict[str, Any]:
    per_event = tally.write_units / events
    local = tally.local_write_units or tally.local_total_units
    return figure(
        rounded(per_event, 3), "write units/event",
        {"events": events, "batch_size": batch_size, "lines": LINES, "meter": "egress"},
        target=f"<= {TARGET_BATCHED}" if target else None, met=per_event <= TARGET_BATCHED if target else None,
        index_write_units_per_event=rounded(tally.index_write_units / events, 3),
        read_units_per_event=rounded(tally.read_units / events, 3),
        condition_check_read_units_per_event=rounded(tally.condition_check_read_units / events, 3),
        dynamodb_local_reported_per_event=rounded(local / events, 3),
        detail=tally.as_dict(),
    )


def measure(table: str) -> dict[str, Any]:
    org = create_orgs(f"bench-wcu-{run_id()}", 1)[0]
    record(egress_events(org, range(LINES), LINES, "warm"), LINES)  # invoice and lines exist from here on
    single = _count(table, egress_events(org, range(LINES), SINGLE_EVENTS, "one"), 1)
    batched = _count(table, egress_events(org, range(LINES), BATCHES_OF_100 * 100, "hundred"), 100)
    return {
        "single_event_batches": _per_event(single, SINGLE_EVENTS, 1, target=False),
        "batches_of_100": _per_event(batched, BATCHES_OF_100 * 100, 100, target=True),
        "dynamodb_local_note": ("DynamoDB Local's ConsumedCapacity for TransactWriteItems is not per item: it "
                                "answers 2.0 for a transaction of 50 one-KB-or-less Puts (checked against it), and 0 "
                                "for a ConditionCheck; its figure is recorded, the rule-based count is the one "
                                "compared with the target"),
        "rules": ("transactional write 2 units per KB of the larger of the item before/after, standard write "
                  "1 per KB; ConditionCheck = transactional read, 2 read units per 4 KB (transaction-apis.html"
                  "#transaction-capacity-handling); item size = attribute names + values "
                  "(CapacityUnitCalculations.html)"),
    }
