"""The budget rules (`services/budgets.BudgetService`) on the in-memory `Budgets`, `Alerts` and invoices, in
milliseconds: which thresholds a spend reaches, actual and projected; each alert once per period, kind and
threshold, with its event, however often or concurrently the spend is evaluated; what a stream batch
evaluates; the budget on the upcoming invoice; the alert history's cursor. The fakes are held to the table by
`tests/contract/test_contract_budgets.py`; the pure crossing rules are in `test_budget_and_event_rules.py`."""

from __future__ import annotations

import base64
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from fakes.budgets import MemoryAlerts, MemoryBudgets
from fakes.invoices import MemoryInvoices

from chalicelib.domain.budgets import AlertKind, Threshold
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.invoice import Invoice, InvoiceStatus, invoice_id_for
from chalicelib.domain.lines import LineItem, describe, usage_kind, usage_line_id
from chalicelib.domain.notifications import EventType
from chalicelib.domain.periods import Period
from chalicelib.domain.pricebook import quote
from chalicelib.services.budgets import BudgetService, alert_json
from chalicelib.services.invoices import build_view
from chalicelib.storage import keys

ORG = "acme"
NOV, DEC = Period(2026, 11), Period(2026, 12)
MID = NOV.start + timedelta(days=15)  # half of November: the projection is twice the spend
# A $10 budget: at $6.00 spent half way, actual reaches 50 % and $3; projected ($12) also 80 % and 100 %.
THRESHOLDS = (Threshold(percent=50), Threshold(percent=80), Threshold(percent=100), Threshold(percent=400),
              Threshold(amount_cents=300))
AT_600_MID = {("actual", "pct-50"), ("actual", "amt-300"), ("projected", "pct-50"), ("projected", "pct-80"),
              ("projected", "pct-100"), ("projected", "amt-300")}


@dataclass
class Stores:
    budgets: MemoryBudgets
    alerts: MemoryAlerts
    invoices: MemoryInvoices
    service: BudgetService

    def invoice(self, gigabytes: str, period: Period = NOV, org: str = ORG,
                status: InvoiceStatus = InvoiceStatus.DRAFT) -> Invoice:
        """The period's invoice with one line of `gigabytes` GB of egress ($0.02 per GB)."""
        egress = quote("egress", "iad", {}, period)
        line = LineItem(
            id=usage_line_id(egress, "web", "iad", str(period), False), kind=usage_kind(egress, False),
            category=egress.category, product=egress.product, description=describe(egress, "web", "iad", None),
            app="web", region="iad", resource=egress.resource, meter=egress.meter, quantity=Decimal(gigabytes),
            unit=egress.unit, display_unit=egress.display_unit, display_divisor=egress.display_divisor,
            unit_price=egress.rate.unit_price, price_per=egress.rate.price_per, price_unit=egress.rate.price_unit,
            tiers=egress.rate.tiers, free_pool=egress.free_pool, free_allowance=egress.rate.free_allowance,
            price_version=egress.price_version, usage_period=str(period), event_count=1, first_usage_at=None,
            last_usage_at=None,
        )
        return self.invoices.put(Invoice(org, invoice_id_for(period), "ACME-0001", period, status, "usd",
                                         period.start, period.start), [line])

    def evaluate(self, now: datetime = MID, period: Period = NOV) -> set[tuple[str, str]]:
        budget = self.service.require_budget(ORG)
        return {(a.kind.value, a.threshold.key) for a in self.service.evaluate(budget, invoice_id_for(period), now)}

    def stored(self, period: Period = NOV) -> Counter[tuple[str, str]]:
        return Counter((a.kind.value, a.threshold.key) for a in self.alerts.for_period(ORG, str(period)))


@pytest.fixture
def stores() -> Stores:
    budgets, alerts, invoices = MemoryBudgets(), MemoryAlerts(), MemoryInvoices()
    stores = Stores(budgets, alerts, invoices, BudgetService(budgets, alerts, invoices))
    stores.service.set_budget(ORG, 1000, "usd", THRESHOLDS, NOV.start)
    return stores


def test_each_threshold_the_spend_reached_fires_for_actual_and_projected_spend_with_its_event(stores):
    stores.invoice("300")  # $6.00
    assert stores.evaluate() == AT_600_MID
    (alert,) = [a for a in stores.alerts.for_period(ORG, "2026-11")
                if (a.kind, a.threshold.key) == (AlertKind.PROJECTED, "pct-80")]
    assert (alert.threshold_cents, alert.spend_cents, alert.budget_cents, alert.currency, alert.invoice_id,
            alert.crossed_at) == (800, 1200, 1000, "usd", "inv_202611", MID)
    event = stores.alerts.notices.get(ORG, alert.event_id)
    assert event is not None and event.type is EventType.BUDGET_THRESHOLD_CROSSED
    assert event.data == {"alert": alert_json(alert)}
    assert len(stores.alerts.notices.of_org(ORG)) == len(AT_600_MID)  # one event per alert


def test_evaluating_the_same_spend_again_stores_nothing_twice(stores):
    stores.invoice("300")
    stores.evaluate()
    assert stores.evaluate() == set()  # a redelivered batch
    replayed = BudgetService(stores.budgets, stores.alerts, stores.invoices)  # a replay, days later
    assert replayed.evaluate(stores.service.require_budget(ORG), "inv_202611", MID + timedelta(days=3)) == []
    assert set(stores.stored().values()) == {1}
    assert len(stores.alerts.notices.of_org(ORG)) == len(AT_600_MID)


def test_more_spend_fires_only_the_thresholds_newly_reached(stores):
    stores.invoice("300")
    stores.evaluate()
    stores.invoice("450")  # $9.00: actual now reaches 80 %; projected ($18) nothing new below 400 %
    assert stores.evaluate() == {("actual", "pct-80")}


def test_racing_evaluations_of_a_new_crossing_record_each_alert_once(stores):
    stores.invoice("300")
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda _: stores.evaluate(), range(8)))
    recorded = Counter(crossed for each in found for crossed in each)
    assert set(recorded) == AT_600_MID and set(recorded.values()) == {1}
    assert stores.stored() == recorded


def test_the_projection_waits_for_the_first_day_and_ends_with_the_period(stores):
    actual_only = {("actual", "pct-50"), ("actual", "amt-300")}
    stores.invoice("300")
    assert stores.evaluate(NOV.start + timedelta(hours=23)) == actual_only
    stores.invoice("300", DEC)
    # December's invoice seen after December (a late line, a replay): its spend is final, nothing projected.
    assert stores.evaluate(DEC.end + timedelta(days=2), DEC) == actual_only


def test_each_period_has_its_own_alerts(stores):
    stores.invoice("300")
    stores.invoice("300", DEC)
    assert stores.evaluate() == AT_600_MID
    assert stores.evaluate(DEC.start + timedelta(days=15), DEC) == AT_600_MID
    assert stores.stored(NOV) == stores.stored(DEC)


def test_a_new_budget_does_not_rearm_a_threshold_that_fired(stores):
    stores.invoice("300")
    stores.evaluate()
    stores.service.set_budget(ORG, 2000, "usd", (Threshold(percent=50), Threshold(percent=100),
                                                 Threshold(percent=90)), MID)
    stores.invoice("550")  # $11.00 of $20 (projected $22): 50 % and 100 % reached anew, but they fired this period
    assert stores.evaluate() == {("projected", "pct-90")}  # a threshold the old budget did not have


def test_a_void_or_missing_invoice_fires_nothing(stores):
    assert stores.evaluate() == set()
    stores.invoice("900", status=InvoiceStatus.VOID)
    assert stores.evaluate() == set()
    assert stores.alerts.notices.of_org(ORG) == []


def _line_written(org: str, invoice_id: str, event: str = "MODIFY") -> tuple[str, None, dict[str, dict[str, str]]]:
    """A stream record of a line write, as much of its image as the budget rules read."""
    return event, None, {"sk": {"S": keys.line_sk("egress-web-iad")}, "org": {"S": org},
                         "invoice_id": {"S": invoice_id}}


def test_a_stream_batch_evaluates_the_invoices_of_budgeted_orgs_whose_lines_were_written(stores):
    stores.invoice("300")
    stores.invoice("900", org="globex")  # no budget: never evaluated
    batch = [_line_written(ORG, "inv_202611", "INSERT"), _line_written(ORG, "inv_202611"),
             _line_written("globex", "inv_202611"), ("REMOVE", None, None)]
    alerts = stores.service.evaluate_changes(batch, MID)
    assert sorted((a.kind.value, a.threshold.key) for a in alerts) == sorted(AT_600_MID)
    assert {a.org for a in alerts} == {ORG}
    assert stores.service.evaluate_changes(batch, MID) == []  # the batch again


def test_the_upcoming_invoice_shows_the_budget_used_and_the_periods_alerts(stores):
    invoice = stores.invoice("300")
    stores.evaluate()
    view = build_view(invoice, stores.invoices.lines(ORG, invoice.id), MID, project=True)
    status = stores.service.budget_status(ORG, view)
    assert status is not None
    assert (status.period, status.spent_cents, status.projected_cents, status.used_percent) == \
        ("2026-11", 600, 1200, "60.0")
    assert status.alerts == stores.alerts.for_period(ORG, "2026-11")
    assert stores.service.budget_status("globex", view) is None
    with pytest.raises(NotFound):
        stores.service.require_budget("globex")


def test_the_alert_history_pages_by_an_opaque_cursor_and_refuses_one_it_did_not_issue(stores):
    stores.invoice("300")
    stores.invoice("300", DEC)
    stores.evaluate()
    stores.evaluate(DEC.start + timedelta(days=15), DEC)
    seen, cursor = [], None
    while True:
        page, cursor = stores.service.alert_history(ORG, 5, cursor)
        seen += page
        if cursor is None:
            break
        assert not cursor.startswith("ALERT#")  # opaque to clients
    assert [a.period for a in seen] == ["2026-12"] * 6 + ["2026-11"] * 6
    assert len({a.event_id for a in seen}) == 12
    forged = base64.urlsafe_b64encode(b"ORG#someone-else").decode()
    for cursor in ("not base64 at all!", forged, base64.urlsafe_b64encode(b"\xff\xfe").decode()):
        with pytest.raises(ValidationFailed):
            stores.service.alert_history(ORG, 5, cursor)
