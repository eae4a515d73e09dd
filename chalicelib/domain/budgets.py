"""Monthly budgets and the thresholds that alert on them.

A threshold is a percentage of the budget or an absolute amount. Each is evaluated twice per
period: on the actual month-to-date spend and on the projected month-end total. A threshold
fires at most once per (period, kind): the alert's identity is exactly that, so however often
the same spend is evaluated (concurrent stream batches, retries, replays), one alert exists.
Changing the budget later in the period does not re-arm a threshold that already fired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .errors import ValidationFailed

MAX_THRESHOLDS = 20
MAX_BUDGET_CENTS = 10**12
MAX_PERCENT = 1000
# A run-rate over the first hours of a month multiplies noise by hundreds: projected thresholds
# wait until a day of the period has passed.
PROJECTION_MIN_ELAPSED = timedelta(days=1)


class AlertKind(StrEnum):
    ACTUAL = "actual"  # month-to-date spend reached the threshold
    PROJECTED = "projected"  # the month-end projection reached it


@dataclass(frozen=True)
class Threshold:
    percent: int | None = None
    amount_cents: int | None = None

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.amount_cents is None):
            raise ValidationFailed("a threshold is either a percent of the budget or an amount, not both")
        if self.percent is not None and not 1 <= self.percent <= MAX_PERCENT:
            raise ValidationFailed(f"a percent threshold must be 1 to {MAX_PERCENT}", {"percent": self.percent})
        if self.amount_cents is not None and not 1 <= self.amount_cents <= MAX_BUDGET_CENTS:
            raise ValidationFailed("an amount threshold must be a positive number of cents",
                                   {"amount_cents": self.amount_cents})

    @property
    def key(self) -> str:
        """Stable identity within a budget; part of the alert's key, so it must never change meaning."""
        return f"pct-{self.percent}" if self.percent is not None else f"amt-{self.amount_cents}"

    def cents(self, budget_cents: int) -> int:
        """The spend that crosses it; a percentage is rounded up so it never fires below its share."""
        if self.amount_cents is not None:
            return self.amount_cents
        assert self.percent is not None
        return -(-budget_cents * self.percent // 100)

    @classmethod
    def from_key(cls, key: str) -> Threshold:
        kind, _, value = key.partition("-")
        return cls(percent=int(value)) if kind == "pct" else cls(amount_cents=int(value))


@dataclass(frozen=True)
class Budget:
    org: str
    amount_cents: int
    currency: str
    thresholds: tuple[Threshold, ...]
    updated_at: datetime

    def __post_init__(self) -> None:
        if not 1 <= self.amount_cents <= MAX_BUDGET_CENTS:
            raise ValidationFailed("the budget must be a positive number of cents", {"amount_cents": self.amount_cents})
        if len(self.thresholds) > MAX_THRESHOLDS:
            raise ValidationFailed(f"at most {MAX_THRESHOLDS} thresholds")
        keys = [t.key for t in self.thresholds]
        if len(set(keys)) != len(keys):
            raise ValidationFailed("thresholds must differ from each other", {"thresholds": keys})


@dataclass(frozen=True)
class Crossing:
    threshold: Threshold
    kind: AlertKind
    threshold_cents: int
    spend_cents: int


def crossings(budget: Budget, actual_cents: int, projected_cents: int | None) -> list[Crossing]:
    """Every (threshold, kind) the spend has reached; the caller keeps only those not yet recorded."""
    found = []
    for threshold in budget.thresholds:
        limit = threshold.cents(budget.amount_cents)
        if actual_cents >= limit:
            found.append(Crossing(threshold, AlertKind.ACTUAL, limit, actual_cents))
        if projected_cents is not None and projected_cents >= limit:
            found.append(Crossing(threshold, AlertKind.PROJECTED, limit, projected_cents))
    return found


def projection_counts(period_start: datetime, now: datetime) -> bool:
    return now - period_start >= PROJECTION_MIN_ELAPSED


@dataclass(frozen=True)
class Alert:
    org: str
    period: str
    kind: AlertKind
    threshold: Threshold
    threshold_cents: int
    budget_cents: int
    spend_cents: int
    currency: str
    invoice_id: str
    crossed_at: datetime
    event_id: str
