"""Plans with monthly fees, and an organisation's subscriptions as a timeline of changes.

A subscription is not a stored state but the result of its changes: "from `effective_at`, the
org holds `plan` of this family" (None: holds nothing, i.e. cancelled). Changes are ordered by
when they take effect (ties by their id), never by when they arrived, so the same set of changes
gives the same segments whatever order they were recorded in, and a backdated change simply
slots in where it belongs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .catalog import Category
from .periods import Period


@dataclass(frozen=True)
class Plan:
    """A recurring fee. An org holds at most one plan per family at a time (one support plan)."""

    code: str
    family: str
    name: str
    category: Category
    monthly_fee: Decimal  # dollars per calendar month


@dataclass(frozen=True)
class PlanChange:
    id: str  # the caller's change id: recording it twice changes nothing
    family: str
    plan: str | None  # None cancels
    effective_at: datetime  # whole seconds, UTC
    recorded_at: datetime

    @property
    def order(self) -> tuple[datetime, str]:
        return self.effective_at, self.id

    def same_request(self, other: PlanChange) -> bool:
        return (self.family, self.plan, self.effective_at) == (other.family, other.plan, other.effective_at)


@dataclass(frozen=True)
class Segment:
    """The org held `plan` from `start` until `end` (None: still holds it)."""

    family: str
    plan: str
    start: datetime
    end: datetime | None


def segments(changes: Iterable[PlanChange]) -> list[Segment]:
    """Every family's plan over time; a change to the plan already held continues the same segment."""
    by_family: dict[str, list[PlanChange]] = {}
    for change in sorted(changes, key=lambda c: c.order):
        by_family.setdefault(change.family, []).append(change)
    found: list[Segment] = []
    for family, ordered in sorted(by_family.items()):
        held: tuple[str, datetime] | None = None
        for change in ordered:
            if held is not None and change.plan == held[0]:
                continue
            if held is not None:
                found.append(Segment(family, held[0], held[1], change.effective_at))
            held = (change.plan, change.effective_at) if change.plan is not None else None
        if held is not None:
            found.append(Segment(family, held[0], held[1], None))
    return found


def current_plans(changes: Iterable[PlanChange], moment: datetime) -> dict[str, Segment]:
    """The plan each family holds at `moment`."""
    return {s.family: s for s in segments(changes) if s.start <= moment and (s.end is None or moment < s.end)}


@dataclass(frozen=True)
class Timeline:
    """An org's recorded plan changes; `version` goes up with each, `materialized` says what lines it wrote."""

    org: str
    changes: tuple[PlanChange, ...]
    version: int
    materialized: str | None

    def change(self, change_id: str) -> PlanChange | None:
        return next((c for c in self.changes if c.id == change_id), None)


def materialized_mark(version: int, period: Period) -> str:
    """What a timeline records once `version`'s lines are written as of `period`: the hourly sweep skips an org
    whose mark is this version's in the current month (next month's drafts need writing when the month turns)."""
    return f"{version}@{period}"
