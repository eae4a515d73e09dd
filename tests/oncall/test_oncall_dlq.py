"""`dlq list`, `dlq show` and `dlq replay` against DynamoDB Local and moto's SQS server."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from oncall_support import (
    create_org,
    dead_letter,
    depth,
    draft_invoice,
    drain,
    failed_invoice,
    finalized_invoice,
    sqs,
    stored,
    synced_invoice,
)

STRIPE_DOWN = "stripe InvalidRequestError (400): No such customer: 'cus_gone'"


def test_list_shows_each_dead_letter_with_its_reason_and_invoice_without_consuming_it(cli, cli_text, queues):
    first, second = create_org(), create_org()
    failed = failed_invoice(first, STRIPE_DOWN)
    pending = finalized_invoice(second)
    dead_letter(failed, STRIPE_DOWN)
    dead_letter(pending, "Stripe finalized total 120 usd differs from ours 125 usd")
    sqs().send_message(QueueUrl=queues.dlq_url, MessageBody="not json")

    code, listed = cli("dlq", "list")

    assert code == 0
    by_org = {m["org"]: m for m in listed["messages"]}
    assert set(by_org) == {first, second, None}
    assert by_org[first]["invoice_id"] == failed.id
    assert by_org[first]["reason"] == STRIPE_DOWN
    assert by_org[first]["invoice"]["sync_state"] == "failed"
    assert by_org[first]["invoice"]["last_error"] == STRIPE_DOWN
    assert by_org[first]["invoice"]["sync_attempts"] == 1
    assert by_org[first]["receive_count"] >= 1
    from chalicelib.domain.periods import parse_utc

    # Sent moments after the sync was requested (compared as times: the two may fall either side of midnight).
    sent_after = parse_utc(by_org[first]["sent_at"]) - failed.sync.requested_at
    assert timedelta(seconds=-5) < sent_after < timedelta(minutes=5), sent_after
    assert by_org[second]["reason"].startswith("Stripe finalized total 120")
    assert by_org[second]["invoice"]["sync_state"] == "pending"
    assert by_org[None]["invoice"] is None and by_org[None]["body"] == "not json"
    # Nothing consumed, nothing left hidden: the next reader sees every message at once.
    assert depth(queues.dlq_url) == (3, 0)
    again = {m["message_id"] for m in cli("dlq", "list")[1]["messages"]}
    assert again == {m["message_id"] for m in listed["messages"]}

    code, text = cli_text("dlq", "list")
    assert code == 0
    assert by_org[first]["message_id"] in text and STRIPE_DOWN in text and "failed" in text

    assert len(cli("dlq", "list", "--limit", "2")[1]["messages"]) == 2
    assert depth(queues.dlq_url) == (3, 0)


def test_show_prints_one_message_in_full_with_its_invoice(cli, cli_text, queues):
    org = create_org()
    invoice = failed_invoice(org, STRIPE_DOWN)
    dead_letter(invoice, STRIPE_DOWN)
    other = failed_invoice(create_org(), "another failure")
    dead_letter(other, "another failure")
    message_id = next(m["message_id"] for m in cli("dlq", "list")[1]["messages"] if m["org"] == org)

    code, shown = cli("dlq", "show", message_id)

    assert code == 0
    assert shown["message_id"] == message_id
    assert shown["org"] == org and shown["invoice_id"] == invoice.id
    assert shown["message_attributes"] == {"reason": STRIPE_DOWN}
    assert {"SentTimestamp", "ApproximateReceiveCount"} <= set(shown["attributes"])
    assert shown["invoice"]["number"] == invoice.number
    assert shown["invoice"]["total_cents"] == invoice.total_cents
    assert depth(queues.dlq_url) == (2, 0)

    code, text = cli_text("dlq", "show", message_id)
    assert code == 0 and invoice.number in text and STRIPE_DOWN in text

    code, missing = cli("dlq", "show", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and missing["error"]["code"] == "not_found"


def test_replay_dry_run_reports_the_plan_and_changes_nothing(cli, queues):
    failed = failed_invoice(create_org(), STRIPE_DOWN)
    synced = synced_invoice(create_org())
    dead_letter(failed, STRIPE_DOWN)
    dead_letter(synced, "duplicate delivery after a timeout")
    sqs().send_message(QueueUrl=queues.dlq_url, MessageBody="{}")

    code, report = cli("dlq", "replay", "--all", "--dry-run")

    assert code == 0
    assert report["dry_run"] is True and report["moved"] == 2 and report["skipped"] == 1
    actions = {o["org"]: o["action"] for o in report["outcomes"]}
    assert actions == {failed.org: "resync", synced.org: "move", None: "skip"}
    assert depth(queues.dlq_url) == (3, 0)
    assert depth(queues.sync_url) == (0, 0)
    after = stored(failed.org, failed.id)
    assert after.sync.state.value == "failed" and after.sync.requested_at == failed.sync.requested_at

    message_id = next(o["message_id"] for o in report["outcomes"] if o["org"] == failed.org)
    code, one = cli("dlq", "replay", message_id, "--dry-run")
    assert code == 0 and [o["action"] for o in one["outcomes"]] == ["resync"]
    assert depth(queues.dlq_url) == (3, 0) and depth(queues.sync_url) == (0, 0)


def test_replay_all_moves_messages_marks_invoices_pending_and_a_second_run_moves_nothing(cli, queues, table_stream):
    from chalicelib.domain.periods import parse_utc

    failed = failed_invoice(create_org(), STRIPE_DOWN)
    synced = synced_invoice(create_org())
    dead_letter(failed, STRIPE_DOWN)
    dead_letter(synced, "duplicate delivery after a timeout")
    sqs().send_message(QueueUrl=queues.dlq_url, MessageBody="not json")
    stream = table_stream()

    code, first = cli("dlq", "replay", "--all")
    stream.run_until_idle()

    assert code == 0
    assert first["method"] == "receive-send-delete"
    assert (first["moved"], first["skipped"]) == (2, 1)
    retried = stored(failed.org, failed.id)
    assert retried.sync.state.value == "pending"
    assert retried.sync.requested_at > failed.sync.requested_at
    assert retried.sync.last_error == STRIPE_DOWN  # kept until the worker succeeds, for whoever looks next
    untouched = stored(synced.org, synced.id)
    assert untouched.sync.state.value == "synced" and untouched.sync.requested_at == synced.sync.requested_at
    # Only the unreadable message stays behind, visible for the next person to look at it.
    assert depth(queues.dlq_url) == (1, 0)
    assert depth(queues.sync_url) == (2, 0)

    code, second = cli("dlq", "replay", "--all")
    stream.run_until_idle()

    assert code == 0
    assert (second["moved"], second["skipped"]) == (0, 1)
    assert depth(queues.dlq_url) == (1, 0)
    assert depth(queues.sync_url) == (2, 0)
    assert stored(failed.org, failed.id).sync.requested_at == retried.sync.requested_at

    bodies = {b["org"]: b for b in drain(queues.sync_url)}
    assert set(bodies) == {failed.org, synced.org}
    # The retried invoice's message, sent by the table's stream, names the new request.
    assert parse_utc(bodies[failed.org]["requested_at"]) == retried.sync.requested_at
    assert bodies[synced.org]["invoice_id"] == synced.id


def test_replay_of_one_message_moves_only_that_one_and_repeating_it_changes_nothing(cli, queues, table_stream):
    chosen = failed_invoice(create_org(), STRIPE_DOWN)
    other = failed_invoice(create_org(), STRIPE_DOWN)
    dead_letter(chosen, STRIPE_DOWN)
    dead_letter(other, STRIPE_DOWN)
    message_id = next(m["message_id"] for m in cli("dlq", "list")[1]["messages"] if m["org"] == chosen.org)
    stream = table_stream()

    code, report = cli("dlq", "replay", message_id)
    stream.run_until_idle()

    assert code == 0
    assert [(o["message_id"], o["action"], o["sync_state"]) for o in report["outcomes"]] == \
        [(message_id, "resync", "pending")]
    assert stored(chosen.org, chosen.id).sync.state.value == "pending"
    assert stored(other.org, other.id).sync.state.value == "failed"
    assert depth(queues.dlq_url) == (1, 0)
    assert depth(queues.sync_url) == (1, 0)

    code, again = cli("dlq", "replay", message_id)
    stream.run_until_idle()

    assert code == 1 and again["error"]["code"] == "not_found"
    assert depth(queues.dlq_url) == (1, 0)
    assert depth(queues.sync_url) == (1, 0)
    assert [b["org"] for b in drain(queues.sync_url)] == [chosen.org]


def test_replay_leaves_messages_for_missing_or_unfinished_invoices_in_the_dlq(cli, queues):
    from chalicelib import queue
    from chalicelib.domain.sync_message import SyncMessage

    draft = draft_invoice(create_org())
    queue.to_dead_letters(SyncMessage(draft.org, draft.id).body(), "not ready")
    queue.to_dead_letters(SyncMessage(create_org(), "inv_209912").body(), "invoice does not exist")
    queue.to_dead_letters(SyncMessage("bad#org", "inv#1").body(), "forged key")

    code, report = cli("dlq", "replay", "--all")

    assert code == 0
    assert report["moved"] == 0 and report["skipped"] == 3
    details = sorted(o["detail"] for o in report["outcomes"])
    assert details[0].startswith("invoice is draft")
    assert details[1:] == ["invoice not found", "invoice not found"]
    assert depth(queues.dlq_url) == (3, 0)
    assert depth(queues.sync_url) == (0, 0)
    assert stored(draft.org, draft.id).status.value == "draft"


def test_replay_sends_one_sync_message_per_invoice_however_many_dead_letters_it_has(cli, queues, table_stream):
    failed = failed_invoice(create_org(), STRIPE_DOWN)
    synced = synced_invoice(create_org())
    for _ in range(3):  # redeliveries: each dead-lettered on its own
        dead_letter(failed, STRIPE_DOWN)
        dead_letter(synced, "duplicate delivery after a timeout")
    stream = table_stream()

    code, dry = cli("dlq", "replay", "--all", "--dry-run")
    assert code == 0
    assert Counter((o["org"], o["action"]) for o in dry["outcomes"]) == Counter({
        (failed.org, "resync"): 1, (failed.org, "drop"): 2, (synced.org, "move"): 1, (synced.org, "drop"): 2})

    code, report = cli("dlq", "replay", "--all")
    stream.run_until_idle()  # the table's stream sends what the pending mark calls for

    assert code == 0
    assert Counter((o["org"], o["action"]) for o in report["outcomes"]) == Counter({
        (failed.org, "resync"): 1, (failed.org, "drop"): 2, (synced.org, "move"): 1, (synced.org, "drop"): 2})
    assert depth(queues.dlq_url) == (0, 0)
    sent = Counter((b["org"], b["invoice_id"]) for b in drain(queues.sync_url))
    assert sent == Counter({(failed.org, failed.id): 1, (synced.org, synced.id): 1})
    assert stored(failed.org, failed.id).sync.state.value == "pending"
