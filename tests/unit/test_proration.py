"""Recurring fees prorated to the second: the pieces of a period always add up to the plan's price
for the time held, a full period costs exactly the fee, and the lines depend on the changes, never
on the order they arrived in."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.lines import LineKind
from chalicelib.domain.periods import Period
from chalicelib.domain.plans import PlanChange, current_plans, segments
from chalicelib.domain.pricebook import plan_for
from chalicelib.domain.proration import charges_for, earned, period_seconds, piece
from chalicelib.domain.recurring import recurring_lines

NOV, DEC, JAN, FEB = Period(2026, 11), Period(2026, 12), Period(2027, 1), Period(2027, 2)
FEES = {"support-standard": 2900, "support-premium": 19900}  # cents, written out here on purpose
SPAN_START = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2027, 2, 1, tzinfo=UTC) - SPAN_START).total_seconds())


def at(seconds: int) -> datetime:
    return SPAN_START + timedelta(seconds=seconds)


def exact_cents(fee_cents: int, seconds: int, period: Period) -> Decimal:
    return Decimal(fee_cents) * seconds / period_seconds(period)


changes_strategy = st.lists(
    st.tuples(st.integers(0, SPAN_SECONDS - 1), st.sampled_from([*FEES, None])), min_size=1, max_size=12,
)


def as_changes(raw: list[tuple[int, str | None]]) -> list[PlanChange]:
    return [PlanChange(f"c{i:02d}", "support", plan, at(offset), at(0)) for i, (offset, plan) in enumerate(raw)]


def held_seconds(changes: list[PlanChange], period: Period) -> dict[str, list[tuple[datetime, datetime]]]:
    """Independently of segments(): walk the period second-boundaries where the plan changes."""
    held: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    points = sorted({period.start, period.end, *(c.effective_at for c in changes if period.start < c.effective_at
                                                   < period.end)})
    for start, end in zip(points, points[1:], strict=False):
        plan = current_plans(changes, start).get("support")
        if plan is not None:
            held[plan.plan].append((start, end))
    return held


@given(st.sampled_from([NOV, DEC, JAN, FEB]), st.sampled_from(sorted(FEES.values()) + [1, 99999, 123457]),
       st.lists(st.integers(1, 31 * 86400 - 1), max_size=20))
def test_pieces_between_any_cuts_add_up_to_the_span_and_a_full_period_costs_the_fee(period, fee, cuts):
    length = period_seconds(period)
    points = sorted({0, length, *(c for c in cuts if c < length)})
    moments = [period.start + timedelta(seconds=p) for p in points]
    pieces = [piece(fee, period, a, b) for a, b in zip(moments, moments[1:], strict=False)]
    assert sum(pieces) == fee
    for (a, b), amount in zip(zip(points, points[1:], strict=False), pieces, strict=True):
        # each piece is within a cent of its exact share
        assert abs(Decimal(amount) - exact_cents(fee, b - a, period)) < 1


@given(changes_strategy, st.randoms())
@settings(max_examples=200)
def test_lines_of_any_sequence_of_changes_cost_exactly_the_time_held_whatever_the_arrival_order(raw, rnd):
    changes = as_changes(raw)
    shuffled = changes[:]
    rnd.shuffle(shuffled)
    for period in (NOV, DEC, JAN):
        lines = recurring_lines(period, charges_for(period, segments(changes), plan_for), [], late=False)
        again = recurring_lines(period, charges_for(period, segments(shuffled), plan_for), [], late=False)
        assert lines == again  # same ids, amounts, descriptions: arrival order is irrelevant
        by_plan: dict[str, int] = defaultdict(int)
        for line in lines:
            assert line.kind is LineKind.RECURRING and line.usage_period == str(period)
            by_plan[line.resource or ""] += line.amount_cents
        expected = {plan: sum(piece(FEES[plan], period, a, b) for a, b in spans)
                    for plan, spans in held_seconds(changes, period).items()}
        assert {p: c for p, c in by_plan.items() if c} == {p: c for p, c in expected.items() if c}
        for plan, spans in held_seconds(changes, period).items():
            seconds = sum(int((b - a).total_seconds()) for a, b in spans)
            exact = exact_cents(FEES[plan], seconds, period)
            assert abs(by_plan[plan] - exact) <= len(spans)  # at most half a cent off per piece, each way


@given(changes_strategy, changes_strategy)
@settings(max_examples=200)
def test_a_period_changed_after_it_was_invoiced_sums_to_its_new_charges_over_all_invoices(first, later):
    """Invoice a period from one timeline, then change it (more changes, maybe backdated): the late lines
    on the next invoice plus what was billed equal the new timeline's charges, line by line."""
    before = as_changes(first)
    after = before + [PlanChange(f"d{i:02d}", c.family, c.plan, c.effective_at, c.recorded_at)
                      for i, c in enumerate(as_changes(later))]
    for period in (NOV, DEC):
        billed = recurring_lines(period, charges_for(period, segments(before), plan_for), [], late=False)
        late = recurring_lines(period, charges_for(period, segments(after), plan_for), billed, late=True)
        assert all(line.kind is LineKind.LATE_RECURRING for line in late)
        assert all(line.description.startswith(f"Late plan change for {period}") or
                   line.description.startswith(f"Reversal for {period}") for line in late)
        wanted = {c.line_id: c.amount_cents for c in charges_for(period, segments(after), plan_for)}
        net: dict[str, int] = defaultdict(int)
        for line in billed + late:
            net[line.id] += line.amount_cents
        assert {k: v for k, v in net.items() if v} == {k: v for k, v in wanted.items() if v}
        # Invoiced again with nothing new: nothing more is owed.
        assert recurring_lines(period, charges_for(period, segments(after), plan_for), billed + late, True) == []


def test_an_upgrade_mid_month_credits_the_unused_old_plan_and_charges_the_new_to_the_second():
    upgrade = datetime(2026, 11, 20, 14, 3, 5, tzinfo=UTC)
    changes = [PlanChange("a", "support", "support-standard", NOV.start, NOV.start),
               PlanChange("b", "support", "support-premium", upgrade, upgrade)]
    lines = recurring_lines(NOV, charges_for(NOV, segments(changes), plan_for), [], late=False)
    by_description = {line.description: line.amount_cents for line in lines}
    elapsed = int((upgrade - NOV.start).total_seconds())  # 1,692,185 of 2,592,000 seconds
    used = (Decimal(2900) * elapsed / 2592000).quantize(Decimal(1), ROUND_HALF_UP)  # 1893.27... -> 1893
    premium_before = (Decimal(19900) * elapsed / 2592000).quantize(Decimal(1), ROUND_HALF_UP)
    assert by_description == {
        "Support plan: standard · 2026-11": 2900,
        "Unused time on Support plan: standard from 2026-11-20 14:03:05 UTC (prorated)": -(2900 - int(used)),
        "Support plan: premium from 2026-11-20 14:03:05 UTC (prorated)": 19900 - int(premium_before),
    }
    assert sum(by_description.values()) == int(used) + 19900 - int(premium_before)


def test_cancelling_and_resubscribing_to_the_same_plan_bills_only_the_time_held():
    changes = [PlanChange("a", "support", "support-standard", NOV.start, NOV.start),
               PlanChange("b", "support", None, datetime(2026, 11, 11, tzinfo=UTC), NOV.start),
               PlanChange("c", "support", "support-standard", datetime(2026, 11, 21, tzinfo=UTC), NOV.start),
               PlanChange("d", "support", "support-standard", datetime(2026, 11, 25, tzinfo=UTC), NOV.start)]
    lines = recurring_lines(NOV, charges_for(NOV, segments(changes), plan_for), [], late=False)
    assert sum(line.amount_cents for line in lines) == 967 + 967  # ten days, twice: 2900 / 3 each
    assert len(lines) == 3  # the repeated "standard" continues the segment instead of cutting it


def test_earned_is_zero_at_the_start_and_the_fee_at_the_end_of_months_of_every_length():
    for period in (Period(2027, 2), Period(2028, 2), Period(2026, 4), Period(2026, 12)):
        assert earned(19900, period, period.start) == 0
        assert earned(19900, period, period.end) == 19900
        assert earned(19900, period, period.end + timedelta(days=3)) == 19900
