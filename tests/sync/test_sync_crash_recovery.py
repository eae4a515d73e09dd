"""The sync stops anywhere (process death, a lost Stripe answer, a failed table write) and the next
delivery finishes it: one Stripe invoice, finalized, with exactly our lines. (A worker killed at each step
in turn, its lease left standing, is a rule on the in-memory ports, tests/unit/test_sync_rules.py; here,
on the table and the emulator, every step in one run, and replays once Stripe forgot its keys in
test_sync_duplicates_and_replays.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from pynamodb.exceptions import UpdateError
from sync_support import ProcessDied, assert_synced, create_org, finalized_invoice, stored, stripe_copies

CHECKPOINTS = [
    "after_create_customer",
    "after_store_customer",
    "after_create_invoice",
    "after_store_invoice_id",
    "after_add_lines",
    "after_finalize",
    "before_mark_synced",
]


@pytest.fixture
def invoice(local_aws):
    org = create_org()
    return finalized_invoice(org, lines=3)


@contextmanager
def killed_process(monkeypatch) -> Iterator[None]:
    """A killed process runs no `finally`: its lease stays in the table until it expires."""
    from chalicelib.storage import leases

    with monkeypatch.context() as patched:
        patched.setattr(leases, "release", lambda *args, **kwargs: None)
        yield


def test_every_checkpoint_of_a_first_sync_is_reached(gateway, invoice):
    from chalicelib.services.sync import InvoiceSync, SyncResult

    seen: list[str] = []
    assert InvoiceSync(gateway, checkpoint=seen.append).sync(invoice.org, invoice.id, datetime.now(UTC)) \
        is SyncResult.SYNCED
    assert seen == CHECKPOINTS


def test_a_worker_killed_at_every_step_in_turn_still_converges(gateway, emulator, invoice, monkeypatch):
    from chalicelib.services.sync import LEASE_TTL, InvoiceSync, SyncResult

    now = datetime.now(UTC)
    remaining = list(CHECKPOINTS)
    died_at: list[str] = []

    def checkpoint(step: str) -> None:
        if step in remaining:
            remaining.remove(step)
            died_at.append(step)
            raise ProcessDied(step)

    for _ in range(len(CHECKPOINTS)):
        now += LEASE_TTL + timedelta(seconds=1)
        try:
            with killed_process(monkeypatch):
                InvoiceSync(gateway, checkpoint=checkpoint).sync(invoice.org, invoice.id, now)
        except ProcessDied:
            continue
        break  # this delivery passed every step not yet visited and finished
    # Each delivery dies at the first step no earlier one died at; the customer steps are not
    # reached again once the customer is stored, the invoice steps once the invoice is finalized.
    assert died_at[:2] == ["after_create_customer", "after_store_customer"]
    assert "before_mark_synced" in died_at
    now += LEASE_TTL + timedelta(seconds=1)
    assert InvoiceSync(gateway).sync(invoice.org, invoice.id, now) in (SyncResult.SYNCED, SyncResult.ALREADY_SYNCED)
    assert_synced(emulator, invoice.org, invoice.id)


@pytest.mark.parametrize("request_kind", [
    "POST /v1/customers",
    "POST /v1/invoices",
    "POST /v1/invoices/*/add_lines",
    "POST /v1/invoices/*/finalize",
])
def test_a_stripe_answer_lost_after_the_change_was_applied_is_finished_by_redelivery(
        request_kind, gateway, emulator, invoice):
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.stripe.errors import RetryableSyncError

    emulator.fail_next(request_kind, 1, kind="lost_response")
    with pytest.raises(RetryableSyncError):
        InvoiceSync(gateway).sync(invoice.org, invoice.id, datetime.now(UTC))
    assert emulator.faults.describe()["fail_next"] == []  # the lost answer really happened

    assert InvoiceSync(gateway).sync(invoice.org, invoice.id, datetime.now(UTC)) is SyncResult.SYNCED
    assert_synced(emulator, invoice.org, invoice.id)


def test_a_lost_answer_retried_by_the_client_replays_the_saved_result(emulator, invoice):
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.stripe.gateway import StripeGateway

    for request_kind in ("POST /v1/customers", "POST /v1/invoices", "POST /v1/invoices/*/add_lines",
                         "POST /v1/invoices/*/finalize"):
        emulator.fail_next(request_kind, 1, kind="lost_response")
    retrying = StripeGateway("sk_test_sync", emulator.base_url, max_network_retries=2)
    assert InvoiceSync(retrying).sync(invoice.org, invoice.id, datetime.now(UTC)) is SyncResult.SYNCED
    assert emulator.faults.describe()["fail_next"] == []
    assert_synced(emulator, invoice.org, invoice.id)


class TableWriteFailed(Exception):
    pass


def _failing(original: Callable[..., object], apply_first: bool) -> Callable[..., object]:
    """The write fails once: before reaching the table, or after it was applied (the answer was lost)."""
    state = {"failed": False}

    def write(*args: object, **kwargs: object) -> object:
        if state["failed"]:
            return original(*args, **kwargs)
        state["failed"] = True
        if apply_first:
            original(*args, **kwargs)
        raise UpdateError("simulated DynamoDB failure", cause=TableWriteFailed("connection reset"))
    return write


@pytest.mark.parametrize("apply_first", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("write", ["store_customer", "store_invoice_id", "mark_synced"])
def test_a_failed_table_write_of_the_sync_is_finished_by_redelivery(write, apply_first, gateway, emulator,
                                                                     invoice, monkeypatch):
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.storage.orgs import OrgRepository

    owner, name = {
        "store_customer": (OrgRepository, "set_stripe_customer"),
        "store_invoice_id": (InvoiceRepository, "record_stripe_invoice"),
        "mark_synced": (InvoiceRepository, "record_sync"),
    }[write]
    with monkeypatch.context() as patched:
        patched.setattr(owner, name, _failing(getattr(owner, name), apply_first))
        with pytest.raises(UpdateError):
            InvoiceSync(gateway).sync(invoice.org, invoice.id, datetime.now(UTC))
    # The failure released the lease (an exception, not a crash): the next delivery goes straight in.
    result = InvoiceSync(gateway).sync(invoice.org, invoice.id, datetime.now(UTC))
    expected = SyncResult.ALREADY_SYNCED if (write, apply_first) == ("mark_synced", True) else SyncResult.SYNCED
    assert result is expected
    assert_synced(emulator, invoice.org, invoice.id)
    assert len(stripe_copies(emulator, invoice.org)) == 1
    assert stored(invoice.org, invoice.id).sync.state.value == "synced"
