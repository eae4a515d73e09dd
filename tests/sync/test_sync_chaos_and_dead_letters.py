"""Through the queue, a permanent Stripe failure goes to the DLQ at once, visible on the invoice, and replays
safely once fixed. (Transient failures, 5xx, 429 and lock timeouts, retried until every invoice is synced:
tests/reliability/test_reliability_sync_chaos.py, at a reduced size in `make test`.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sync_support import (
    assert_synced,
    body_of,
    create_org,
    finalize,
    record_lines,
    stored,
    stripe_copies,
    wait_for,
)


def _missing_customer(emulator, org):
    from chalicelib.storage.orgs import OrgRepository

    OrgRepository().set_stripe_customer(org, "cus_deleted0000000000000")

    def fix() -> None:
        from chalicelib.storage import keys
        from chalicelib.storage.models import OrgItem

        OrgItem(keys.org_pk(org), keys.PROFILE_SK).update(actions=[OrgItem.stripe_customer_id.remove()])
    return fix


def _invalid_request(emulator, org):
    emulator.fail_next("POST /v1/invoices", 1, kind="error", status=400)
    return lambda: None  # the cause was one bad answer


@pytest.mark.parametrize("cause", [_missing_customer, _invalid_request], ids=["missing-customer", "invalid-request"])
def test_a_permanent_failure_goes_to_the_dlq_at_once_and_replays_safely_once_fixed(cause, sync_env, runner):
    from chalicelib.storage.invoices import InvoiceRepository

    emulator, queues = sync_env.emulator, sync_env.queues
    org = create_org("poison")
    now = datetime.now(UTC)
    record_lines([(org, 3)], now)
    fix = cause(emulator, org)
    invoice = finalize(org, now)

    wait_for(lambda: queues.depth(queues.dlq_url) > 0, 30, lambda: runner.poll_once(sqs_wait_seconds=1),
             "the message to reach the DLQ")
    assert runner.stats["sqs_messages"] == 1, dict(runner.stats)  # its first receive, no retries
    assert queues.depth() == 0
    failed = stored(org, invoice.id)
    assert failed.sync.state.value == "failed"
    assert failed.sync.last_error and "stripe InvalidRequestError (400" in failed.sync.last_error, \
        failed.sync.last_error
    assert failed.sync.attempts == 1
    (dead,) = queues.dead_letters()
    assert body_of(dead)["org"] == org and body_of(dead)["invoice_id"] == invoice.id
    assert dead["MessageAttributes"]["reason"]["StringValue"] == failed.sync.last_error
    assert stripe_copies(emulator, org) == [] or stripe_copies(emulator, org)[0]["status"] == "draft"

    fix()

    def replay(body: str) -> None:
        """The on-call runbook: the message back on the sync queue, and the invoice marked for sync."""
        queues.sqs.send_message(QueueUrl=queues.queue_url, MessageBody=body)
        InvoiceRepository().request_sync(stored(org, invoice.id), datetime.now(UTC))

    (message,) = queues.receive(queues.dlq_url)
    replay(message["Body"])
    queues.sqs.delete_message(QueueUrl=queues.dlq_url, ReceiptHandle=message["ReceiptHandle"])

    def settled() -> bool:
        return queues.depth() == 0 and stored(org, invoice.id).sync.state.value == "synced"

    def dead_letter() -> str | None:
        dead = queues.dead_letters()
        return f"the replay went to the DLQ: {dead[0]['MessageAttributes']['reason']['StringValue']}" if dead else None

    wait_for(settled, 30, lambda: runner.poll_once(sqs_wait_seconds=1), "the replayed sync", give_up=dead_letter)
    first = assert_synced(emulator, org, invoice.id)
    assert stored(org, invoice.id).sync.last_error is None
    assert queues.depth(queues.dlq_url) == 0
    posts_before = {k: v for k, v in emulator.request_counts()["by_endpoint"].items() if k.startswith("POST")}

    replay(message["Body"])  # the runbook run a second time
    wait_for(lambda: runner.stats["sqs_messages"] >= 4 and settled(), 30,
             lambda: runner.poll_once(sqs_wait_seconds=1), "the second replay", give_up=dead_letter)
    assert assert_synced(emulator, org, invoice.id)["id"] == first["id"]
    posts_after = {k: v for k, v in emulator.request_counts()["by_endpoint"].items() if k.startswith("POST")}
    assert posts_after == posts_before
    assert queues.depth(queues.dlq_url) == 0
