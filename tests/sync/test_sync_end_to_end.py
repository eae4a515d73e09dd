"""Finalize → table stream → handle_table_changes → sync queue → sync_invoices → Stripe, as deployed."""

from __future__ import annotations

from datetime import UTC, datetime

from sync_support import assert_synced, create_org, finalized_invoice, stored, stripe_copies, wait_for


def _synced(org: str, invoice_id: str) -> bool:
    return stored(org, invoice_id).sync.state.value == "synced"


def test_finalized_invoice_becomes_one_open_stripe_invoice_with_the_same_lines(sync_env, runner):
    org = create_org()
    invoice = finalized_invoice(org, lines=5)

    wait_for(lambda: _synced(org, invoice.id), 30, lambda: runner.poll_once(sqs_wait_seconds=1), "the sync")

    copy = assert_synced(sync_env.emulator, org, invoice.id)
    assert copy["metadata"]["org"] == org and copy["metadata"]["invoice_id"] == invoice.id
    assert len(copy["lines"]["data"]) == 5
    for line in copy["lines"]["data"]:
        assert line["metadata"]["org"] == org and line["metadata"]["invoice_id"] == invoice.id
    assert copy["total"] == invoice.total_cents > 0
    mine = stored(org, invoice.id)
    assert mine.sync.last_error is None
    assert mine.sync.synced_at is not None
    assert sync_env.queues.depth() == 0
    assert sync_env.queues.dead_letters() == []
    assert runner.stats["sqs_messages"] == 1, dict(runner.stats)


def test_void_after_sync_voids_the_stripe_invoice(sync_env, runner):
    from chalicelib.services.invoices import InvoiceService

    org = create_org()
    invoice = finalized_invoice(org, lines=2)
    wait_for(lambda: _synced(org, invoice.id), 30, lambda: runner.poll_once(sqs_wait_seconds=1), "the sync")
    stripe_id = stored(org, invoice.id).sync.stripe_invoice_id

    voided = InvoiceService().void(org, invoice.id, datetime.now(UTC))
    assert voided.status.value == "void"
    assert stored(org, invoice.id).sync.state.value == "pending"

    wait_for(lambda: _synced(org, invoice.id), 30, lambda: runner.poll_once(sqs_wait_seconds=1), "the void's sync")
    copies = stripe_copies(sync_env.emulator, org)
    assert [(c["id"], c["status"]) for c in copies] == [(stripe_id, "void")]
    mine = stored(org, invoice.id)
    assert mine.status.value == "void" and mine.sync.stripe_invoice_id == stripe_id
    assert sync_env.queues.dead_letters() == []
