"""Replay through the real worker, and `reconcile`, with the Stripe emulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from oncall_support import NOW, create_org, dead_letter, drain, failed_invoice, finalized_invoice, sqs, stored

STRIPE_DOWN = "stripe InvalidRequestError (400): No such customer: 'cus_gone'"


@pytest.fixture
def stripe_url(local_aws) -> Iterator[str]:
    from devstack.stripe_emulator import StripeEmulator

    emulator = StripeEmulator()
    url = emulator.start()
    try:
        yield url
    finally:
        emulator.stop()


def stripe_invoices(stripe_url: str, org: str) -> list[dict]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{stripe_url}/_emulator/state") as response:  # noqa: S310 (loopback)
        state = json.load(response)
    return [invoice for invoice in state["invoices"] if invoice["metadata"].get("org") == org]


def run_worker(queue_url: str, syncer) -> int:
    """Deliver what is in the sync queue to the worker, as Lambda would; returns how many messages it got."""
    from chalicelib.services.sync_worker import QueueMessage, process_messages

    client = sqs()
    received = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                      VisibilityTimeout=30, MessageSystemAttributeNames=["ApproximateReceiveCount"]
                                      ).get("Messages", [])
    messages = [QueueMessage(m["MessageId"], m["ReceiptHandle"], m["Body"],
                             int(m["Attributes"]["ApproximateReceiveCount"])) for m in received]
    failures = set(process_messages(messages, datetime.now(UTC), syncer))
    assert not failures
    for message in messages:
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=message.receipt_handle)
    return len(messages)


def test_a_replayed_invoice_reaches_stripe_once_and_replaying_a_duplicate_later_creates_nothing(
        cli, queues, stripe_url, table_stream):
    from chalicelib.services.sync import InvoiceSync
    from chalicelib.stripe.gateway import StripeGateway

    syncer = InvoiceSync(StripeGateway("sk_test_x", stripe_url, 0))
    failed = failed_invoice(create_org(), STRIPE_DOWN)
    dead_letter(failed, STRIPE_DOWN)
    stream = table_stream()

    assert cli("dlq", "replay", "--all")[1]["moved"] == 1
    stream.run_until_idle()  # the pending mark's stream record becomes the sync message
    assert run_worker(queues.sync_url, syncer) == 1

    synced = stored(failed.org, failed.id)
    assert synced.sync.state.value == "synced" and synced.sync.last_error is None
    copies = stripe_invoices(stripe_url, failed.org)
    assert [(c["id"], c["total"]) for c in copies] == [(synced.sync.stripe_invoice_id, failed.total_cents)]

    # The same message dead-lettered again (a late duplicate), replayed twice over.
    dead_letter(failed, "duplicate delivery")
    _, again = cli("dlq", "replay", "--all")
    assert [o["action"] for o in again["outcomes"]] == ["move"]
    assert cli("dlq", "replay", "--all")[1]["moved"] == 0
    assert run_worker(queues.sync_url, syncer) == 1

    assert stripe_invoices(stripe_url, failed.org) == copies
    after = stored(failed.org, failed.id)
    assert after.sync.state.value == "synced" and after.sync.synced_at == synced.sync.synced_at


def test_reconcile_reports_matched_mismatched_and_unchecked_invoices_of_the_period(cli, queues, set_env, stripe_url):
    from chalicelib.services.sync import InvoiceSync, SyncResult
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.stripe.gateway import StripeGateway

    repo = InvoiceRepository()
    syncer = InvoiceSync(StripeGateway("sk_test_x", stripe_url, 0))
    # A period of its own: the run's other tests leave many invoices in the current one, synced to emulator
    # states since reset, and the report is then read for these three alone.
    at = datetime(2099, 3, 15, 12, tzinfo=UTC)
    matched = finalized_invoice(create_org(), at, quantity="1.25")
    differs = finalized_invoice(create_org(), at, quantity="7.5")
    vanished = finalized_invoice(create_org(), at)
    for invoice in (matched, differs, vanished):
        assert syncer.sync(invoice.org, invoice.id, NOW) is SyncResult.SYNCED
    assert matched.total_cents != differs.total_cents
    # Our copy of `differs` now names `matched`'s Stripe invoice, whose total is not ours.
    repo.record_stripe_invoice(differs, stored(matched.org, matched.id).sync.stripe_invoice_id)
    repo.record_stripe_invoice(vanished, "in_000000000000000000000000")
    set_env(STRIPE_API_BASE=stripe_url, STRIPE_MAX_NETWORK_RETRIES="0")

    code, report = cli("reconcile", str(matched.period))

    def ours(entries: list[str], invoice) -> list[str]:
        return [entry for entry in entries if entry.startswith(f"{invoice.org}/{invoice.id}")]

    assert code == 1  # a mismatch needs someone's attention
    assert report["period"] == str(matched.period) == "2099-03"
    assert ours(report["matched"], matched) == [f"{matched.org}/{matched.id}"], report
    assert len(ours(report["mismatched"], differs)) == 1
    assert f"ours {differs.total_cents}" in ours(report["mismatched"], differs)[0]
    assert len(ours(report["unchecked"], vanished)) == 1
    flagged = stored(differs.org, differs.id)
    assert flagged.sync.state.value == "failed"
    assert flagged.sync.last_error.startswith("reconciliation mismatch")
    assert stored(matched.org, matched.id).sync.state.value == "synced"


def test_reconcile_requeue_stale_enqueues_syncs_pending_too_long(cli, queues, set_env, stripe_url):
    from chalicelib.storage.invoices import InvoiceRepository

    waiting = finalized_invoice(create_org())
    InvoiceRepository().request_sync(waiting, datetime(2001, 1, 1, tzinfo=UTC))
    fresh = finalized_invoice(create_org(), now=datetime.now(UTC))
    set_env(STRIPE_API_BASE=stripe_url, STRIPE_MAX_NETWORK_RETRIES="0")

    code, report = cli("reconcile", str(waiting.period), "--requeue-stale")

    assert code in (0, 1)  # other tests' invoices of the period may not match this emulator
    assert f"{waiting.org}/{waiting.id}" in report["requeued"]
    assert f"{fresh.org}/{fresh.id}" not in report["requeued"]
    queued = {(body["org"], body["invoice_id"]) for body in drain(queues.sync_url)}
    assert (waiting.org, waiting.id) in queued and (fresh.org, fresh.id) not in queued
