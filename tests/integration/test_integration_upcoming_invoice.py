"""The upcoming invoice after many events: exact quantities and money, breakdowns, and a
read cost that follows the number of lines, not the number of events."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from acceptance_support import (
    ExpectedLine,
    Price,
    bearer,
    create_org,
    expected_amounts,
    list_price,
    machine_price,
    post_usage,
    usage_event,
)

D = Decimal
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
EVENTS_PER_LINE = 40
BATCH = 200  # the busy org's events go in two batches


@dataclass(frozen=True)
class LineSpec:
    meter: str
    app: str
    region: str | None
    attributes: dict[str, str]
    price: Price
    category: str
    low: int  # quantity range, in thousandths of a base unit
    high: int


# Ten lines over five meters with free allowances, machine presets and region multipliers. The busy org's
# snapshots outgrow their free pool (7,200) by far, and its certificates theirs (10).
SPECS = [
    LineSpec("egress", "web", "iad", {}, list_price("egress", "iad"), "network", 1, 20_000),
    LineSpec("egress", "api", "nrt", {}, list_price("egress", "nrt"), "network", 1, 20_000),
    LineSpec("egress", "web", "bom", {}, list_price("egress", "bom"), "network", 1, 5_000),
    LineSpec("machine_runtime", "web", "fra", {"preset": "shared-cpu-1x"},
             machine_price("shared", 1, 256, 256, "fra"), "compute", 1_000, 3_600_000),
    LineSpec("machine_runtime", "api", "gru", {"preset": "performance-2x", "memory_mb": "8192"},
             machine_price("performance", 2, 4096, 8192, "gru"), "compute", 1_000, 3_600_000),
    LineSpec("volume_storage", "db", "iad", {}, list_price("volume_storage", "iad"), "storage", 500, 100_000),
    LineSpec("snapshot_storage", "db", "iad", {}, list_price("snapshot_storage", "iad"), "storage", 1, 300_000),
    LineSpec("snapshot_storage", "db", "fra", {}, list_price("snapshot_storage", "fra"), "storage", 1, 300_000),
    LineSpec("certificate_single", "web", None, {}, list_price("certificate_single", None), "add-ons", 1000, 1000),
    LineSpec("ipv4_address", "api", None, {}, list_price("ipv4_address", None), "network", 1_000, 10_000),
]


def make_events(org: str, per_line: int, seed: int) -> list[tuple[int, dict[str, Any]]]:
    rng = random.Random(seed)
    out = []
    for number in range(per_line * len(SPECS)):
        spec_index = rng.randrange(len(SPECS)) if number >= len(SPECS) else number
        spec = SPECS[spec_index]
        quantity = D(rng.randint(spec.low, spec.high)) / 1000
        moment = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 14 * 86400 + 43000))
        event = usage_event(org, f"ev-{number:05d}", meter=spec.meter, quantity=str(quantity), region=spec.region,
                            app=spec.app, timestamp=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            attributes=spec.attributes)
        out.append((spec_index, event))
    return out


@dataclass
class LoadedOrg:
    org: str
    events: list[tuple[int, dict[str, Any]]]
    line_of_spec: dict[int, str]


def load(org: str, per_line: int, seed: int, usage_token: str) -> LoadedOrg:
    from chalice.test import Client

    import app as application
    from chalicelib import clock

    events = make_events(org, per_line, seed)
    line_of_spec: dict[int, set[str]] = defaultdict(set)
    clock.set_clock(lambda: NOW)
    try:
        with Client(application.app) as client:
            for start in range(0, len(events), BATCH):
                chunk = events[start:start + BATCH]
                response = post_usage(client, usage_token, [event for _, event in chunk])
                assert response.status_code == 200, response.body
                assert response.json_body["counts"]["accepted"] == len(chunk), response.json_body["counts"]
                for (spec_index, _), result in zip(chunk, response.json_body["results"], strict=True):
                    line_of_spec[spec_index].add(result["line_id"])
    finally:
        clock.set_clock(None)
    # Events of one kind share exactly one line, and no two kinds share a line.
    assert all(len(ids) == 1 for ids in line_of_spec.values()), line_of_spec
    assert len({next(iter(ids)) for ids in line_of_spec.values()}) == len(SPECS)
    return LoadedOrg(org, events, {spec: next(iter(ids)) for spec, ids in line_of_spec.items()})


@pytest.fixture(scope="module")
def busy_org(local_aws: Any, tokens: Any) -> LoadedOrg:
    """400 events over ten lines, sent through the API in two batches of 200."""
    return load(create_org("busy"), EVENTS_PER_LINE, seed=7, usage_token=tokens["usage"])


@pytest.fixture(scope="module")
def quiet_org(local_aws: Any, tokens: Any) -> LoadedOrg:
    """The same ten lines from one event each."""
    return load(create_org("quiet"), 1, seed=11, usage_token=tokens["usage"])


def expected_lines(loaded: LoadedOrg) -> dict[str, ExpectedLine]:
    lines = {}
    for spec_index, line_id in loaded.line_of_spec.items():
        spec = SPECS[spec_index]
        pool = spec.meter if spec.price.free else None
        lines[line_id] = ExpectedLine((spec.meter, spec.app, spec.region), spec.price, pool)
    for spec_index, event in loaded.events:
        lines[loaded.line_of_spec[spec_index]].add(event)
    return lines


def upcoming(api: Any, tokens: dict[str, str], org: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=bearer(tokens["admin"]))
    assert response.status_code == 200, response.body
    return response.json_body


def test_each_line_quantity_is_the_sum_of_its_events(api, tokens, pinned_clock, busy_org):
    expected = expected_lines(busy_org)
    body = upcoming(api, tokens, busy_org.org)

    got = {line["id"]: (D(line["quantity"]), line["event_count"]) for line in body["lines"]}
    assert got == {line_id: (line.quantity, line.events) for line_id, line in expected.items()}
    assert sum(count for _, count in got.values()) == EVENTS_PER_LINE * len(SPECS)


def test_each_amount_is_list_price_after_the_free_allowance_rounded_half_up_and_the_total_is_their_sum(
        api, tokens, pinned_clock, busy_org):
    expected = expected_lines(busy_org)
    amounts = expected_amounts(expected.items())
    body = upcoming(api, tokens, busy_org.org)

    lines = {line["id"]: line for line in body["lines"]}
    for line_id, line in expected.items():
        price = lines[line_id]["unit_price"]
        assert D(price["amount"]) / D(price["per"]) == line.price.unit_price / line.price.per, line.key
    assert {line_id: line["amount"]["cents"] for line_id, line in lines.items()} == amounts
    # The snapshot pool is used up by the two snapshot lines together, certificates by their one line.
    free = {line_id: D(line["free_quantity"]) for line_id, line in lines.items()}
    snapshot_lines = [i for i, line in expected.items() if line.key[0] == "snapshot_storage"]
    assert sum(free[i] for i in snapshot_lines) == D(7200)
    assert sum(free.values()) == D(7200) + D(10)
    assert body["total"]["cents"] == sum(amounts.values())
    assert body["subtotal"]["cents"] == sum(amounts.values())


def test_breakdowns_by_app_category_and_region_add_up_to_the_total(api, tokens, pinned_clock, busy_org):
    expected = expected_lines(busy_org)
    amounts = expected_amounts(expected.items())
    by_app: dict[str, int] = defaultdict(int)
    by_category: dict[str, int] = defaultdict(int)
    by_region: dict[str, int] = defaultdict(int)
    for spec_index, line_id in busy_org.line_of_spec.items():
        spec = SPECS[spec_index]
        by_app[spec.app] += amounts[line_id]
        by_category[spec.category] += amounts[line_id]
        by_region[spec.region or "(none)"] += amounts[line_id]

    breakdown = upcoming(api, tokens, busy_org.org)["breakdown"]

    assert {k: v["cents"] for k, v in breakdown["by_app"].items()} == by_app
    assert {k: v["cents"] for k, v in breakdown["by_category"].items()} == by_category
    assert {k: v["cents"] for k, v in breakdown["by_region"].items()} == by_region
    total = sum(amounts.values())
    for name in ("by_app", "by_category", "by_region"):
        assert sum(v["cents"] for v in breakdown[name].values()) == total


def test_reading_the_upcoming_invoice_costs_the_same_for_400_events_as_for_10(api, tokens, pinned_clock,
                                                                               monkeypatch, busy_org, quiet_org):
    from acceptance_support import dynamo_reads

    upcoming(api, tokens, quiet_org.org)  # warm connections, so both reads below are alike
    with dynamo_reads(monkeypatch) as quiet:
        quiet_body = upcoming(api, tokens, quiet_org.org)
    with dynamo_reads(monkeypatch) as busy:
        busy_body = upcoming(api, tokens, busy_org.org)

    assert sum(line["event_count"] for line in quiet_body["lines"]) == len(SPECS)
    assert sum(line["event_count"] for line in busy_body["lines"]) == EVENTS_PER_LINE * len(SPECS)
    assert "Scan" not in busy.calls
    assert busy.calls == quiet.calls
    assert busy.items == quiet.items
    # token, billing profile, invoice header, then one item per line
    assert busy.items <= len(SPECS) + 3
    assert busy.scanned == quiet.scanned == len(SPECS)


def test_a_line_amount_rounds_half_up_to_the_cent(api, org, tokens, pinned_clock):
    # 12.25 GB × $0.02 = $0.245: half-up gives 25 cents (half-even would give 24)
    # 0.125 GB × $0.04 = $0.005: half-up gives 1 cent (half-even would give 0)
    response = post_usage(api, tokens["usage"], [
        usage_event(org, "half-1", quantity="12", region="iad"),
        usage_event(org, "half-2", quantity="0.25", region="iad"),
        usage_event(org, "half-3", quantity="0.125", region="nrt"),
    ])
    assert response.status_code == 200, response.body

    body = upcoming(api, tokens, org)

    assert sorted((line["quantity"], line["amount"]["cents"]) for line in body["lines"]) == [
        ("0.125", 1), ("12.25", 25)]
    assert body["total"]["cents"] == 26


def test_quantities_keep_nine_decimal_places_exactly(api, org, tokens, pinned_clock):
    quantities = ["0.000000001", "123456789.123456789", "0.1", "0.2"]
    response = post_usage(api, tokens["usage"], [usage_event(org, f"p{i}", quantity=q)
                                                 for i, q in enumerate(quantities)])
    assert response.status_code == 200, response.body

    [line] = upcoming(api, tokens, org)["lines"]

    assert D(line["quantity"]) == sum(D(q) for q in quantities) == D("123456789.423456790")


def test_json_number_quantities_are_read_as_exact_decimals(api, org, tokens, pinned_clock):
    body = json.dumps({"events": [usage_event(org, f"n{i}", quantity="__Q__") for i in range(3)]})
    body = body.replace('"__Q__"', "0.1")  # a bare JSON number, which float would make 0.30000000000000004

    response = api.http.post("/v1/usage", headers=bearer(tokens["usage"]), body=body)

    assert response.status_code == 200, response.body
    [line] = upcoming(api, tokens, org)["lines"]
    assert D(line["quantity"]) == D("0.3")


def test_a_line_spans_its_first_and_last_usage_whatever_order_events_arrive_in(api, org, tokens, pinned_clock):
    for event_id, moment in [("mid", "2026-11-10T10:00:00Z"), ("earliest", "2026-11-02T08:00:00Z"),
                             ("latest", "2026-11-14T18:00:00Z"), ("late-arriving-early", "2026-11-05T00:00:00Z")]:
        response = post_usage(api, tokens["usage"], [usage_event(org, event_id, timestamp=moment)])
        assert response.status_code == 200, response.body

    [line] = upcoming(api, tokens, org)["lines"]

    assert (line["first_usage_at"], line["last_usage_at"]) == ("2026-11-02T08:00:00.000000Z",
                                                               "2026-11-14T18:00:00.000000Z")
