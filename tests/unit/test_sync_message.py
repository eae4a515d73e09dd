"""The sync queue's one message: what the stream and the reconciler write, the worker and on-call read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.sync_message import MalformedSyncMessage, SyncMessage
from chalicelib.oncall.letters import parse_body

REQUESTED = datetime(2026, 11, 30, 10, 0, 0, 123456, tzinfo=UTC)


def test_a_message_reads_back_as_written():
    for message in (SyncMessage("acme", "inv_202611", REQUESTED), SyncMessage("acme", "inv_202611")):
        assert SyncMessage.parse(message.body()) == message
    assert SyncMessage("acme", "inv_202611", REQUESTED).body() == \
        '{"invoice_id": "inv_202611", "org": "acme", "requested_at": "2026-11-30T10:00:00.123456Z"}'


@pytest.mark.parametrize("body", [
    "not json", "[1, 2]", '"acme"', "{}", '{"org": "acme"}', '{"invoice_id": "inv_202611"}',
    '{"org": 7, "invoice_id": "inv_202611"}', '{"org": "acme", "invoice_id": ["inv_202611"]}',
    '{"org": "", "invoice_id": "inv_202611"}',
    '{"org": "acme", "invoice_id": "inv_202611", "requested_at": "yesterday"}',
    '{"org": "acme", "invoice_id": "inv_202611", "requested_at": "2026-11-30T10:00:00"}',  # no time zone
    '{"org": "acme", "invoice_id": "inv_202611", "requested_at": 1764496800}',
    "[" * 5000 + "]" * 5000,
])
def test_anything_else_is_malformed_for_the_worker_and_not_a_sync_message_for_on_call(body):
    with pytest.raises(MalformedSyncMessage):
        SyncMessage.parse(body)
    assert parse_body(body) == (None, None)  # the replay skips what the worker would dead-letter


def test_on_call_reads_the_org_and_invoice_the_worker_would_sync():
    assert parse_body(SyncMessage("acme", "inv_202611", REQUESTED).body()) == ("acme", "inv_202611")
