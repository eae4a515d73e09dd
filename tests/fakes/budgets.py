"""In-memory `Budgets` and `Alerts` with the table's guarantees (tests/contract/test_contract_budgets.py holds
them to it).

An alert sits at its position in the table, `ALERT#{period}#{kind}#{threshold}` (the key builder's), and is
stored together with its customer event in one `MemoryTransaction`: both or neither, and only while neither
exists. Budgets and alerts are frozen values, so a read hands them out as they are.
"""

from __future__ import annotations

from chalicelib.domain.budgets import Alert, Budget
from chalicelib.domain.notifications import CustomerEvent
from chalicelib.storage import keys

from .notices import MemoryNotices
from .transaction import TABLE_LOCK, MemoryTransaction, TransactionCancelled


class MemoryBudgets:
    def __init__(self) -> None:
        self._budgets: dict[str, Budget] = {}

    def get(self, org: str) -> Budget | None:
        return self._budgets.get(org)

    def get_many(self, orgs: set[str]) -> dict[str, Budget]:
        return {org: self._budgets[org] for org in orgs if org in self._budgets}

    def put(self, budget: Budget) -> None:
        self._budgets[budget.org] = budget


def _position(alert: Alert) -> str:
    return keys.alert_sk(alert.period, alert.kind.value, alert.threshold.key)


class MemoryAlerts:
    def __init__(self, notices: MemoryNotices | None = None) -> None:
        self.notices = notices if notices is not None else MemoryNotices()  # where an alert's event is stored
        self._alerts: dict[tuple[str, str], Alert] = {}  # (org, position) → alert

    def for_period(self, org: str, period: str) -> list[Alert]:
        prefix = keys.alert_period_prefix(period)
        with TABLE_LOCK:  # a read sees the alerts before or after a transaction, never in between
            stored = sorted(self._alerts.items())
        return [alert for (owner, position), alert in stored if owner == org and position.startswith(prefix)]

    def history(self, org: str, limit: int, after: str | None) -> tuple[list[Alert], str | None]:
        with TABLE_LOCK:
            positions = sorted((position for owner, position in self._alerts
                                if owner == org and (after is None or position < after)), reverse=True)
        page = positions[:limit]
        return [self._alerts[(org, position)] for position in page], page[-1] if len(positions) > limit else None

    def record(self, alert: Alert, event: CustomerEvent) -> bool:
        key = (alert.org, _position(alert))

        def store() -> None:
            self._alerts[key] = alert

        tx = MemoryTransaction()
        tx.check(f"alert {key[1]}", lambda: key not in self._alerts)
        tx.write(store)
        self.notices.storing(event)(tx)
        try:
            tx.commit()
        except TransactionCancelled:
            return False
        return True
