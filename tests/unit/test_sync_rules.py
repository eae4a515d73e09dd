"""The Stripe sync's rules on in-memory invoices, profiles, leases and Stripe (milliseconds each): it looks
before it acts, adds only what is missing, finalizes only matching totals, yields to a lease holder, and
however often it dies between two side effects, the next delivery leaves exactly one Stripe copy."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from fakes.invoices import MemoryInvoices, fixed_line
from fakes.org_profiles import MemoryOrgProfiles
from fakes.stripe_invoices import FakeLine, FakeStripeInvoice, MemoryStripe
from fakes.sync_leases import MemoryLeases
from support.crashes import ProcessDied, dies_at

from chalicelib.domain.collection import DEFAULT_COLLECTION
from chalicelib.domain.invoice import Invoice, InvoiceStatus, SyncState
from chalicelib.domain.periods import Period
from chalicelib.services.sync import LEASE_TTL, Checkpoint, InvoiceSync, SyncResult, no_checkpoint
from chalicelib.stripe.errors import PermanentSyncError, RetryableSyncError
from chalicelib.stripe.lines import STRIPE_MAX_LINES

ORG, EMAIL = "acme", "billing@acme.example"
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
AFTER_LEASE = LEASE_TTL + timedelta(seconds=1)
NOV = Period(2026, 11)
LINES = [fixed_line("setup", 1500), fixed_line("support", 2500), fixed_line("training", 700)]
CHECKPOINTS = [
    "after_create_customer", "after_store_customer", "after_create_invoice", "after_store_invoice_id",
    "after_add_lines", "after_finalize", "before_mark_synced",
]


class KilledLeases(MemoryLeases):
    """A killed process runs no `finally`: its lease stays until it expires."""

    def __init__(self, table: MemoryLeases) -> None:
        self.table = table

    def acquire(self, org: str, invoice_id: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        return self.table.acquire(org, invoice_id, owner, now, ttl)

    def release(self, org: str, invoice_id: str, owner: str) -> None:
        pass


class ListingForbidden(MemoryStripe):
    """A Stripe whose invoice listing the sync must not need."""

    def find_invoice(self, customer: str, org: str, our_invoice_id: str) -> FakeStripeInvoice | None:
        raise AssertionError("the sync listed the customer's invoices")


@dataclass
class World:
    invoices: MemoryInvoices = field(default_factory=MemoryInvoices)
    orgs: MemoryOrgProfiles = field(default_factory=MemoryOrgProfiles)
    leases: MemoryLeases = field(default_factory=MemoryLeases)
    stripe: MemoryStripe = field(default_factory=MemoryStripe)

    def syncer(self, checkpoint: Checkpoint = no_checkpoint, killed: bool = False) -> InvoiceSync:
        leases = KilledLeases(self.leases) if killed else self.leases
        return InvoiceSync(self.stripe, checkpoint, self.invoices, self.orgs, leases)

    def ours(self, invoice: Invoice) -> Invoice:
        stored = self.invoices.get(invoice.org, invoice.id)
        assert stored is not None
        return stored

    def stripe_draft(self, invoice: Invoice, lines: list[FakeLine]) -> str:
        """A Stripe draft for our invoice, as an earlier attempt left it; not counted as this sync's work."""
        customer = self.orgs.get(ORG).stripe_customer_id or self.stripe.create_customer(ORG, "Acme", EMAIL)
        self.orgs.set_stripe_customer(ORG, customer)
        found = self.stripe.create_invoice(customer, ORG, invoice.id, invoice.number, "usd", str(NOV),
                                           DEFAULT_COLLECTION)
        self.stripe.invoices[found.id].lines = lines
        self.stripe.created.clear()
        return found.id


@pytest.fixture
def world() -> World:
    world = World()
    world.orgs.add(ORG, EMAIL, NOW, name="Acme")
    return world


@pytest.fixture
def invoice(world: World) -> Invoice:
    return world.invoices.finalized(ORG, NOV, LINES, NOW, number="ACME-0001")


def assert_synced_once(world: World, invoice: Invoice, status: str = "open") -> None:
    """One Stripe copy with exactly our lines, finalized once, and our record pointing at it."""
    copies = world.stripe.live_copies(ORG, invoice.id)
    assert len(copies) == 1
    copy = copies[0]
    assert sorted((line.key, line.amount) for line in copy.lines) == sorted((line.id, line.amount_cents)
                                                                            for line in LINES)
    assert (copy.status, copy.total) == (status, invoice.total_cents)
    assert (world.stripe.created["customer"], world.stripe.created["invoice"], world.stripe.created["line"],
            world.stripe.created["finalize"]) == (1, 1, len(LINES), 1)
    ours = world.ours(invoice)
    assert (ours.sync.state, ours.sync.stripe_invoice_id, ours.sync.stripe_invoice_number) == (
        SyncState.SYNCED, copy.id, copy.number)


# -- a first sync ------------------------------------------------------------------------------------------

def test_a_first_sync_creates_one_finalized_copy_and_records_it(world, invoice):
    world.stripe = ListingForbidden()  # the customer is new, so no invoice of ours can exist on it yet
    seen: list[str] = []
    assert world.syncer(seen.append).sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert seen == CHECKPOINTS
    assert_synced_once(world, invoice)
    ours = world.ours(invoice)
    assert (ours.sync.hosted_invoice_url, ours.sync.synced_at) == (
        world.stripe.invoices[ours.sync.stripe_invoice_id].hosted_invoice_url, NOW)
    assert world.orgs.get(ORG).stripe_customer_id == world.stripe.invoices[ours.sync.stripe_invoice_id].customer
    assert world.leases.holder(ORG, invoice.id) is None  # released


# -- it looks before it acts --------------------------------------------------------------------------------

def test_the_stored_customer_is_used_even_when_stripe_would_not_find_it_by_email(world, invoice):
    customer = world.stripe.create_customer(ORG, "Acme", "old-address@acme.example")
    world.orgs.set_stripe_customer(ORG, customer)
    world.stripe.created.clear()
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert world.stripe.created["customer"] == 0
    assert world.stripe.live_copies(ORG, invoice.id)[0].customer == customer


def test_a_customer_created_but_not_stored_is_found_by_email_and_stored(world, invoice):
    customer = world.stripe.create_customer(ORG, "Acme", EMAIL)
    world.stripe.created.clear()
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert world.stripe.created["customer"] == 0
    assert world.orgs.get(ORG).stripe_customer_id == customer


def test_the_stored_stripe_invoice_is_completed_not_created_again(world, invoice):
    world.stripe = ListingForbidden()  # retrieved by its stored id
    stripe_id = world.stripe_draft(invoice, [])
    world.invoices.record_stripe_invoice(invoice, stripe_id)
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert world.stripe.created["invoice"] == 0
    assert (world.ours(invoice).sync.stripe_invoice_id, world.stripe.invoices[stripe_id].status) == (stripe_id, "open")


def test_a_stripe_invoice_created_but_not_stored_is_found_by_our_ids_and_stored(world, invoice):
    stripe_id = world.stripe_draft(invoice, [])
    seen: list[str] = []
    assert world.syncer(seen.append).sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert world.stripe.created["invoice"] == 0
    assert "after_create_invoice" not in seen
    assert world.ours(invoice).sync.stripe_invoice_id == stripe_id


def test_only_the_lines_stripe_lacks_are_added(world, invoice):
    first = LINES[0]
    stripe_id = world.stripe_draft(invoice, [FakeLine(first.id, first.amount_cents, first.description)])
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert world.stripe.created["line"] == len(LINES) - 1
    assert sorted(line.key for line in world.stripe.invoices[stripe_id].lines) == sorted(line.id for line in LINES)


def test_a_stripe_invoice_already_finalized_is_only_checked_and_recorded(world, invoice):
    stripe_id = world.stripe_draft(invoice, [FakeLine(line.id, line.amount_cents, "") for line in LINES])
    world.stripe.finalize(stripe_id, ORG, invoice.id)
    world.stripe.created.clear()
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert sum(world.stripe.created.values()) == 0
    assert world.ours(invoice).sync.stripe_invoice_number == world.stripe.invoices[stripe_id].number


# -- it refuses what it cannot fix --------------------------------------------------------------------------

def test_a_stripe_draft_whose_total_differs_from_ours_is_not_finalized(world, invoice):
    first = LINES[0]
    stripe_id = world.stripe_draft(invoice, [FakeLine(first.id, first.amount_cents + 1, first.description)])
    with pytest.raises(PermanentSyncError, match="differs from ours"):
        world.syncer().sync(ORG, invoice.id, NOW)
    assert (world.stripe.invoices[stripe_id].status, world.stripe.created["finalize"]) == ("draft", 0)
    assert world.ours(invoice).sync.state is SyncState.PENDING
    assert world.leases.holder(ORG, invoice.id) is None  # released on the way out


def test_a_finalized_stripe_copy_whose_total_differs_is_not_recorded_as_synced(world, invoice):
    stripe_id = world.stripe_draft(invoice, [FakeLine(LINES[0].id, 1, "")])
    world.stripe.finalize(stripe_id, ORG, invoice.id)
    with pytest.raises(PermanentSyncError, match="finalized total"):
        world.syncer().sync(ORG, invoice.id, NOW)
    assert world.ours(invoice).sync.state is SyncState.PENDING


def test_an_invoice_that_does_not_exist_or_an_org_without_a_profile_fails_permanently(world, invoice):
    with pytest.raises(PermanentSyncError, match="does not exist"):
        world.syncer().sync(ORG, "inv_209901", NOW)
    world.invoices.finalized("ghost", NOV, LINES, NOW)
    with pytest.raises(PermanentSyncError, match="no billing profile"):
        world.syncer().sync("ghost", invoice.id, NOW)
    assert sum(world.stripe.created.values()) == 0


# -- when there is nothing (yet) to do ----------------------------------------------------------------------

@pytest.mark.parametrize("status", [InvoiceStatus.DRAFT, InvoiceStatus.FINALIZING])
def test_an_invoice_not_yet_frozen_is_not_ready(world, status):
    draft = world.invoices.finalized(ORG, NOV, LINES, NOW)
    world.invoices.set_status(ORG, draft.id, status, NOW)
    assert world.syncer().sync(ORG, draft.id, NOW) is SyncResult.NOT_READY
    assert sum(world.stripe.created.values()) == 0


def test_a_synced_invoice_is_already_synced_without_touching_stripe_or_the_lease(world, invoice):
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    world.stripe.created.clear()
    world.leases.acquire(ORG, invoice.id, "another-worker", NOW, LEASE_TTL)
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.ALREADY_SYNCED
    assert sum(world.stripe.created.values()) == 0
    assert world.leases.holder(ORG, invoice.id) == "another-worker"


def test_another_holder_of_the_lease_makes_the_sync_retry_later(world, invoice):
    world.leases.acquire(ORG, invoice.id, "another-worker", NOW, LEASE_TTL)
    with pytest.raises(RetryableSyncError):
        world.syncer().sync(ORG, invoice.id, NOW + LEASE_TTL)
    assert sum(world.stripe.created.values()) == 0
    assert world.leases.holder(ORG, invoice.id) == "another-worker"
    assert world.syncer().sync(ORG, invoice.id, NOW + AFTER_LEASE) is SyncResult.SYNCED  # its holder died


def test_a_sync_finished_by_another_worker_before_the_lease_was_ours_is_already_synced(world, invoice):
    class FinishedJustBefore(MemoryLeases):
        def acquire(self, org: str, invoice_id: str, owner: str, now: datetime, ttl: timedelta) -> bool:
            assert world.syncer().sync(org, invoice_id, now) is SyncResult.SYNCED  # the other worker, done
            return world.leases.acquire(org, invoice_id, owner, now, ttl)

    racing = InvoiceSync(world.stripe, no_checkpoint, world.invoices, world.orgs, FinishedJustBefore())
    assert racing.sync(ORG, invoice.id, NOW) is SyncResult.ALREADY_SYNCED
    assert_synced_once(world, invoice)


# -- racing the webhook and a newer request -----------------------------------------------------------------

def test_an_invoice_paid_while_syncing_is_still_recorded_synced(world, invoice):
    def paid_meanwhile(step: str) -> None:
        if step == "before_mark_synced":
            world.invoices.set_status(ORG, invoice.id, InvoiceStatus.PAID, NOW)

    assert world.syncer(paid_meanwhile).sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert (world.ours(invoice).status, world.ours(invoice).sync.state) == (InvoiceStatus.PAID, SyncState.SYNCED)


def test_a_sync_requested_again_meanwhile_is_left_to_the_newer_request(world, invoice):
    def requested_meanwhile(step: str) -> None:
        if step == "before_mark_synced":
            world.invoices.request_sync(ORG, invoice.id, NOW + timedelta(seconds=1))

    assert world.syncer(requested_meanwhile).sync(ORG, invoice.id, NOW) is SyncResult.SUPERSEDED
    assert world.ours(invoice).sync.state is SyncState.PENDING


# -- voided invoices ----------------------------------------------------------------------------------------

def voided(world: World, invoice: Invoice, at: datetime) -> None:
    """As `InvoiceService.void`: the invoice is void and a sync is pending."""
    world.invoices.set_status(ORG, invoice.id, InvoiceStatus.VOID, at)
    world.invoices.request_sync(ORG, invoice.id, at)


def test_a_void_invoice_never_sent_to_stripe_is_synced_without_a_stripe_invoice(world, invoice):
    voided(world, invoice, NOW)
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert world.stripe.created["invoice"] == 0
    assert (world.ours(invoice).sync.state, world.ours(invoice).sync.stripe_invoice_id) == (SyncState.SYNCED, None)


def test_voiding_an_open_stripe_copy_voids_it_once(world, invoice):
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    voided(world, invoice, NOW + timedelta(days=1))
    assert world.syncer().sync(ORG, invoice.id, NOW + timedelta(days=1)) is SyncResult.SYNCED
    stripe_id = world.ours(invoice).sync.stripe_invoice_id
    assert (world.stripe.invoices[stripe_id].status, world.stripe.created["void"]) == ("void", 1)
    assert world.syncer().sync(ORG, invoice.id, NOW + timedelta(days=1)) is SyncResult.ALREADY_SYNCED
    assert world.stripe.created["void"] == 1


def test_voiding_a_stripe_draft_deletes_it(world, invoice):
    world.stripe_draft(invoice, [])
    voided(world, invoice, NOW)
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert (world.stripe.live_copies(ORG, invoice.id), world.stripe.created["delete"]) == ([], 1)
    assert world.ours(invoice).sync.state is SyncState.SYNCED


def test_a_void_whose_draft_was_deleted_before_the_worker_died_finishes_on_redelivery(world, invoice):
    world.invoices.record_stripe_invoice(world.ours(invoice), world.stripe_draft(invoice, []))
    voided(world, invoice, NOW)
    with pytest.raises(ProcessDied):
        world.syncer(dies_at("before_mark_synced")).sync(ORG, invoice.id, NOW)
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    assert (world.stripe.live_copies(ORG, invoice.id), world.stripe.created["delete"]) == ([], 1)
    assert world.ours(invoice).sync.state is SyncState.SYNCED


def test_a_stripe_copy_already_paid_is_not_voided(world, invoice):
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    stripe_id = world.ours(invoice).sync.stripe_invoice_id
    world.stripe.pay(stripe_id)
    voided(world, invoice, NOW)
    with pytest.raises(PermanentSyncError, match="refund it"):
        world.syncer().sync(ORG, invoice.id, NOW)
    assert (world.stripe.invoices[stripe_id].status, world.ours(invoice).sync.state) == ("paid", SyncState.PENDING)


# -- crashes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("step", CHECKPOINTS)
def test_a_worker_killed_at_each_step_is_finished_by_the_next_delivery_exactly_once(world, invoice, step):
    with pytest.raises(ProcessDied):
        world.syncer(dies_at(step), killed=True).sync(ORG, invoice.id, NOW)
    with pytest.raises(RetryableSyncError):  # the dead worker's lease still stands
        world.syncer().sync(ORG, invoice.id, NOW + timedelta(seconds=5))
    assert world.syncer().sync(ORG, invoice.id, NOW + AFTER_LEASE) is SyncResult.SYNCED
    assert_synced_once(world, invoice)


def test_stripes_ids_are_stored_the_moment_they_exist(world, invoice):
    with pytest.raises(ProcessDied):
        world.syncer(dies_at("after_store_customer")).sync(ORG, invoice.id, NOW)
    assert world.orgs.get(ORG).stripe_customer_id == next(iter(world.stripe.customers))
    with pytest.raises(ProcessDied):
        world.syncer(dies_at("after_store_invoice_id")).sync(ORG, invoice.id, NOW)
    assert world.ours(invoice).sync.stripe_invoice_id == world.stripe.live_copies(ORG, invoice.id)[0].id
    assert world.stripe.live_copies(ORG, invoice.id)[0].lines == []  # before any line was sent


def test_a_worker_killed_at_every_step_in_turn_still_converges_exactly_once(world, invoice):
    remaining = list(CHECKPOINTS)

    def first_unvisited(step: str) -> None:
        if step in remaining:
            remaining.remove(step)
            raise ProcessDied(step)

    now = NOW
    for _ in CHECKPOINTS:
        now += AFTER_LEASE
        try:
            result = world.syncer(first_unvisited, killed=True).sync(ORG, invoice.id, now)
        except ProcessDied:
            continue
        assert result is SyncResult.SYNCED
        break
    assert "before_mark_synced" not in remaining
    assert world.syncer().sync(ORG, invoice.id, now + AFTER_LEASE) in (SyncResult.SYNCED, SyncResult.ALREADY_SYNCED)
    assert_synced_once(world, invoice)


# -- invoices over Stripe's 250 items ----------------------------------------------------------------------

def test_an_invoice_over_250_lines_is_rolled_up_with_the_same_total_and_finished_once_after_a_crash(world):
    """33 apps x 8 lines: rolled up by app and category. A worker killed after adding the rolled-up lines is
    finished by the next delivery without any line twice."""
    lines = [replace(fixed_line(f"egress-{n:03d}", 100 + n), app=f"app-{n % 33:02d}") for n in range(264)]
    invoice = world.invoices.finalized(ORG, NOV, lines, NOW, number="ACME-0002")
    rolled = Counter[str]()
    for line in lines:
        rolled[f"rollup:{line.app}:{line.category.value}"] += line.amount_cents

    with pytest.raises(ProcessDied):
        world.syncer(dies_at("after_add_lines"), killed=True).sync(ORG, invoice.id, NOW)
    assert world.syncer().sync(ORG, invoice.id, NOW + timedelta(days=1)) is SyncResult.SYNCED

    (copy,) = world.stripe.live_copies(ORG, invoice.id)
    assert len(copy.lines) == 33 <= STRIPE_MAX_LINES
    assert sorted((line.key, line.amount) for line in copy.lines) == sorted(rolled.items())
    assert (copy.status, copy.total) == ("open", invoice.total_cents)
    assert invoice.total_cents == sum(line.amount_cents for line in lines)
    assert world.ours(invoice).sync.stripe_invoice_id == copy.id


# -- failures recorded on the invoice -----------------------------------------------------------------------

def test_a_permanent_failure_is_recorded_and_a_retryable_one_never_undoes_synced(world, invoice):
    world.syncer().record_failure(ORG, invoice.id, PermanentSyncError("no customer"), NOW, permanent=True)
    failed = world.ours(invoice)
    assert (failed.sync.state, failed.sync.attempts, failed.sync.last_error) == (SyncState.FAILED, 1, "no customer")
    assert world.syncer().sync(ORG, invoice.id, NOW) is SyncResult.SYNCED
    world.syncer().record_failure(ORG, invoice.id, RetryableSyncError("late"), NOW, permanent=False)
    assert (world.ours(invoice).sync.state, world.ours(invoice).sync.last_error) == (SyncState.SYNCED, None)
