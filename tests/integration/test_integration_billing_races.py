"""Races and arrival order on DynamoDB Local: a plan change racing a finalize lands on exactly one invoice, and
the same plan changes and grants, arriving in any order (concurrently or one by one), give the same invoices."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from threading import Barrier
from typing import Any

from acceptance_support import create_org
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOV, DEC = "inv_202611", "inv_202612"
NOV_START = datetime(2026, 11, 1, tzinfo=UTC)
RECORDED_BEFORE = datetime(2026, 11, 30, 12, tzinfo=UTC)
CLOSED = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
RECORDED_AFTER = datetime(2026, 12, 2, 12, tzinfo=UTC)
EXPIRIES = [None, datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)]


def services() -> tuple[Any, Any, Any]:
    from chalicelib.config import settings as current
    from chalicelib.services.credits import CreditService
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.subscriptions import SubscriptionService

    return SubscriptionService(current()), InvoiceService(), CreditService()


def recurring_for(org: str, period: str) -> tuple[dict[str, dict[str, int]], list[Any]]:
    """Per invoice, the recurring lines billed for `period`; and the period's charges from the final timeline."""
    from chalicelib.domain.periods import Period
    from chalicelib.domain.plans import segments
    from chalicelib.domain.pricebook import plan_for
    from chalicelib.domain.proration import charges_for
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.storage.subscriptions import SubscriptionRepository

    billed: dict[str, dict[str, int]] = defaultdict(dict)
    for invoice_id in (NOV, DEC):
        for line in InvoiceRepository().lines(org, invoice_id):
            if line.kind.value in ("recurring", "late_recurring") and line.usage_period == period:
                billed[invoice_id][line.id] = line.amount_cents
    timeline = SubscriptionRepository().get(org)
    assert timeline is not None
    return billed, charges_for(Period.parse(period), segments(timeline.changes), plan_for)


def gated_services(mode: str) -> tuple[Any, Any]:
    """A finalize and a plan change that meet at chosen points:
    race            both start at once;
    recorded-while-closing  the change is recorded after finalize wrote the recurring lines but before it
                    closes the draft, and writes its own lines only once finalize is done (finalize's guard
                    must notice and write them first);
    closed-first    the change is recorded only once finalize has closed the draft (it must go late)."""
    import threading

    from chalicelib.config import settings as current
    from chalicelib.domain.invoice import InvoiceStatus
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.subscriptions import SubscriptionService
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.storage.subscriptions import SubscriptionRepository

    recorded, closed, finalized = threading.Event(), threading.Event(), threading.Event()
    lines_written = threading.Event()

    class ClosingRepository(InvoiceRepository):
        def transition(self, invoice: Any, target: Any, now: Any, **kwargs: Any) -> Any:
            if target is InvoiceStatus.FINALIZING and mode == "recorded-while-closing":
                assert recorded.wait(30)
            answer = super().transition(invoice, target, now, **kwargs)
            if target is InvoiceStatus.FINALIZING:
                closed.set()
            if target is InvoiceStatus.FINALIZED:
                finalized.set()
            return answer

    class WritingService(SubscriptionService):
        def materialize(self, org: str, now: Any) -> Any:
            answer = super().materialize(org, now)
            lines_written.set()
            return answer

    class ChangingRepository(SubscriptionRepository):
        def record(self, org: str, change: Any, now: Any) -> Any:
            if mode == "closed-first":
                assert closed.wait(30)
            if mode == "recorded-while-closing":
                assert lines_written.wait(30)
            answer = super().record(org, change, now)
            recorded.set()
            return answer

    class ChangingService(SubscriptionService):
        def materialize(self, org: str, now: Any) -> Any:
            if mode == "recorded-while-closing":
                assert finalized.wait(30)
            return super().materialize(org, now)

    closing = ClosingRepository()
    finalizing = InvoiceService(closing, recurring=WritingService(current(), invoices=closing))
    return finalizing, ChangingService(current(), subscriptions=ChangingRepository())


def test_a_plan_change_racing_a_finalize_lands_on_exactly_one_invoice(local_aws):
    subscriptions, _, _ = services()
    landed = {}
    for mode in ("race", "recorded-while-closing", "closed-first", "race"):
        org = create_org("race")
        subscriptions.change(org, "start", None, "support-standard", NOV_START, NOV_START + timedelta(hours=1))
        finalizing, changing = gated_services(mode)
        barrier = Barrier(2)

        def finalize(org: str = org, barrier: Barrier = barrier, service: Any = finalizing) -> None:
            barrier.wait()
            service.finalize(org, NOV, CLOSED)

        def upgrade(org: str = org, barrier: Barrier = barrier, service: Any = changing) -> None:
            barrier.wait()
            service.change(org, "upgrade", None, "support-premium", datetime(2026, 11, 20, tzinfo=UTC), CLOSED)

        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(finalize), pool.submit(upgrade)]:
                future.result(timeout=120)

        billed, charges = recurring_for(org, "2026-11")
        upgrade_lines = {c.line_id for c in charges if c.plan.code == "support-premium" or c.unused}
        assert len(upgrade_lines) == 2
        on = {invoice_id for invoice_id, lines in billed.items() if upgrade_lines & set(lines)}
        assert len(on) == 1, (mode, billed)  # on November (before it closed) or December (late), never both
        landed[mode] = on.pop()
        net: dict[str, int] = defaultdict(int)
        for lines in billed.values():
            for line_id, amount in lines.items():
                net[line_id] += amount
        assert dict(net) == {c.line_id: c.amount_cents for c in charges}, mode
    assert landed["recorded-while-closing"] == NOV and landed["closed-first"] == DEC


plan_changes = st.lists(st.tuples(st.integers(0, 39 * 86400), st.sampled_from(["support-standard",
                                                                                 "support-premium", None])),
                        min_size=1, max_size=5)
grants = st.lists(st.tuples(st.integers(1, 30000), st.sampled_from(range(len(EXPIRIES)))), max_size=3)


@given(plan_changes, st.integers(0, 5), grants, st.randoms())
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
def test_the_same_changes_and_grants_in_any_order_of_arrival_give_the_same_invoices(local_aws, raw, split, raw_grants,
                                                                                    rnd):
    from chalicelib.domain.credits import CreditReason
    from chalicelib.storage.invoices import InvoiceRepository

    subscriptions, invoices, credits = services()
    changes = [(f"c{i}", plan, NOV_START + timedelta(seconds=offset)) for i, (offset, plan) in enumerate(raw)]
    before, after = changes[:split], changes[split:]

    def record(org: str, change: tuple[str, str | None, datetime], now: datetime) -> None:
        change_id, plan, at = change
        subscriptions.change(org, change_id, "support", plan, at, now)

    def give(org: str, index: int) -> None:
        cents, expiry = raw_grants[index]
        credits.grant(org, f"g{index}", cents, CreditReason.PROMOTION, "promo", EXPIRIES[expiry], RECORDED_BEFORE)

    def run(org: str, concurrently: bool) -> dict[str, Any]:
        jobs: list[Any] = [lambda o=org, c=c: record(o, c, RECORDED_BEFORE) for c in before]
        jobs += [lambda o=org, i=i: give(o, i) for i in range(len(raw_grants))]
        later: list[Any] = [lambda o=org, c=c: record(o, c, RECORDED_AFTER) for c in after]
        for group, then in ((jobs, lambda: invoices.finalize(org, NOV, CLOSED) if InvoiceRepository().get(
                org, NOV) else None), (later, lambda: None)):
            if concurrently:
                with ThreadPoolExecutor(max_workers=max(1, len(group))) as pool:
                    for future in [pool.submit(job) for job in group]:
                        future.result()
            else:
                shuffled = group[:]
                rnd.shuffle(shuffled)
                for job in shuffled:
                    job()
            then()
        return {invoice_id: (invoice.status.value, invoice.total_cents,
                             sorted((line.id, line.kind.value, line.amount_cents, line.description)
                                    for line in InvoiceRepository().lines(org, invoice_id)))
                for invoice_id in (NOV, DEC) if (invoice := InvoiceRepository().get(org, invoice_id))}

    first, second = create_org("order"), create_org("order")
    assert run(first, concurrently=True) == run(second, concurrently=False)
