"""Prices, rounding, free allowances and tiers: the money rules of the domain."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.catalog import Category
from chalicelib.domain.errors import UnknownMeter, UnknownRegion, ValidationFailed
from chalicelib.domain.lines import LineItem, LineKind, price_lines, tiered_value, totals, usage_line_id
from chalicelib.domain.money import Money, cents_from_dollars
from chalicelib.domain.periods import Period
from chalicelib.domain.pricebook import Tier, quote

NOV = Period(2026, 11)
D = Decimal


def line(quantity: str, meter: str = "machine_runtime", region: str = "iad", attrs=None, app="web",
         kind=LineKind.USAGE) -> LineItem:
    q = quote(meter, region, attrs or {"preset": "shared-cpu-1x"}, NOV) if meter == "machine_runtime" else quote(
        meter, region, attrs or {}, NOV)
    return LineItem(
        id=usage_line_id(q, app, region, str(NOV), kind is LineKind.LATE_USAGE), kind=kind, category=q.category,
        product=q.product, description="x", app=app, region=region, resource=q.resource, meter=q.meter,
        quantity=D(quantity), unit=q.unit, display_unit=q.display_unit, display_divisor=q.display_divisor,
        unit_price=q.rate.unit_price, price_per=q.rate.price_per, price_unit=q.rate.price_unit,
        tiers=q.rate.tiers, free_pool=q.free_pool, free_allowance=q.rate.free_allowance,
        price_version=q.price_version, usage_period=str(NOV), event_count=1, first_usage_at=None,
        last_usage_at=None,
    )


def test_rounding_is_half_up_to_the_cent():
    assert cents_from_dollars(D("0.005")) == 1
    assert cents_from_dollars(D("0.0049999")) == 0
    assert cents_from_dollars(D("1.015")) == 102
    assert cents_from_dollars(D("-0.005")) == -1


def test_rounding_refuses_float():
    with pytest.raises(TypeError):
        cents_from_dollars(0.1)  # type: ignore[arg-type]


def test_money_display():
    assert Money(123456).display() == "$1,234.56"
    assert Money(-5).display() == "-$0.05"


def test_shared_cpu_month_in_iad():
    # 30 days of shared-cpu-1x: 2,592,000 s × $0.00000075 = $1.944 → $1.94
    priced = price_lines([line("2592000")])
    assert priced[0].amount_cents == 194


def test_region_multiplier_and_extra_memory():
    q = quote("machine_runtime", "gru", {"preset": "shared-cpu-1x", "memory_mb": "1280"}, NOV)
    # (0.00000075 + 1 GB × 0.00000193) × 1.615
    assert q.rate.unit_price == (D("0.00000075") + D("0.00000193")) * D("1.615")
    assert q.resource == "shared-cpu-1x 1280 MB"


def test_volume_prorated_hourly():
    # 10 GB for a 720-hour month = 7200 GB-hours = 10 GB-months × $0.15 = $1.50
    assert price_lines([line("7200", "volume_storage")])[0].amount_cents == 150


def test_snapshot_free_allowance_is_shared_across_lines_of_the_org():
    a = line("5000", "snapshot_storage", app="a")
    b = line("5000", "snapshot_storage", app="b")
    priced = {p.app: p for p in price_lines([a, b])}
    assert sum((p.free_quantity for p in priced.values()), D(0)) == D(7200)
    # 10,000 GB-hours less 7,200 free = 2,800 GB-hours × 0.08 / 720 = $0.3111 → 31 cents in all
    assert sum(p.amount_cents for p in priced.values()) in (31, 32)
    assert totals(priced.values()).total_cents == sum(p.amount_cents for p in priced.values())


def used_at(item: LineItem, day: int, hour: int = 0, period: str = "2026-11", line_id: str | None = None,
            kind: LineKind | None = None) -> LineItem:
    """The line first used at that moment of its period (and, when given, with that id and kind)."""
    first = datetime(int(period[:4]), int(period[5:]), day, hour, tzinfo=UTC)
    return replace(item, first_usage_at=first, last_usage_at=first, usage_period=period, id=line_id or item.id,
                   kind=kind or item.kind)


def test_free_allowance_goes_first_to_the_line_used_first_whatever_the_line_ids():
    # Ten single-host certificates are free per org and period; the later-used line has the smaller id.
    later = used_at(line("8", "certificate_single", app="a"), day=20, line_id="li_0")
    earlier = used_at(line("8", "certificate_single", app="b"), day=3, line_id="li_f")
    priced = {p.id: p for p in price_lines([later, earlier])}
    assert (priced["li_f"].free_quantity, priced["li_f"].amount_cents) == (D(8), 0)
    assert (priced["li_0"].free_quantity, priced["li_0"].amount_cents) == (D(2), 60)


def test_lines_first_used_at_the_same_moment_share_the_allowance_in_line_id_order():
    a = used_at(line("8", "certificate_single", app="a"), day=3, line_id="li_b")
    b = used_at(line("8", "certificate_single", app="b"), day=3, line_id="li_a")
    priced = {p.id: p.free_quantity for p in price_lines([a, b])}
    assert priced == {"li_a": D(8), "li_b": D(2)}


def test_late_usage_consumes_what_its_own_period_left():
    # October's own invoice used 7 of its 10 free certificates; December's usage has its own 10.
    late = used_at(line("5", "certificate_single", app="a"), day=30, period="2026-10", kind=LineKind.LATE_USAGE)
    current = used_at(line("12", "certificate_single", app="b"), day=2, period="2026-12")
    used = {("2026-10", "certificate_single"): D(7)}
    priced = {p.usage_period: p for p in price_lines([late, current], used_before=used)}
    assert (priced["2026-10"].free_quantity, priced["2026-10"].amount_cents) == (D(3), 20)
    assert (priced["2026-12"].free_quantity, priced["2026-12"].amount_cents) == (D(10), 20)


def test_late_usage_of_a_period_whose_allowance_was_used_up_gets_none():
    late = used_at(line("5", "certificate_single"), day=30, period="2026-10", kind=LineKind.LATE_USAGE)
    [priced] = price_lines([late], used_before={("2026-10", "certificate_single"): D(10)})
    assert (priced.free_quantity, priced.amount_cents) == (D(0), 50)


@st.composite
def pool_lines(draw: st.DrawFn) -> tuple[list[LineItem], Decimal]:
    count = draw(st.integers(1, 6))
    base = line("1", "certificate_single")
    lines = []
    for index in range(count):
        quantity = D(draw(st.integers(0, 12)))
        day, hour = draw(st.integers(1, 28)), draw(st.integers(0, 23))
        lines.append(replace(used_at(base, day, hour, line_id=f"li_{index:02d}"), quantity=quantity))
    return lines, D(draw(st.integers(0, 14)))


@given(pool_lines())
def test_the_allowance_left_fills_lines_in_order_of_first_use(case: tuple[list[LineItem], Decimal]):
    lines, used_elsewhere = case
    priced = price_lines(lines, used_before={("2026-11", "certificate_single"): used_elsewhere})
    left = max(D(0), D(10) - used_elsewhere)
    assert sum((p.free_quantity for p in priced), D(0)) == min(left, sum((x.quantity for x in lines), D(0)))
    by_use = sorted(priced, key=lambda p: (p.first_usage_at, p.id))
    for earlier, later in zip(by_use, by_use[1:], strict=False):
        assert 0 <= earlier.free_quantity <= earlier.quantity
        # Nothing goes to a later-used line while an earlier one still pays for some of its quantity.
        assert earlier.free_quantity == earlier.quantity or later.free_quantity == 0
    for p in priced:
        assert p.amount_cents == cents_from_dollars((p.quantity - p.free_quantity) * D("0.10"))


def test_egress_priced_by_region_group():
    assert price_lines([line("100", "egress", "fra")])[0].amount_cents == 200
    assert price_lines([line("100", "egress", "nrt")])[0].amount_cents == 400
    assert price_lines([line("100", "egress", "bom")])[0].amount_cents == 1200


def test_graduated_tiers():
    tiers = (Tier(D(100), D("1.00")), Tier(D(1000), D("0.50")), Tier(None, D("0.10")))
    assert tiered_value(D(50), D(0), D(1), tiers) == D(50)
    assert tiered_value(D(300), D(0), D(1), tiers) == D(100) + D(100)
    assert tiered_value(D(2000), D(0), D(1), tiers) == D(100) + D(450) + D(100)


def test_quote_errors_are_named():
    with pytest.raises(UnknownMeter):
        quote("bitcoin_mining", "iad", {}, NOV)
    with pytest.raises(UnknownRegion):
        quote("egress", "xxx", {}, NOV)
    with pytest.raises(UnknownRegion):
        quote("machine_runtime", "bom", {"preset": "shared-cpu-1x"}, NOV)
    with pytest.raises(ValidationFailed):
        quote("machine_runtime", "iad", {"preset": "shared-cpu-1x", "memory_mb": "100"}, NOV)
    with pytest.raises(ValidationFailed):
        quote("egress", None, {}, NOV)


def test_late_usage_has_its_own_line():
    q = quote("egress", "iad", {}, NOV)
    assert usage_line_id(q, "web", "iad", "2026-10", True) != usage_line_id(q, "web", "iad", "2026-10", False)
    assert usage_line_id(q, "web", "iad", "2026-10", True) == usage_line_id(q, "web", "iad", "2026-10", True)


def test_categories():
    assert quote("support_plan", None, {"plan": "standard"}, NOV).category is Category.SUPPORT
    assert quote("support_plan", None, {"plan": "standard"}, NOV).recurring


quantities = st.decimals(min_value=D("0.000001"), max_value=D("100000"), places=6, allow_nan=False)


@given(st.lists(quantities, min_size=1, max_size=30), st.randoms())
def test_aggregation_is_order_and_batching_independent(parts, rnd):
    """However events are ordered or grouped, the line's quantity and amount are the same."""
    shuffled = parts[:]
    rnd.shuffle(shuffled)
    first = price_lines([line(str(sum(parts, D(0))))])[0]
    second = price_lines([line(str(sum(shuffled, D(0))))])[0]
    assert (first.quantity, first.amount_cents) == (second.quantity, second.amount_cents)


@given(st.lists(st.tuples(st.sampled_from(["egress", "volume_storage", "snapshot_storage"]), quantities,
                          st.sampled_from(["a", "b", "c"])), min_size=1, max_size=20))
def test_total_is_the_sum_of_line_amounts(rows):
    lines = {}
    for meter, qty, app in rows:
        candidate = line(str(qty), meter, "iad", app=app)
        lines[candidate.id] = candidate
    priced = price_lines(lines.values())
    assert totals(priced).total_cents == sum(p.amount_cents for p in priced)
    assert all(isinstance(p.amount_cents, int) for p in priced)
