"""Subscription requests and the JSON of an org's plans over time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, StringConstraints

from ..domain.money import cents_from_dollars
from ..domain.periods import Period, utc_iso
from ..domain.plans import Timeline, current_plans
from ..domain.pricebook import plan_for
from .schemas import Identifier, _Strict, money

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class PlanChangeIn(_Strict):
    """Subscribe to `plan`, or change to it from the family's current plan, from `effective_at` (default: now)."""

    change_id: Identifier
    plan: Code
    effective_at: AwareDatetime | None = None


class PlanCancelIn(_Strict):
    """Hold no plan of `family` from `effective_at` (default: now)."""

    change_id: Identifier
    family: Code
    effective_at: AwareDatetime | None = None


def subscriptions_json(org: str, timeline: Timeline | None, currency: str, now: datetime) -> dict[str, Any]:
    changes = sorted(timeline.changes, key=lambda c: c.order) if timeline else []
    held = []
    for family, segment in sorted(current_plans(changes, now).items()):
        plan, _ = plan_for(segment.plan, Period.of(now))
        held.append({"family": family, "plan": plan.code, "name": plan.name,
                     "monthly_fee": money(cents_from_dollars(plan.monthly_fee), currency),
                     "since": utc_iso(segment.start)})
    return {
        "org": org,
        "version": timeline.version if timeline else 0,
        "subscriptions": held,
        "changes": [{"change_id": c.id, "family": c.family, "plan": c.plan, "effective_at": utc_iso(c.effective_at),
                     "recorded_at": utc_iso(c.recorded_at)} for c in changes],
    }
