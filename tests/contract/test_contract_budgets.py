"""One contract, two implementations of `Budgets` and `Alerts`: the DynamoDB budget and alert repositories
(with the notice repository an alert's event goes to) and the fakes.

What the budget rules rely on (chalicelib/services/ports.py): a budget is read back as put and replaced whole;
an alert is stored once per (org, period, kind, threshold) together with its event, both or neither, and of
racing recorders exactly one wins; a period's alerts read in position order; the history pages newest period
first with the position of the last alert as the cursor.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest
from fakes.budgets import MemoryAlerts, MemoryBudgets

from chalicelib.domain.budgets import Alert, AlertKind, Budget, Threshold
from chalicelib.domain.notifications import CustomerEvent, EventType, event_id

NOW = datetime(2026, 11, 20, 9, 30, 15, 123000, tzinfo=UTC)
HALF = Threshold(percent=50)


class Stores(NamedTuple):
    budgets: Any
    alerts: Any
    notices: Any
    org: str


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def stores(request: Any) -> Stores:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        alerts = MemoryAlerts()
        return Stores(MemoryBudgets(), alerts, alerts.notices, org)
    request.getfixturevalue("local_aws")
    from chalicelib.storage.budgets import AlertRepository, BudgetRepository
    from chalicelib.storage.notices import NoticeRepository

    return Stores(BudgetRepository(), AlertRepository(), NoticeRepository(), org)


def _alert(org: str, period: str = "2026-11", kind: AlertKind = AlertKind.ACTUAL,
           threshold: Threshold = HALF, spend_cents: int = 600) -> tuple[Alert, CustomerEvent]:
    identity = event_id(org, period, kind.value, threshold.key, EventType.BUDGET_THRESHOLD_CROSSED.value)
    alert = Alert(org=org, period=period, kind=kind, threshold=threshold, threshold_cents=threshold.cents(1000),
                  budget_cents=1000, spend_cents=spend_cents, currency="usd",
                  invoice_id=f"inv_{period.replace('-', '')}", crossed_at=NOW, event_id=identity)
    return alert, CustomerEvent(identity, EventType.BUDGET_THRESHOLD_CROSSED, org, NOW,
                                {"alert": {"id": identity, "spend_cents": spend_cents}})


def test_a_budget_is_read_back_as_put_and_replaced_whole(stores):
    budgets, org = stores.budgets, stores.org
    assert budgets.get(org) is None
    first = Budget(org, 1000, "usd", (Threshold(percent=80), Threshold(amount_cents=500)), NOW)
    budgets.put(first)
    assert budgets.get(org) == first
    second = Budget(org, 2500, "usd", (Threshold(percent=100),), NOW)
    budgets.put(second)
    assert budgets.get(org) == second


def test_many_budgets_are_read_at_once_leaving_out_orgs_without_one(stores):
    budgets, org = stores.budgets, stores.org
    other = f"{org}-b"
    for owner in (org, other):
        budgets.put(Budget(owner, 1000, "usd", (Threshold(percent=50),), NOW))
    found = budgets.get_many({org, other, f"{org}-none"})
    assert set(found) == {org, other}
    assert found[other] == Budget(other, 1000, "usd", (Threshold(percent=50),), NOW)
    assert budgets.get_many(set()) == {}


def test_an_alert_is_stored_once_with_its_event(stores):
    alerts, notices, org = stores.alerts, stores.notices, stores.org
    alert, event = _alert(org)
    assert alerts.record(alert, event)
    assert alerts.for_period(org, "2026-11") == [alert]
    assert notices.get(org, event.id) == event
    # The same (period, kind, threshold) again, say at a higher spend with another event: nothing changes.
    later, its_event = _alert(org, spend_cents=900)
    assert not alerts.record(later, replace(its_event, id="evt_other"))
    assert alerts.for_period(org, "2026-11") == [alert]
    assert notices.get(org, "evt_other") is None


def test_an_alert_whose_event_exists_already_is_not_stored(stores):
    alerts, notices, org = stores.alerts, stores.notices, stores.org
    alert, event = _alert(org)
    assert notices.publish(event)
    assert not alerts.record(alert, event)  # both or neither
    assert alerts.for_period(org, "2026-11") == []
    assert notices.get(org, event.id) == event


def test_of_racing_recorders_of_one_alert_exactly_one_wins(stores):
    alerts, org = stores.alerts, stores.org
    alert, event = _alert(org)
    with ThreadPoolExecutor(max_workers=8) as pool:
        recorded = list(pool.map(lambda _: alerts.record(alert, event), range(8)))
    assert recorded.count(True) == 1
    assert alerts.for_period(org, "2026-11") == [alert]


def test_a_periods_alerts_are_its_own_in_position_order(stores):
    alerts, org = stores.alerts, stores.org
    for period, kind, threshold in [("2026-11", AlertKind.PROJECTED, HALF),
                                    ("2026-11", AlertKind.ACTUAL, Threshold(percent=80)),
                                    ("2026-11", AlertKind.ACTUAL, Threshold(amount_cents=300)),
                                    ("2026-10", AlertKind.ACTUAL, HALF),
                                    ("2026-12", AlertKind.ACTUAL, HALF)]:
        alerts.record(*_alert(org, period, kind, threshold))
    alerts.record(*_alert(f"{org}-b", "2026-11"))
    found = [(a.kind.value, a.threshold.key) for a in alerts.for_period(org, "2026-11")]
    assert found == [("actual", "amt-300"), ("actual", "pct-80"), ("projected", "pct-50")]
    assert alerts.for_period(org, "2027-01") == []


def test_the_history_pages_newest_period_first(stores):
    alerts, org = stores.alerts, stores.org
    for period in ("2026-09", "2026-10", "2026-11"):
        for kind in AlertKind:
            alerts.record(*_alert(org, period, kind, HALF))
    alerts.record(*_alert(f"{org}-b", "2026-12"))
    seen, after, pages = [], None, 0
    while True:
        page, after = alerts.history(org, 4, after)
        seen += [(a.period, a.kind.value) for a in page]
        pages += 1
        if after is None:
            break
        assert after.startswith("ALERT#")
    assert pages == 2
    assert seen == [(p, k) for p in ("2026-11", "2026-10", "2026-09") for k in ("projected", "actual")]
    assert alerts.history(org, 6, None)[1] is None  # exactly a page: no cursor
    assert alerts.history(f"{org}-none", 6, None) == ([], None)
