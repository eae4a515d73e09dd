"""At-least-once delivery: the same message many times, to concurrent workers, and replays after Stripe
has forgotten every idempotency key. Still one Stripe invoice, with each line once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from support.crashes import dies_at
from sync_support import (
    ProcessDied,
    assert_synced,
    create_org,
    finalize,
    finalized_invoice,
    our_lines,
    queue_message,
    record_lines,
    stored,
    stripe_copies,
    stripe_line_pairs,
    sync_body,
    wait_for,
)


def work_queue_once(queues, wait_s: int = 1) -> int:
    """One worker invocation on whatever the queue hands out, deleting what succeeded (as Lambda does)."""
    from chalicelib.services.sync_worker import process_messages

    messages = queues.receive(wait_s=wait_s)
    if not messages:
        return 0
    failed = set(process_messages([queue_message(m) for m in messages], datetime.now(UTC)))
    for message in messages:
        if message["MessageId"] not in failed:
            queues.sqs.delete_message(QueueUrl=queues.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def test_one_message_delivered_five_times_to_four_concurrent_workers(sync_env):
    from chalicelib.services.sync_worker import process_messages

    emulator, queues = sync_env.emulator, sync_env.queues
    org = create_org()
    invoice = finalized_invoice(org, lines=4)
    # Slow Stripe down so the workers overlap for the whole sync, not only at its start.
    emulator.add_fault("*", latency_ms=40)
    queues.send(sync_body(org, invoice.id, invoice.sync.requested_at), times=5)
    deliveries: list[dict] = []
    wait_for(lambda: len(deliveries) == 5, 20,
             lambda: deliveries.extend(queues.receive(count=5 - len(deliveries), wait_s=1)),
             "five deliveries of the message")

    start = threading.Barrier(4)
    results: list[tuple[int, list[str]]] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            start.wait(timeout=10)
            for delivery in deliveries[index::4]:
                failed = process_messages([queue_message(delivery)], datetime.now(UTC))
                results.append((index, failed))
                if not failed:
                    queues.sqs.delete_message(QueueUrl=queues.queue_url, ReceiptHandle=delivery["ReceiptHandle"])
        except BaseException as error:  # noqa: B036 - reported to the test thread below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == 5
    assert any(failed for _, failed in results), "the workers never overlapped"

    # Deliveries that met the lease come back after their backoff and find the work done.
    wait_for(lambda: queues.depth() == 0 and stored(org, invoice.id).sync.state.value == "synced", 30,
             lambda: work_queue_once(queues), "the retried deliveries")
    assert_synced(emulator, org, invoice.id)
    assert queues.dead_letters() == []
    creates = emulator.request_counts()["by_endpoint"].get("POST /v1/invoices", 0)
    assert creates == 1, emulator.request_counts()["by_endpoint"]


def test_concurrent_syncs_of_one_invoice_create_one_stripe_invoice(gateway, emulator, local_aws):
    """Four workers call the sync itself at the same moment (no queue in between), twice each."""
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.stripe.errors import RetryableSyncError

    org = create_org()
    invoice = finalized_invoice(org, lines=4)
    emulator.add_fault("*", latency_ms=40)
    start = threading.Barrier(4)
    outcomes: list[object] = []

    def worker() -> None:
        start.wait(timeout=10)
        for _ in range(2):
            try:
                outcomes.append(InvoiceSync(gateway).sync(org, invoice.id, datetime.now(UTC)))
            except RetryableSyncError as error:
                outcomes.append(error)
            except Exception as error:  # anything else is a failure of the test
                outcomes.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    unexpected = [o for o in outcomes if not isinstance(o, (SyncResult, RetryableSyncError))]
    assert not unexpected, unexpected
    assert sum(o is SyncResult.SYNCED for o in outcomes) == 1, outcomes
    assert_synced(emulator, org, invoice.id)


# -- replays after Stripe forgot the idempotency keys (24 h later) -------------------------------


def test_replay_of_a_synced_invoice_after_keys_are_forgotten_creates_nothing(gateway, emulator, local_aws):
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.storage.invoices import InvoiceRepository

    org = create_org()
    invoice = finalized_invoice(org, lines=3)
    assert InvoiceSync(gateway).sync(org, invoice.id, datetime.now(UTC)) is SyncResult.SYNCED
    first = assert_synced(emulator, org, invoice.id)

    emulator.forget_idempotency_keys()
    later = datetime.now(UTC) + timedelta(days=2)
    InvoiceRepository().request_sync(stored(org, invoice.id), later)
    assert InvoiceSync(gateway).sync(org, invoice.id, later) is SyncResult.SYNCED
    assert assert_synced(emulator, org, invoice.id)["id"] == first["id"]
    assert len(emulator.state()["customers"]) == 1


@pytest.mark.parametrize("died_at", ["after_create_customer", "after_create_invoice", "after_store_invoice_id",
                                     "after_add_lines", "after_finalize"])
def test_replay_after_keys_are_forgotten_finishes_a_crashed_sync_without_duplicates(
        died_at, gateway, emulator, local_aws):
    from chalicelib.services.sync import LEASE_TTL, InvoiceSync, SyncResult

    org = create_org()
    invoice = finalized_invoice(org, lines=4)
    now = datetime.now(UTC)

    with pytest.raises(ProcessDied):
        InvoiceSync(gateway, checkpoint=dies_at(died_at)).sync(org, invoice.id, now)
    assert emulator.forget_idempotency_keys() > 0

    later = now + max(LEASE_TTL, timedelta(days=1)) + timedelta(hours=1)
    assert InvoiceSync(gateway).sync(org, invoice.id, later) is SyncResult.SYNCED
    assert_synced(emulator, org, invoice.id)
    assert len(emulator.state()["customers"]) == 1


@pytest.mark.parametrize("id_stored", [False, True], ids=["draft-id-not-stored", "draft-id-stored"])
def test_replay_after_keys_are_forgotten_completes_a_draft_left_with_some_lines(
        id_stored, gateway, emulator, local_aws):
    """A dead worker left a Stripe draft holding only some of the lines; a day later Stripe has forgotten
    its keys. The replay finds the draft by our ids and adds only the lines it lacks."""
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.stripe.lines import stripe_lines

    org = create_org()
    invoice = finalized_invoice(org, lines=5)
    now = datetime.now(UTC)
    step = "after_store_invoice_id" if id_stored else "after_create_invoice"

    with pytest.raises(ProcessDied):
        InvoiceSync(gateway, checkpoint=dies_at(step)).sync(org, invoice.id, now)
    (draft,) = stripe_copies(emulator, org)
    wanted = stripe_lines(invoice, our_lines(org, invoice.id))
    gateway.add_lines(draft["id"], org, invoice.id, wanted[:2])
    assert len(stripe_line_pairs(emulator.invoice(draft["id"]))) == 2
    assert (stored(org, invoice.id).sync.stripe_invoice_id == draft["id"]) is id_stored

    emulator.forget_idempotency_keys()
    later = now + timedelta(days=2)
    assert InvoiceSync(gateway).sync(org, invoice.id, later) is SyncResult.SYNCED
    copy = assert_synced(emulator, org, invoice.id)
    assert copy["id"] == draft["id"]


def test_a_redelivered_message_after_keys_are_forgotten_finds_the_work_done(sync_env):
    """Through the worker: the same message replayed after the keys expired is acknowledged, not redone."""
    emulator, queues = sync_env.emulator, sync_env.queues
    org = create_org()
    invoice = finalized_invoice(org, lines=3)
    body = sync_body(org, invoice.id, invoice.sync.requested_at)
    queues.send(body)
    wait_for(lambda: stored(org, invoice.id).sync.state.value == "synced", 20, lambda: work_queue_once(queues),
             "the first delivery")
    before = emulator.request_counts()["by_endpoint"]

    emulator.forget_idempotency_keys()
    queues.send(body)
    deadline = time.monotonic() + 20
    while queues.depth():
        assert time.monotonic() < deadline, "the replayed message was never acknowledged"
        work_queue_once(queues)
    assert_synced(emulator, org, invoice.id)
    after = emulator.request_counts()["by_endpoint"]
    posts = {k: after.get(k, 0) - before.get(k, 0) for k in after if k.startswith("POST")}
    assert not any(posts.values()), posts
    assert queues.dead_letters() == []


def test_an_orgs_first_invoice_takes_five_stripe_requests_and_its_next_one_four(gateway, emulator, local_aws):
    """The first sync looks the customer up and creates it, and skips looking for an invoice of a customer
    it has just created (none can exist); the next one has the customer stored and only looks for its
    invoice before creating it."""
    from chalicelib.services.sync import InvoiceSync, SyncResult

    org = create_org()
    now = datetime.now(UTC)
    requests = []
    for tag, moment in (("a", now - timedelta(days=31)), ("b", now)):
        record_lines([(org, 3)], moment, tag=tag)
        invoice = finalize(org, moment)
        emulator.reset_request_counts()
        assert InvoiceSync(gateway).sync(org, invoice.id, now) is SyncResult.SYNCED
        requests.append(emulator.request_counts()["by_endpoint"])
        assert stored(org, invoice.id).sync.state.value == "synced"

    first, second = requests
    assert sum(first.values()) == 5 and first["GET /v1/customers"] == first["POST /v1/customers"] == 1, first
    assert "GET /v1/invoices" not in first, first
    assert sum(second.values()) == 4 and second["GET /v1/invoices"] == 1, second
    assert not any("customers" in endpoint for endpoint in second), second
    assert len(stripe_copies(emulator, org)) == 2 and len(emulator.state()["customers"]) == 1
