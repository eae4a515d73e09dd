"""Request schemas and response shapes of budgets, alerts, webhook endpoints and their deliveries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..domain.budgets import MAX_BUDGET_CENTS, MAX_PERCENT, MAX_THRESHOLDS, Budget, Threshold
from ..domain.endpoints import MAX_URL_LENGTH, Delivery, WebhookEndpoint
from ..domain.notifications import EventType
from ..domain.periods import utc_iso
from ..services.budgets import BudgetStatus, alert_json

Cents = Annotated[int, Field(strict=True, ge=1, le=MAX_BUDGET_CENTS)]
EventTypeName = Literal[
    "invoice.finalized", "invoice.synced", "invoice.payment_succeeded", "invoice.payment_failed",
    "invoice.sync_delayed", "budget.threshold_crossed",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThresholdIn(_Strict):
    percent: Annotated[int, Field(strict=True, ge=1, le=MAX_PERCENT)] | None = None
    amount_cents: Cents | None = None

    @model_validator(mode="after")
    def one_of(self) -> ThresholdIn:
        if (self.percent is None) == (self.amount_cents is None):
            raise ValueError("give either percent or amount_cents")
        return self

    def threshold(self) -> Threshold:
        return Threshold(percent=self.percent, amount_cents=self.amount_cents)


class BudgetIn(_Strict):
    amount_cents: Cents
    thresholds: list[ThresholdIn] = Field(default_factory=lambda: [ThresholdIn(percent=p) for p in (50, 80, 100)],
                                          max_length=MAX_THRESHOLDS)


class WebhookEndpointIn(_Strict):
    url: Annotated[str, StringConstraints(min_length=8, max_length=MAX_URL_LENGTH)]
    event_types: list[EventTypeName] = Field(min_length=1, max_length=len(EventType))

    def types(self) -> frozenset[EventType]:
        return frozenset(EventType(name) for name in self.event_types)


def budget_json(budget: Budget) -> dict[str, Any]:
    return {
        "org": budget.org, "amount_cents": budget.amount_cents, "currency": budget.currency,
        "thresholds": [{"percent": t.percent, "amount_cents": t.amount_cents} for t in budget.thresholds],
        "updated_at": utc_iso(budget.updated_at),
    }


def budget_status_json(status: BudgetStatus) -> dict[str, Any]:
    """The budget section of the upcoming invoice: how much is used, and which thresholds fired."""
    return {
        "amount_cents": status.budget.amount_cents, "period": status.period,
        "spent_cents": status.spent_cents, "used_percent": status.used_percent,
        "projected_cents": status.projected_cents,
        "thresholds_crossed": [alert_json(a) for a in sorted(status.alerts, key=lambda a: a.crossed_at)],
    }


def endpoint_json(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id, "org": endpoint.org, "url": endpoint.url,
        "event_types": sorted(t.value for t in endpoint.event_types), "status": endpoint.status.value,
        "created_at": utc_iso(endpoint.created_at),
        "failing_since": utc_iso(endpoint.failing_since) if endpoint.failing_since else None,
        "last_success_at": utc_iso(endpoint.last_success_at) if endpoint.last_success_at else None,
        "disabled_reason": endpoint.disabled_reason,
    }
    if secret is not None:
        body["secret"] = secret  # only in the answer that created it
    return body


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "event_id": delivery.event_id, "event_type": delivery.event_type,
        "event_created": utc_iso(delivery.event_created), "status": delivery.status.value,
        "attempts": delivery.attempts, "first_attempt_at": utc_iso(delivery.first_attempt_at),
        "last_attempt_at": utc_iso(delivery.last_attempt_at), "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error, "last_latency_ms": delivery.last_latency_ms,
        "delivered_at": utc_iso(delivery.delivered_at) if delivery.delivered_at else None,
    }
