"""An org's budget, and its alerts: each stored once, together with the customer event it raises."""

from __future__ import annotations

import json
import random
import time

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..domain.budgets import Alert, AlertKind, Budget, Threshold
from ..domain.notifications import CustomerEvent
from . import keys
from .items import get_or_none
from .notice_models import AlertItem, BudgetItem, NoticeItem
from .notices import notice_item

TRANSACTION_TRIES = 8


def _thresholds_json(thresholds: tuple[Threshold, ...]) -> str:
    return json.dumps([{"percent": t.percent} if t.percent is not None else {"amount_cents": t.amount_cents}
                       for t in thresholds])


def _budget(item: BudgetItem) -> Budget:
    thresholds = tuple(Threshold(**raw) for raw in json.loads(item.thresholds))
    return Budget(item.org, item.amount_cents, item.currency, thresholds, item.updated_at)


def _alert(item: AlertItem) -> Alert:
    return Alert(
        org=item.org, period=item.period, kind=AlertKind(item.kind), threshold=Threshold.from_key(item.threshold),
        threshold_cents=item.threshold_cents, budget_cents=item.budget_cents, spend_cents=item.spend_cents,
        currency=item.currency, invoice_id=item.invoice_id, crossed_at=item.crossed_at, event_id=item.event_id,
    )


class BudgetRepository:
    def get(self, org: str) -> Budget | None:
        item = get_or_none(BudgetItem, keys.org_pk(org), keys.BUDGET_SK)
        return _budget(item) if item is not None else None

    def get_many(self, orgs: set[str]) -> dict[str, Budget]:
        """One BatchGetItem: the stream handler asks for every org a batch of line changes touched."""
        if not orgs:
            return {}
        items = BudgetItem.batch_get([(keys.org_pk(org), keys.BUDGET_SK) for org in orgs])
        return {item.org: _budget(item) for item in items}

    def put(self, budget: Budget) -> None:
        BudgetItem(keys.org_pk(budget.org), keys.BUDGET_SK, org=budget.org, amount_cents=budget.amount_cents,
                   currency=budget.currency, thresholds=_thresholds_json(budget.thresholds),
                   updated_at=budget.updated_at).save()


class AlertRepository:
    def for_period(self, org: str, period: str) -> list[Alert]:
        query = AlertItem.query(keys.org_pk(org), AlertItem.sk.startswith(keys.alert_period_prefix(period)),
                                consistent_read=True)
        return [_alert(item) for item in query]

    def history(self, org: str, limit: int, after: str | None) -> tuple[list[Alert], str | None]:
        """Newest period first; `after` is the sort key of the last alert of the previous page."""
        start = {"pk": {"S": keys.org_pk(org)}, "sk": {"S": after}} if after is not None else None
        # One more than asked: only the extra item proves there is a next page.
        items = list(AlertItem.query(keys.org_pk(org), AlertItem.sk.startswith(keys.ALERT_SK_PREFIX),
                                     scan_index_forward=False, limit=limit + 1, last_evaluated_key=start))
        more = len(items) > limit
        items = items[:limit]
        return [_alert(item) for item in items], items[-1].sk if more else None

    def record(self, alert: Alert, event: CustomerEvent) -> bool:
        """Store the alert and its event in one transaction, unless the alert exists; True if this call did.

        The key is (org, period, kind, threshold), so concurrent evaluations of the same spend, stream
        redeliveries and replays all race for one conditional write: exactly one wins.
        """
        item = AlertItem(
            keys.org_pk(alert.org), keys.alert_sk(alert.period, alert.kind.value, alert.threshold.key),
            org=alert.org, period=alert.period, kind=alert.kind.value, threshold=alert.threshold.key,
            threshold_cents=alert.threshold_cents, budget_cents=alert.budget_cents, spend_cents=alert.spend_cents,
            currency=alert.currency, invoice_id=alert.invoice_id, crossed_at=alert.crossed_at,
            event_id=alert.event_id,
        )
        for attempt in range(TRANSACTION_TRIES + 1):
            try:
                with TransactWrite(connection=AlertItem._get_connection().connection) as tx:
                    tx.save(item, condition=AlertItem.pk.does_not_exist())
                    tx.save(notice_item(event), condition=NoticeItem.pk.does_not_exist())
                return True
            except TransactWriteError as error:
                codes = [reason.code if reason is not None else None for reason in error.cancellation_reasons or []]
                if "ConditionalCheckFailed" in codes:
                    return False
                if "TransactionConflict" not in codes or attempt == TRANSACTION_TRIES:
                    raise  # the stream batch is retried
                # Another writer holds one of the items: wait a little and look again.
                time.sleep(random.randint(0, 20 * 2**attempt) / 1000)  # full jitter, milliseconds
        return False
