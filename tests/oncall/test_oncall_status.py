"""`status` and `resync` against DynamoDB Local and moto's SQS server."""

from __future__ import annotations

from datetime import UTC, datetime

from oncall_support import (
    create_org,
    dead_letter,
    draft_invoice,
    failed_invoice,
    finalized_invoice,
    stored,
    synced_invoice,
)


def test_status_counts_invoices_per_state_finds_the_oldest_pending_and_reads_queue_depths(cli, cli_text, queues):
    from chalicelib import queue
    from chalicelib.domain.sync_message import SyncMessage
    from chalicelib.storage.invoices import InvoiceRepository

    repo = InvoiceRepository()
    _, before = cli("status")
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    failed = failed_invoice(create_org(), "permanent failure")
    waiting = finalized_invoice(create_org())
    repo.request_sync(waiting, long_ago)
    finalized_invoice(create_org())
    synced_invoice(create_org())
    draft_invoice(create_org())
    dead_letter(failed, "permanent failure")
    queue.enqueue_sync([SyncMessage(waiting.org, waiting.id)] * 2)

    code, after = cli("status")

    assert code == 0
    delta = {state: after["invoices"][state] - before["invoices"][state] for state in after["invoices"]}
    assert delta == {"draft": 1, "finalizing": 0, "sync_pending": 2, "sync_failed": 1, "finalized": 1, "paid": 0,
                     "uncollectible": 0, "void": 0}
    # Select COUNT agrees with reading each partition item by item.
    for state in ("sync_pending", "sync_failed", "finalized"):
        assert after["invoices"][state] == len(list(repo.by_state(state)))
    assert after["dlq"] == {"visible": 1, "in_flight": 0, "delayed": 0}
    assert after["sync_queue"] == {"visible": 2, "in_flight": 0, "delayed": 0}
    oldest = after["oldest_pending"]
    assert oldest["requested_at"] <= "2001-01-01T00:00:00.000000Z"
    assert oldest["age_seconds"] >= int((datetime.now(UTC) - long_ago).total_seconds()) - 60

    _, quick = cli("status", "--quick")
    assert quick["invoices"] == {state: after["invoices"][state]
                                 for state in ("finalizing", "sync_pending", "sync_failed")}

    code, text = cli_text("status")
    assert code == 0 and "Stripe sync failed" in text and "dead letters" in text and "Oldest pending sync" in text


def test_resync_marks_an_invoice_pending_with_a_new_request_and_refuses_drafts_and_unknown_ids(cli, queues):
    from chalicelib.storage.invoices import InvoiceRepository

    synced = synced_invoice(create_org())

    code, resynced = cli("resync", synced.org, synced.id)

    assert code == 0
    assert resynced["sync_state"] == "pending" and resynced["status"] == "finalized"
    now_stored = stored(synced.org, synced.id)
    assert now_stored.sync.state.value == "pending"
    assert now_stored.sync.requested_at > synced.sync.requested_at
    assert resynced["requested_at"] == now_stored.sync.requested_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert synced.id in {i.id for i in InvoiceRepository().by_state("sync_pending") if i.org == synced.org}

    draft = draft_invoice(create_org())
    code, refused = cli("resync", draft.org, draft.id)
    assert code == 1 and refused["error"]["code"] == "invalid_transition"
    assert stored(draft.org, draft.id).sync.state.value == "not_required"

    assert cli("resync", synced.org, "inv_209912")[1]["error"]["code"] == "not_found"
    assert cli("resync", "bad#org", "inv_1")[1]["error"]["code"] == "not_found"
