"""Properties of aggregation, on DynamoDB Local through the service: the invoice is a function of the set of
events alone, whatever order, batching, duplication or resending brought them; and every total is the sum
of its lines, before and after finalize."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.scale import sized

# (meter, region, attributes): few enough that events share lines; with a free allowance (snapshots,
# certificates), a region multiplier, and a price per GB-month stored with its divisor.
PRODUCTS = [
    ("egress", "iad", {}),
    ("egress", "syd", {}),
    ("machine_runtime", "sjc", {"preset": "shared-cpu-1x"}),
    ("machine_runtime", "fra", {"preset": "performance-2x", "memory_mb": "8192"}),
    ("volume_storage", "iad", {}),
    ("snapshot_storage", "fra", {}),
    ("ipv4_address", None, {}),
    ("certificate_single", None, {}),
]
APPS = ["web", "worker"]
PROPERTY_SETTINGS = settings(max_examples=sized(reduced=10, full=25), deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class Draw:
    product: int
    app: int
    quantity: Decimal
    seconds_ago: int


quantities = st.builds(lambda units, places: Decimal(units).scaleb(-places),
                       st.integers(min_value=1, max_value=5_000_000), st.integers(min_value=0, max_value=9))
draws = st.builds(Draw, st.integers(0, len(PRODUCTS) - 1), st.integers(0, len(APPS) - 1), quantities,
                  st.integers(min_value=0, max_value=10**9))


@st.composite
def deliveries(draw: Any) -> tuple[list[Draw], list[list[int]]]:
    """Events, and how producers deliver them: any order, cut into batches, some events resent, some
    batches resent whole (one resend reshuffled)."""
    events = draw(st.lists(draws, min_size=1, max_size=20))
    n = len(events)
    sends = list(draw(st.permutations(range(n))))
    for repeat in draw(st.lists(st.integers(0, n - 1), max_size=n)):
        sends.insert(draw(st.integers(0, len(sends))), repeat)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(sends) - 1)), max_size=5)))
    batches = [sends[a:b] for a, b in zip([0, *cuts], [*cuts, len(sends)], strict=True) if sends[a:b]]
    for index in draw(st.lists(st.integers(0, len(batches) - 1), max_size=2)):
        resent = list(batches[index])
        if draw(st.booleans()):
            resent = list(draw(st.permutations(resent)))
        batches.insert(draw(st.integers(index + 1, len(batches))), resent)
    return events, batches


def new_org() -> str:
    from chalicelib.storage.orgs import OrgRepository

    name = f"prop-{uuid.uuid4().hex[:12]}"
    OrgRepository().upsert(name, "Property Org", "billing@example.com", "usd", datetime.now(UTC))
    return name


def usage(org: str, index: int, item: Draw, now: datetime) -> Any:
    from chalicelib.domain.periods import Period
    from chalicelib.services.usage import UsageEvent

    meter, region, attributes = PRODUCTS[item.product]
    start = Period.of(now).start
    span = max(int((now - start).total_seconds()), 1)  # usage of this period, up to now
    moment = start + timedelta(seconds=item.seconds_ago % span)
    return UsageEvent(f"evt-{index}", org, APPS[item.app], meter, item.quantity, region, attributes, moment)


def deliver(org: str, events: list[Draw], batches: list[list[int]], now: datetime) -> dict[str, list[Any]]:
    """Send the batches in turn; every answer, by event id."""
    from chalicelib.config import settings as app_settings
    from chalicelib.services.usage import record_usage

    answers: dict[str, list[Any]] = {}
    for batch in batches:
        for result in record_usage([usage(org, i, events[i], now) for i in batch], now, app_settings()):
            answers.setdefault(result.id, []).append(result)
    return answers


def invoice_of(org: str, now: datetime) -> Any:
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService

    return InvoiceService().view(org, invoice_id_for(Period.of(now)), now)


def comparable(view: Any) -> tuple[Any, ...]:
    lines = sorted((line.id, line.kind, line.description, line.quantity, line.event_count, line.first_usage_at,
                    line.last_usage_at, line.free_quantity, line.amount_cents) for line in view.lines)
    return view.totals, tuple(lines)


def assert_totals_are_sums_of_lines(view: Any) -> None:
    from chalicelib.domain.lines import LineKind

    amounts = [line.amount_cents for line in view.lines]
    credits = -sum(line.amount_cents for line in view.lines if line.kind is LineKind.CREDIT)
    assert view.totals.total_cents == sum(amounts)
    assert view.totals.credits_cents == credits
    assert view.totals.subtotal_cents == sum(amounts) + credits
    assert view.invoice.total_cents == view.totals.total_cents
    assert sum(view.by_app.values()) == sum(view.by_category.values()) == sum(view.by_region.values()) \
        == view.totals.total_cents


@given(deliveries())
@PROPERTY_SETTINGS
def test_the_invoice_is_the_same_whatever_order_batching_or_duplication_brought_the_events(local_aws, plan):
    from chalicelib.services.invoices import InvoiceService

    events, batches = plan
    now = datetime.now(UTC)
    reference, shuffled = new_org(), new_org()

    once = deliver(reference, events, [list(range(len(events)))], now)
    assert all([a.status for a in answers] == ["accepted"] for answers in once.values()), once
    answers = deliver(shuffled, events, batches, now)
    for event_id, replies in answers.items():
        statuses = [reply.status for reply in replies]
        assert statuses.count("accepted") == 1 and set(statuses) <= {"accepted", "duplicate"}, (event_id, statuses)
        assert len({reply.line_id for reply in replies}) == 1, replies  # every answer names the same line
    assert set(answers) == set(once)

    expected, got = invoice_of(reference, now), invoice_of(shuffled, now)
    assert comparable(got) == comparable(expected)
    # Each line holds exactly the events the answers placed in it.
    for line in got.lines:
        placed = [events[int(i.removeprefix("evt-"))].quantity for i, r in answers.items() if r[0].line_id == line.id]
        assert line.quantity == sum(placed) and line.event_count == len(placed), line.id
    assert_totals_are_sums_of_lines(got)

    closed = [InvoiceService().finalize(org, got.invoice.id, now) for org in (reference, shuffled)]
    assert closed[0].total_cents == closed[1].total_cents == got.totals.total_cents
    frozen = invoice_of(shuffled, now)
    assert comparable(frozen) == comparable(got)
    assert_totals_are_sums_of_lines(frozen)


@given(
    deliveries(),
    st.lists(st.tuples(st.sampled_from(["charge", "credit"]), st.integers(min_value=1, max_value=50_000)),
             max_size=4),
)
@settings(PROPERTY_SETTINGS, max_examples=sized(reduced=6, full=15))
def test_the_total_is_the_sum_of_the_lines_with_charges_and_credits(local_aws, plan, items):
    from chalicelib.domain.errors import Conflict
    from chalicelib.domain.lines import LineKind
    from chalicelib.services.invoices import InvoiceService

    events, batches = plan
    now = datetime.now(UTC)
    org = new_org()
    deliver(org, events, batches, now)
    service = InvoiceService()
    invoice_id = invoice_of(org, now).invoice.id
    for number, (kind, cents) in enumerate(items):
        line_kind = LineKind.CREDIT if kind == "credit" else LineKind.ONE_OFF
        try:
            service.add_item(org, invoice_id, f"item-{number}", line_kind, cents, f"{kind} {number}", now)
        except Conflict:
            assert kind == "credit"  # refused only when it would take the total below zero
            assert invoice_of(org, now).totals.total_cents - cents < 0
        view = invoice_of(org, now)
        assert_totals_are_sums_of_lines(view)
        assert view.totals.total_cents >= 0

    draft = invoice_of(org, now)
    closed = service.finalize(org, invoice_id, now)
    assert (closed.subtotal_cents, closed.credits_cents, closed.total_cents) == (
        draft.totals.subtotal_cents, draft.totals.credits_cents, draft.totals.total_cents)
    assert closed.line_count == len(draft.lines)
    assert_totals_are_sums_of_lines(invoice_of(org, now))
