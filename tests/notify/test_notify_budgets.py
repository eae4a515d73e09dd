"""Spend alerts: each threshold fires once per period and kind, from the table's stream, whatever races
and repeats; the upcoming invoice shows the budget; the API sets and reads it."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify_support import create_org, drain, egress, record, register

WRITERS = 4  # concurrent writers, and concurrent evaluations of one spend
BATCHES = 4  # per writer


@pytest.fixture
def mid_month() -> Any:
    """The clock pinned half way through this month: projected thresholds count (a day has passed)."""
    from chalicelib import clock
    from chalicelib.domain.periods import Period

    moment = Period.of(datetime.now(UTC)).start + timedelta(days=14, hours=12)
    clock.set_clock(lambda: moment)
    yield moment
    clock.set_clock(None)


def thresholds() -> list[Any]:
    from chalicelib.domain.budgets import Threshold

    # $10 budget: 50 %, 80 %, 100 % and $3 are reached; 400 % ($40) is not, even projected.
    return [Threshold(percent=50), Threshold(percent=80), Threshold(percent=100), Threshold(percent=400),
            Threshold(amount_cents=300)]


def expected_alerts(org: str, now: datetime) -> set[tuple[str, str]]:
    """Every (kind, threshold) the final spend has reached: what must have fired, once each."""
    from chalicelib.services.budgets import BudgetService
    from chalicelib.services.invoices import InvoiceService

    view = InvoiceService().upcoming(org, "usd", now)
    budget = BudgetService().require_budget(org)
    assert view.projected_total_cents is not None
    reached = set()
    for threshold in budget.thresholds:
        limit = threshold.cents(budget.amount_cents)
        if view.totals.total_cents >= limit:
            reached.add(("actual", threshold.key))
        if view.projected_total_cents >= limit:
            reached.add(("projected", threshold.key))
    return reached


def stored_alerts(org: str, period: str) -> Counter[tuple[str, str]]:
    from chalicelib.storage import keys
    from chalicelib.storage.notice_models import AlertItem

    items = AlertItem.query(keys.org_pk(org), AlertItem.sk.startswith(keys.alert_period_prefix(period)),
                            consistent_read=True)
    return Counter((item.kind, item.threshold) for item in items)


def stored_events(org: str, event_type: str) -> list[str]:
    from chalicelib.storage.notices import NoticeRepository

    return [event.id for event in NoticeRepository().of_org(org) if event.type.value == event_type]


def test_each_threshold_fires_once_under_concurrent_writers_stream_redelivery_and_replay(stack, receiver, mid_month):
    import app
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.budgets import BudgetService
    from devstack.event_runner import EventRunner

    org = create_org("budget")
    _, receiver.secret = register(org, receiver.url, ("budget.threshold_crossed",))
    budgets = BudgetService()
    budgets.set_budget(org, 1000, "usd", thresholds(), mid_month)
    period = str(Period.of(mid_month))

    def write(writer: int) -> None:
        for batch in range(BATCHES):  # 4 writers x 4 batches x 3 events x 12.5 GB = 600 GB, one line each
            record([egress(org, f"w{writer}-b{batch}-{i}", "12.5", mid_month, app=f"app{writer}")
                    for i in range(3)], mid_month)

    record([egress(org, "first", "0.5", mid_month)], mid_month)  # the invoice exists before the writers race
    stack.runner.start()  # the stream and the delivery queue are polled while the writers write
    try:
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            list(pool.map(write, range(WRITERS)))
    finally:
        stack.runner.stop()
    drain(stack)
    expected = expected_alerts(org, mid_month)
    assert len(expected) == 8, expected  # 4 thresholds reached, actual and projected
    assert len(receiver.event_ids()) == len(expected)

    # Lambda runs shards in parallel and retries: evaluations of the same spend at once add nothing.
    invoice_id = invoice_id_for(Period.of(mid_month))
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        again = list(pool.map(lambda _: budgets.evaluate(budgets.require_budget(org), invoice_id, mid_month),
                              range(WRITERS)))
    assert again == [[]] * WRITERS
    # A replay of the whole stream from its start (a new event source mapping, a redeployed function).
    replay = EventRunner(app.handle_table_changes, None, stream_arn=stack.resources.stream_arn,
                         dynamodb_streams_endpoint=stack.dynamodb_endpoint, region="us-east-1")
    assert replay.run_until_idle(60) > 0
    drain(stack)

    alerts = stored_alerts(org, period)
    assert set(alerts) == expected and set(alerts.values()) == {1}, alerts
    events = stored_events(org, "budget.threshold_crossed")
    assert len(events) == len(set(events)) == len(expected)
    assert receiver.event_ids() == set(events)  # each alert reached the customer; dedup by id leaves one each
    assert all(r.verified for r in receiver.received)


def test_concurrent_evaluations_of_a_new_crossing_record_each_alert_exactly_once(stack, mid_month):
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.budgets import BudgetService

    org = create_org("race")
    budgets = BudgetService()
    budgets.set_budget(org, 1000, "usd", thresholds(), mid_month)
    record([egress(org, f"e{i}", "100", mid_month) for i in range(6)], mid_month)  # $12.00, nothing evaluated yet
    invoice_id = invoice_id_for(Period.of(mid_month))

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        results = list(pool.map(lambda _: budgets.evaluate(budgets.require_budget(org), invoice_id, mid_month),
                                range(WRITERS)))

    recorded = Counter((a.kind.value, a.threshold.key) for found in results for a in found)
    assert set(recorded) == expected_alerts(org, mid_month) and set(recorded.values()) == {1}, recorded
    assert stored_alerts(org, str(Period.of(mid_month))) == recorded


def test_the_upcoming_invoice_shows_budget_used_and_thresholds_crossed(stack, api, mid_month):
    from chalicelib.services.budgets import BudgetService

    org = create_org("shown")
    admin = {"Authorization": f"Bearer {stack.tokens['admin']}"}
    assert api.http.get(f"/v1/orgs/{org}/budget", headers=admin).status_code == 404
    BudgetService().set_budget(org, 1000, "usd", thresholds(), mid_month)
    record([egress(org, "e1", "300", mid_month)], mid_month)  # $6.00
    drain(stack)

    body = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=admin).json_body
    budget = body["budget"]
    assert (budget["amount_cents"], budget["spent_cents"], budget["used_percent"]) == (1000, 600, "60.0")
    crossed = {(a["kind"], a["threshold"]["percent"], a["threshold"]["amount_cents"])
               for a in budget["thresholds_crossed"]}
    assert ("actual", 50, None) in crossed and ("actual", None, 300) in crossed
    assert ("actual", 80, None) not in crossed
    history = api.http.get(f"/v1/orgs/{org}/alerts?limit=2", headers=admin).json_body
    assert len(history["alerts"]) == 2 and history["next_cursor"]
    rest = api.http.get(f"/v1/orgs/{org}/alerts?cursor={history['next_cursor']}", headers=admin).json_body
    assert {a["id"] for a in history["alerts"]} | {a["id"] for a in rest["alerts"]} == \
        {f"{a['id']}" for a in budget["thresholds_crossed"]}


def test_budget_api_validates_and_round_trips(stack, api):
    org = create_org("budgetapi")
    admin = {"Authorization": f"Bearer {stack.tokens['admin']}", "Content-Type": "application/json"}
    bad = [
        {"amount_cents": 0},
        {"amount_cents": 1000, "thresholds": [{"percent": 50, "amount_cents": 10}]},
        {"amount_cents": 1000, "thresholds": [{"percent": 50}, {"percent": 50}]},
        {"amount_cents": "1000"},
        {"amount_cents": 1000, "thresholds": [{"percent": 0}]},
    ]
    for body in bad:
        response = api.http.put(f"/v1/orgs/{org}/budget", headers=admin, body=json_text(body))
        assert response.status_code == 422, (body, response.body)
        assert set(response.json_body["error"]) == {"code", "message", "details"}
    assert api.http.get(f"/v1/orgs/{org}/budget", headers=admin).status_code == 404  # nothing was written

    good = {"amount_cents": 250000, "thresholds": [{"percent": 80}, {"amount_cents": 100000}]}
    assert api.http.put(f"/v1/orgs/{org}/budget", headers=admin, body=json_text(good)).status_code == 200
    read = api.http.get(f"/v1/orgs/{org}/budget", headers=admin).json_body
    assert read["amount_cents"] == 250000
    assert read["thresholds"] == [{"percent": 80, "amount_cents": None}, {"percent": None, "amount_cents": 100000}]
    usage = {"Authorization": f"Bearer {stack.tokens['usage']}", "Content-Type": "application/json"}
    assert api.http.put(f"/v1/orgs/{org}/budget", headers=usage, body=json_text(good)).status_code == 403


def json_text(body: dict[str, Any]) -> str:
    import json

    return json.dumps(body)
