"""Cost over time: each bucket's marginal cost in time order, exact to the cent against the line's amount."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.catalog import Category
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.lines import LineItem, LineKind, price_lines
from chalicelib.domain.pricebook import Tier
from chalicelib.domain.usage_series import (
    Granularity,
    GroupBy,
    LineUsage,
    TimeRange,
    build_series,
    hourly_costs,
)

D = Decimal
NOV = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


ZERO, ONE, TWO_CENTS = D(0), D(1), D("0.02")


def make_line(line_id: str = "li_a", *, quantity: Decimal = ZERO, unit_price: Decimal = TWO_CENTS,
              price_per: Decimal = ONE, tiers: tuple[Tier, ...] = (), pool: str | None = None,
              allowance: Decimal = ZERO, app: str = "web", category: Category = Category.NETWORK,
              display_unit: str = "GB", divisor: Decimal = ONE) -> LineItem:
    return LineItem(
        id=line_id, kind=LineKind.USAGE, category=category, product="p", description=f"line {line_id}", app=app,
        region="iad", resource="r", meter="egress", quantity=quantity, unit="GB", display_unit=display_unit,
        display_divisor=divisor, unit_price=unit_price, price_per=price_per, price_unit="GB", tiers=tiers,
        free_pool=pool, free_allowance=allowance, price_version="2026-01", usage_period="2026-11", event_count=1,
        first_usage_at=None, last_usage_at=None,
    )


def priced(*lines: LineItem) -> dict[str, LineItem]:
    return {line.id: line for line in price_lines(lines)}


quantities = st.builds(lambda units, places: D(units).scaleb(-places),
                       st.integers(min_value=1, max_value=5_000_000), st.integers(min_value=0, max_value=9))
rates = st.builds(lambda units, places: D(units).scaleb(-places),
                  st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=8))


@st.composite
def tier_sets(draw):
    if not draw(st.booleans()):
        return ()
    bounds = sorted(draw(st.sets(st.integers(1, 10_000), min_size=1, max_size=3)))
    prices = [draw(rates) for _ in range(len(bounds) + 1)]
    return tuple(Tier(D(b), p) for b, p in zip(bounds, prices, strict=False)) + (Tier(None, prices[-1]),)


@st.composite
def pooled_lines(draw):
    """One to three lines sharing a free pool, each with its hourly buckets (hours may repeat)."""
    allowance = draw(st.sampled_from([D(0), D(10), D("7200"), D("0.5")]))
    price_per = draw(st.sampled_from([D(1), D(720), D(3600)]))
    tiers = draw(tier_sets())
    out = []
    for n in range(draw(st.integers(1, 3))):
        hours = draw(st.lists(st.tuples(st.integers(0, 24 * 30 - 1), quantities), min_size=1, max_size=30))
        line = make_line(f"li_{n}", quantity=sum((q for _, q in hours), D(0)), unit_price=draw(rates),
                         price_per=price_per, tiers=tiers, pool="pool", allowance=allowance)
        out.append((line, [(NOV + h * HOUR, q) for h, q in hours]))
    return out


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(pooled_lines())
def test_bucket_costs_add_up_to_the_line_amount_to_the_cent(lines):
    prices = priced(*(line for line, _ in lines))
    for line, hours in lines:
        costs = hourly_costs(prices[line.id], hours)
        assert sum(cost for _, _, cost in costs) == prices[line.id].amount_cents
        assert all(cost >= 0 for _, _, cost in costs)  # marginal costs of a non-decreasing price never go negative
        assert [moment for moment, _, _ in costs] == sorted(moment for moment, _ in hours)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(pooled_lines())
def test_day_costs_are_the_sums_of_their_hour_costs(lines):
    prices = priced(*(line for line, _ in lines))
    usages = [LineUsage(prices[line.id], hours) for line, hours in lines]
    by_hour = [build_series(usages, TimeRange(NOV + timedelta(days=d), NOV + timedelta(days=d + 7), Granularity.HOUR),
                            GroupBy.LINE) for d in range(0, 35, 7)]
    by_day = build_series(usages, TimeRange(NOV, NOV + timedelta(days=30), Granularity.DAY), GroupBy.LINE)
    for series in by_day.series:
        hourly = [point for week in by_hour for s in week.series if s.group == series.group for point in s.points]
        for point in series.points:
            in_day = [p.cost_cents for p in hourly if point.start <= p.start < point.start + timedelta(days=1)]
            assert point.cost_cents == sum(in_day)
    assert by_day.cost_cents == sum(line.amount_cents for line in prices.values())


def test_free_allowance_goes_to_the_earliest_usage():
    # 10 GB-months free (7,200 GB-hours) at $0.08 per GB-month: the first 7,200 GB-hours cost nothing.
    line = make_line(quantity=D(10_800), unit_price=D("0.08"), price_per=D(720), pool="snap", allowance=D(7200))
    hours = [(NOV + 2 * HOUR, D(3600)), (NOV, D(3600)), (NOV + HOUR, D(3600))]
    costs = hourly_costs(priced(line)[line.id], hours)
    assert [cost for _, _, cost in costs] == [0, 0, 40]  # 3,600 GB-hours beyond the free ones: $0.40


def test_tiers_apply_to_the_cumulative_quantity():
    tiers = (Tier(D(100), D("0.10")), Tier(None, D("0.05")))
    line = make_line(quantity=D(300), tiers=tiers)
    costs = hourly_costs(priced(line)[line.id], [(NOV, D(50)), (NOV + HOUR, D(100)), (NOV + 2 * HOUR, D(150))])
    # 50 at $0.10; then 50 at $0.10 and 50 at $0.05; then 150 at $0.05
    assert [cost for _, _, cost in costs] == [500, 750, 750]


def test_rounding_is_cumulative_so_small_buckets_still_add_up():
    line = make_line(quantity=D(3), unit_price=D("0.004"))  # $0.012 → 1 cent for the line
    costs = hourly_costs(priced(line)[line.id], [(NOV + h * HOUR, D(1)) for h in range(3)])
    # cumulative value 0.004, 0.008, 0.012 → 0, 1, 1 cents: the cent lands where the total crosses half a cent
    assert [cost for _, _, cost in costs] == [0, 1, 0]


def test_buckets_that_do_not_add_up_to_the_line_are_refused():
    line = make_line(quantity=D(5))
    with pytest.raises(ValueError):
        hourly_costs(priced(line)[line.id], [(NOV, D(4))])


def test_a_bucket_inside_the_range_is_costed_with_the_usage_before_the_range():
    line = make_line(quantity=D(8000), unit_price=D("0.08"), price_per=D(720), pool="snap", allowance=D(7200))
    usage = LineUsage(priced(line)[line.id], [(NOV, D(7200)), (NOV + timedelta(days=3), D(800))])
    later = build_series([usage], TimeRange(NOV + timedelta(days=2), NOV + timedelta(days=4), Granularity.DAY),
                         GroupBy.APP)
    assert [p.cost_cents for p in later.series[0].points] == [0, 9]  # 800 GB-hours × $0.08/720 = $0.0889
    assert later.series[0].quantities == {"GB": D(800)}


def test_series_group_lines_and_keep_units_apart():
    web = make_line("li_w", quantity=D(2), app="web")
    db = make_line("li_d", quantity=D(1440), app="db", category=Category.STORAGE, display_unit="GB-months",
                   divisor=D(720), unit_price=D("0.15"), price_per=D(720))
    api = make_line("li_x", quantity=D(1), app="web", category=Category.STORAGE, display_unit="GB-months",
                    divisor=D(720), unit_price=D("0.15"), price_per=D(720))
    lines = priced(web, db, api)
    usages = [LineUsage(lines["li_w"], [(NOV, D(2))]), LineUsage(lines["li_d"], [(NOV, D(720)), (NOV + HOUR, D(720))]),
              LineUsage(lines["li_x"], [(NOV + HOUR, D(1))])]
    by_app = build_series(usages, TimeRange(NOV, NOV + timedelta(days=2), Granularity.DAY), GroupBy.APP)
    assert [s.group for s in by_app.series] == ["db", "web"]
    web_day = by_app.series[1].points[0]
    assert web_day.quantities == {"GB": D(2), "GB-months": D("0.001389")}
    assert web_day.unit_costs == {"GB": 4, "GB-months": 0}
    assert web_day.cost_cents == 4
    assert by_app.series[0].points[0].quantities == {"GB-months": D(2)}
    assert [p.cost_cents for p in by_app.totals] == [34, 0]
    by_line = build_series(usages, TimeRange(NOV, NOV + timedelta(days=1), Granularity.HOUR), GroupBy.LINE)
    assert {s.group: s.label for s in by_line.series} == {"li_d": "line li_d", "li_w": "line li_w",
                                                          "li_x": "line li_x"}
    assert len(by_line.series[0].points) == 24


@pytest.mark.parametrize("start, end, granularity, problem", [
    (NOV, NOV + timedelta(days=7, hours=1), Granularity.HOUR, "at most 7 days"),
    (NOV, NOV + timedelta(days=93), Granularity.DAY, "at most 92 days"),
    (NOV + timedelta(minutes=30), NOV + timedelta(days=1), Granularity.HOUR, "must each start an hour"),
    (NOV + HOUR, NOV + timedelta(days=1), Granularity.DAY, "must each start a day"),
    (NOV, NOV, Granularity.DAY, "after `from`"),
])
def test_ranges_are_bounded_and_aligned(start, end, granularity, problem):
    with pytest.raises(ValidationFailed, match=problem):
        TimeRange(start, end, granularity)


def test_ranges_at_their_limits_are_accepted():
    assert len(TimeRange(NOV, NOV + timedelta(days=7), Granularity.HOUR).periods()) == 168
    assert len(TimeRange(NOV, NOV + timedelta(days=92), Granularity.DAY).periods()) == 92


def test_a_line_priced_elsewhere_still_sums_exactly():
    # The last bucket is pinned to the line's amount, so the sum is exact even for a line whose amount
    # was fixed some other way (a frozen line from before a price change).
    line = replace(make_line(quantity=D(10)), amount_cents=17)
    assert sum(cost for _, _, cost in hourly_costs(line, [(NOV, D(5)), (NOV + HOUR, D(5))])) == 17
