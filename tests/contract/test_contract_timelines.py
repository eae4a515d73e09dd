"""One contract, two implementations of `Timelines`: the DynamoDB subscription repository and the fake.

What the subscription rules rely on (chalicelib/services/ports.py): a change is recorded once per id and each new
one moves the version by exactly one; the materialized mark is kept only at the current version; recurring lines
are written, all or none, only while the timeline is at the version they were computed from (else StaleRead) and
the invoice is a draft (else InvoiceClosed); they are read apart from the invoice's other lines; and the guard
handed to another port's transaction cancels it once the timeline moved.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.invoices import MemoryInvoices, fixed_line
from fakes.subscriptions import MemoryTimelines

from chalicelib.domain.errors import InvoiceClosed, StaleRead
from chalicelib.domain.invoice import InvoiceStatus, invoice_id_for
from chalicelib.domain.lines import LineItem
from chalicelib.domain.periods import Period
from chalicelib.domain.plans import PlanChange, segments
from chalicelib.domain.pricebook import plan_for
from chalicelib.domain.proration import charges_for
from chalicelib.domain.recurring import recurring_lines

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
NOV = Period(2026, 11)
NOV_ID = invoice_id_for(NOV)


@dataclass
class Store:
    timelines: Any
    invoices: Any  # the invoice store the recurring lines live in (InvoiceRepository or MemoryInvoices)
    org: str


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def store(request: Any) -> Store:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        invoices = MemoryInvoices({org: "usd"})
        return Store(MemoryTimelines(invoices), invoices, org)
    request.getfixturevalue("local_aws")
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.storage.orgs import OrgRepository
    from chalicelib.storage.subscriptions import SubscriptionRepository

    # Every org with a timeline has a profile, as in production: the month-end sweep of tests sharing the
    # table reads each subscribed org's profile (this one and the second org of the listing case).
    for profiled in (org, f"{org}-b"):
        OrgRepository().upsert(profiled, "Contract Org", "billing@example.com", "usd", NOW)
    return Store(SubscriptionRepository(), InvoiceRepository(), org)


def _change(change_id: str, plan: str | None, effective_at: datetime, family: str = "support") -> PlanChange:
    return PlanChange(change_id, family, plan, effective_at, NOW)


START = _change("start", "support-standard", datetime(2026, 11, 1, tzinfo=UTC))
UPGRADE = _change("upgrade", "support-premium", datetime(2026, 11, 12, 8, 30, 15, tzinfo=UTC))


def _lines(*changes: PlanChange) -> list[LineItem]:
    """November's recurring lines as the timeline of `changes` calls for them."""
    return recurring_lines(NOV, charges_for(NOV, segments(changes), plan_for), [], late=False)


def _added(before: list[LineItem], after: list[LineItem]) -> list[LineItem]:
    """The lines of `after` that `before` lacks (a write never puts and deletes the same line)."""
    return [line for line in after if line.id not in {line.id for line in before}]


def _by_id(lines: list[LineItem]) -> list[LineItem]:
    return sorted(lines, key=lambda line: line.id)


def test_a_change_is_recorded_once_per_id_and_each_new_one_moves_the_version_by_one(store):
    timelines, org = store.timelines, store.org
    assert timelines.get(org) is None
    first, created = timelines.record(org, START, NOW)
    assert created and (first.org, first.changes, first.version, first.materialized) == (org, (START,), 1, None)

    again, created = timelines.record(org, _change("start", "support-premium", START.effective_at), NOW)
    assert not created and again == first  # the id is taken: the stored timeline, unchanged, for the caller

    second, created = timelines.record(org, UPGRADE, NOW + timedelta(seconds=1))
    assert created and (second.changes, second.version) == ((START, UPGRADE), 2)
    assert timelines.get(org) == second


def test_subscribed_lists_every_org_with_a_timeline(store):
    timelines, org = store.timelines, store.org
    other = f"{org}-b"
    timelines.record(org, START, NOW)
    timelines.record(other, START, NOW)
    timelines.record(other, UPGRADE, NOW)
    listed = {t.org: t.version for t in timelines.subscribed() if t.org in (org, other, f"{org}-none")}
    assert listed == {org: 1, other: 2}


def test_the_materialized_mark_is_kept_only_at_the_current_version(store):
    timelines, org = store.timelines, store.org
    timelines.mark_materialized(org, 1, NOV)  # no timeline: nothing to mark, nothing created
    assert timelines.get(org) is None
    timelines.record(org, START, NOW)
    timelines.record(org, UPGRADE, NOW)
    timelines.mark_materialized(org, 1, NOV)  # an older version's writer: the newer one marks its own
    assert timelines.get(org).materialized is None
    timelines.mark_materialized(org, 2, NOV)
    assert timelines.get(org).materialized == "2@2026-11"
    third, _ = timelines.record(org, _change("stop", None, datetime(2026, 11, 25, tzinfo=UTC)), NOW)
    assert (third.version, timelines.get(org).materialized) == (3, "2@2026-11")  # marks an older version now


def test_recurring_lines_of_a_draft_are_put_and_deleted_and_read_apart_from_its_other_lines(store):
    timelines, invoices, org = store.timelines, store.invoices, store.org
    draft = invoices.create_draft(org, NOV, NOW)
    assert invoices.add_fixed_line(draft, fixed_line("setup", 5000), "setup", NOW)
    timelines.record(org, START, NOW)
    standard = _lines(START)
    assert timelines.recurring_lines(org, NOV_ID) == []

    timelines.write_lines(org, NOV_ID, 1, standard, [], NOW)
    assert timelines.recurring_lines(org, NOV_ID) == _by_id(standard)

    timelines.record(org, UPGRADE, NOW)
    upgraded = _lines(START, UPGRADE)
    assert len(upgraded) == 3 and len(_added(standard, upgraded)) == 2  # the unused part and premium join
    timelines.write_lines(org, NOV_ID, 2, _added(standard, upgraded), [], NOW)
    assert timelines.recurring_lines(org, NOV_ID) == _by_id(upgraded)
    timelines.write_lines(org, NOV_ID, 2, [], [standard[0].id], NOW)
    assert timelines.recurring_lines(org, NOV_ID) == _by_id(_added(standard, upgraded))

    timelines.write_lines(org, NOV_ID, 2, [], [line.id for line in upgraded], NOW)  # one already gone: fine
    assert timelines.recurring_lines(org, NOV_ID) == []
    assert [line.id for line in invoices.lines(org, NOV_ID)] == [fixed_line("setup", 5000).id]  # never touched


def test_lines_for_an_invoice_that_is_not_a_draft_are_refused_and_nothing_is_written(store):
    timelines, invoices, org = store.timelines, store.invoices, store.org
    draft = invoices.create_draft(org, NOV, NOW)
    timelines.record(org, START, NOW)
    standard = _lines(START)
    timelines.write_lines(org, NOV_ID, 1, standard, [], NOW)
    invoices.transition(draft, InvoiceStatus.FINALIZING, NOW)

    with pytest.raises(InvoiceClosed):
        timelines.write_lines(org, NOV_ID, 1, _added(standard, _lines(START, UPGRADE)), [standard[0].id], NOW)
    assert timelines.recurring_lines(org, NOV_ID) == _by_id(standard)

    december = invoice_id_for(NOV.next())  # no such invoice: not a draft either
    with pytest.raises(InvoiceClosed):
        timelines.write_lines(org, december, 1, standard, [], NOW)
    assert timelines.recurring_lines(org, december) == []

    timelines.record(org, UPGRADE, NOW)  # the timeline moved too: the closed invoice is what the caller hears
    with pytest.raises(InvoiceClosed):
        timelines.write_lines(org, NOV_ID, 1, _added(standard, _lines(START, UPGRADE)), [], NOW)
    assert timelines.recurring_lines(org, NOV_ID) == _by_id(standard)


def test_lines_computed_from_a_timeline_that_moved_are_refused_and_nothing_is_written(store):
    timelines, invoices, org = store.timelines, store.invoices, store.org
    invoices.create_draft(org, NOV, NOW)
    with pytest.raises(StaleRead):  # no timeline at all: not at any version
        timelines.write_lines(org, NOV_ID, 1, _lines(START), [], NOW)
    timelines.record(org, START, NOW)
    standard = _lines(START)
    timelines.write_lines(org, NOV_ID, 1, standard, [], NOW)
    timelines.record(org, UPGRADE, NOW)

    with pytest.raises(StaleRead):
        timelines.write_lines(org, NOV_ID, 1, _added(standard, _lines(START, UPGRADE)), [standard[0].id], NOW)
    assert timelines.recurring_lines(org, NOV_ID) == _by_id(standard)


def test_the_guard_cancels_another_ports_transaction_once_the_timeline_moved(store):
    timelines, invoices, org = store.timelines, store.invoices, store.org
    draft = invoices.create_draft(org, NOV, NOW)
    timelines.record(org, START, NOW)
    timelines.record(org, UPGRADE, NOW)

    with pytest.raises(StaleRead):  # the invoice is as read: only the joined guard failed
        invoices.transition(draft, InvoiceStatus.FINALIZING, NOW, along=timelines.guard(org, 1))
    assert invoices.get(org, NOV_ID).status is InvoiceStatus.DRAFT

    closed = invoices.transition(draft, InvoiceStatus.FINALIZING, NOW, along=timelines.guard(org, 2))
    assert closed.status is invoices.get(org, NOV_ID).status is InvoiceStatus.FINALIZING
