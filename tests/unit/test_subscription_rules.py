"""The subscription rules (`services/subscriptions.SubscriptionService`) on the in-memory `Timelines` and
invoices, in milliseconds: a plan's prorated fee on the draft from the second it starts, a change that replaces
the lines, a cancel, idempotent change ids, the window a change may fall in, a materialize that writes only what
differs and computes again when a draft closes under it, a backdated change billed like late usage, and the
hourly sweep. The fake is held to the table by `tests/contract/test_contract_timelines.py`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from fakes.invoices import MemoryInvoices
from fakes.subscriptions import MemoryTimelines
from fakes.transaction import TransactionCancelled, commit

from chalicelib.config import settings
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.invoice import InvoiceStatus, invoice_id_for
from chalicelib.domain.lines import LineItem, LineKind
from chalicelib.domain.periods import Period
from chalicelib.domain.plans import PlanChange
from chalicelib.services.subscriptions import SubscriptionService

ORG, OTHER = "acme", "globex"
NOV, DEC = Period(2026, 11), Period(2026, 12)
NOV_ID, DEC_ID = invoice_id_for(NOV), invoice_id_for(DEC)
NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = 86400
NOV_SECONDS = 30 * DAY


def share(fee_cents: int, seconds: int, length: int = NOV_SECONDS) -> int:
    """The rule, written out independently: a plan held from the start earns fee * elapsed / length, half-up."""
    return int((Decimal(fee_cents) * seconds / length).quantize(Decimal(1), ROUND_HALF_UP))


class CountingTimelines(MemoryTimelines):
    """Counts the writes of recurring lines, and can close a draft just before one lands (a finalize racing)."""

    def __init__(self, invoices: MemoryInvoices) -> None:
        super().__init__(invoices)
        self.writes = 0
        self.close_before_write: str | None = None

    def write_lines(self, org: str, invoice_id: str, version: int, put: list[LineItem], delete: list[str],
                    now: datetime) -> None:
        self.writes += 1
        if self.close_before_write == invoice_id:
            self.close_before_write = None
            self._invoices.set_status(org, invoice_id, InvoiceStatus.FINALIZING, now)
        super().write_lines(org, invoice_id, version, put, delete, now)


@pytest.fixture
def invoices() -> MemoryInvoices:
    return MemoryInvoices({ORG: "usd", OTHER: "usd"})


@pytest.fixture
def timelines(invoices: MemoryInvoices) -> CountingTimelines:
    return CountingTimelines(invoices)


@pytest.fixture
def service(timelines: CountingTimelines, invoices: MemoryInvoices) -> SubscriptionService:
    return SubscriptionService(settings(), timelines, invoices)


def _recurring(invoices: MemoryInvoices, invoice_id: str, org: str = ORG) -> dict[str, tuple[LineKind, int]]:
    return {line.description: (line.kind, line.amount_cents) for line in invoices.lines(org, invoice_id)
            if line.kind in (LineKind.RECURRING, LineKind.LATE_RECURRING)}


def test_a_subscription_from_mid_month_puts_its_prorated_fee_on_the_draft(service, invoices):
    timeline, created = service.change(ORG, "start", None, "support-premium", datetime(2026, 11, 10, tzinfo=UTC),
                                       NOW)
    assert created and timeline.version == 1
    assert invoices.get(ORG, NOV_ID).status is InvoiceStatus.DRAFT  # created for the fee, with no usage event
    assert _recurring(invoices, NOV_ID) == {
        "Support plan: premium from 2026-11-10 00:00:00 UTC (prorated)":
            (LineKind.RECURRING, 19900 - share(19900, 9 * DAY))}


def test_an_upgrade_credits_the_unused_old_plan_and_charges_the_new_one_to_the_second(service, invoices):
    service.change(ORG, "start", None, "support-standard", NOV_1, NOW)
    assert _recurring(invoices, NOV_ID) == {"Support plan: standard · 2026-11": (LineKind.RECURRING, 2900)}

    at = datetime(2026, 11, 20, 14, 3, 5, tzinfo=UTC)
    upgraded, _ = service.change(ORG, "upgrade", None, "support-premium", at + timedelta(microseconds=123), NOW)

    assert upgraded.change("upgrade").effective_at == at  # recorded to the second, as it is prorated
    elapsed = (19 * 24 + 14) * 3600 + 3 * 60 + 5
    assert _recurring(invoices, NOV_ID) == {
        "Support plan: standard · 2026-11": (LineKind.RECURRING, 2900),
        "Unused time on Support plan: standard from 2026-11-20 14:03:05 UTC (prorated)":
            (LineKind.RECURRING, -(2900 - share(2900, elapsed))),
        "Support plan: premium from 2026-11-20 14:03:05 UTC (prorated)":
            (LineKind.RECURRING, 19900 - share(19900, elapsed)),
    }


def test_a_cancel_stops_the_fee_from_that_second_and_a_later_plan_starts_it_again(service, invoices):
    now = datetime(2026, 11, 25, tzinfo=UTC)
    service.change(ORG, "start", None, "support-standard", NOV_1, now)
    service.change(ORG, "stop", "support", None, datetime(2026, 11, 11, tzinfo=UTC), now)
    assert sum(cents for _, cents in _recurring(invoices, NOV_ID).values()) == share(2900, 10 * DAY)

    service.change(ORG, "again", None, "support-standard", datetime(2026, 11, 21, tzinfo=UTC), now)
    assert sum(cents for _, cents in _recurring(invoices, NOV_ID).values()) == 2 * share(2900, 10 * DAY)


def test_a_change_id_is_recorded_once_and_reused_for_another_change_is_a_conflict(service, timelines, invoices):
    first, created = service.change(ORG, "start", None, "support-standard", NOV_1, NOW)
    writes = timelines.writes

    again, created_again = service.change(ORG, "start", None, "support-standard", NOV_1, NOW + timedelta(hours=1))
    assert created and not created_again and (again.changes, again.version) == (first.changes, first.version)
    with pytest.raises(Conflict):
        service.change(ORG, "start", None, "support-premium", NOV_1, NOW)
    assert timelines.writes == writes and service.timeline(ORG).version == 1
    assert _recurring(invoices, NOV_ID) == {"Support plan: standard · 2026-11": (LineKind.RECURRING, 2900)}


@pytest.mark.parametrize(("family", "plan", "effective_at"), [
    (None, "support-standard", NOW - settings().late_usage_window - timedelta(seconds=1)),  # before the window
    (None, "support-standard", NOW + timedelta(days=366, seconds=1)),  # more than a year ahead
    (None, "support-gold", NOW),  # no such plan
    ("gold", None, NOW),  # cancelling a family there is no plan of
])
def test_a_change_outside_the_window_or_of_an_unknown_plan_is_refused_and_writes_nothing(
        service, invoices, family, plan, effective_at):
    with pytest.raises(ValidationFailed):
        service.change(ORG, "a", family, plan, effective_at, NOW)
    assert service.timeline(ORG) is None and invoices.get(ORG, NOV_ID) is None


def test_the_edges_of_the_window_are_accepted(service):
    service.change(ORG, "earliest", None, "support-standard", NOW - settings().late_usage_window, NOW)
    timeline, created = service.change(ORG, "latest", None, "support-premium", NOW + timedelta(days=366), NOW)
    assert created and timeline.version == 2


def test_materialize_writes_only_what_differs_so_a_second_run_writes_nothing(service, timelines, invoices):
    timelines.record(ORG, PlanChange("start", "support", "support-standard", NOV_1, NOW), NOW)
    assert service.materialize(ORG, NOW) == 1
    writes, lines = timelines.writes, invoices.lines(ORG, NOV_ID)
    assert writes == 1

    assert service.materialize(ORG, NOW) == 1
    assert timelines.writes == writes and invoices.lines(ORG, NOV_ID) == lines
    assert service.materialize(OTHER, NOW) is None  # no timeline: nothing to write


def test_a_draft_closed_while_its_lines_are_written_makes_materialize_compute_again(service, timelines, invoices):
    timelines.record(ORG, PlanChange("start", "support", "support-standard", NOV_1, NOW), NOW)
    timelines.close_before_write = NOV_ID  # a finalize closes November just before the lines land

    assert service.materialize(ORG, NOW) == 1

    assert invoices.get(ORG, NOV_ID).status is InvoiceStatus.FINALIZING and _recurring(invoices, NOV_ID) == {}
    assert _recurring(invoices, DEC_ID) == {  # computed again: the next open invoice carries it, late
        "Late plan change for 2026-11: Support plan: standard · 2026-11": (LineKind.LATE_RECURRING, 2900)}


def test_a_change_backdated_into_a_closed_period_is_billed_on_the_next_draft_like_late_usage(service, invoices):
    service.change(ORG, "start", None, "support-standard", NOV_1, datetime(2026, 11, 2, tzinfo=UTC))
    invoices.set_status(ORG, NOV_ID, InvoiceStatus.FINALIZED, datetime(2026, 12, 1, 2, tzinfo=UTC))

    service.change(ORG, "upgrade", None, "support-premium", datetime(2026, 11, 21, tzinfo=UTC),
                   datetime(2026, 12, 3, tzinfo=UTC))

    assert _recurring(invoices, NOV_ID) == {"Support plan: standard · 2026-11": (LineKind.RECURRING, 2900)}
    december = _recurring(invoices, DEC_ID)
    late = {d: v for d, v in december.items() if v[0] is LineKind.LATE_RECURRING}
    assert late == {
        "Late plan change for 2026-11: Unused time on Support plan: standard from 2026-11-21 00:00:00 UTC "
        "(prorated)": (LineKind.LATE_RECURRING, -(2900 - share(2900, 20 * DAY))),
        "Late plan change for 2026-11: Support plan: premium from 2026-11-21 00:00:00 UTC (prorated)":
            (LineKind.LATE_RECURRING, 19900 - share(19900, 20 * DAY)),
    }
    assert december["Support plan: premium · 2026-12"] == (LineKind.RECURRING, 19900)


def test_next_months_draft_opened_early_keeps_its_fee_when_lines_are_written_as_of_an_earlier_moment(
        service, invoices):
    service.change(ORG, "start", None, "support-standard", NOV_1, NOW)
    service.materialize(ORG, datetime(2026, 12, 1, 0, 30, tzinfo=UTC))  # the month-end job opens December
    assert _recurring(invoices, DEC_ID) == {"Support plan: standard · 2026-12": (LineKind.RECURRING, 2900)}

    service.materialize(ORG, datetime(2026, 11, 30, 18, tzinfo=UTC))  # a finalize as of an earlier moment

    assert _recurring(invoices, DEC_ID) == {"Support plan: standard · 2026-12": (LineKind.RECURRING, 2900)}


def test_the_sweep_brings_only_orgs_not_yet_materialized_this_month_up_to_date(service, timelines, invoices):
    service.change(ORG, "start", None, "support-standard", NOV_1, NOW)  # written and marked as it is recorded
    timelines.record(OTHER, PlanChange("start", "support", "support-standard", NOV_1, NOW), NOW)  # writer crashed

    assert service.sweep(NOW) == [OTHER]
    assert _recurring(invoices, NOV_ID, OTHER) == {"Support plan: standard · 2026-11": (LineKind.RECURRING, 2900)}
    assert service.sweep(NOW + timedelta(hours=1)) == []

    december = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    assert service.sweep(december) == [ORG, OTHER]  # a new month: every org's next draft needs its fee
    assert _recurring(invoices, DEC_ID) == {"Support plan: standard · 2026-12": (LineKind.RECURRING, 2900)}


def test_a_plan_change_recorded_after_materialize_cancels_the_transaction_its_guard_joins(service):
    service.change(ORG, "start", None, "support-standard", NOV_1, NOW)
    assert service.unchanged_since(ORG, None) is None  # no timeline: nothing to guard
    guard = service.unchanged_since(ORG, service.materialize(ORG, NOW))
    commit(guard)  # nothing moved: it commits

    service.change(ORG, "upgrade", None, "support-premium", NOW, NOW)
    with pytest.raises(TransactionCancelled):
        commit(guard)

