"""Lambda event shapes (SQS messages, table stream records) read into the services' own types."""

from __future__ import annotations

from typing import Any

from ..services.sync_worker import QueueMessage


def queue_messages(event: Any) -> list[QueueMessage]:
    """An SQS batch; the receive count lets a worker back off and give up like the redrive policy."""
    messages = []
    for record in event:
        raw = record.to_dict()
        count = int(raw.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        messages.append(QueueMessage(raw["messageId"], record.receipt_handle, record.body, count))
    return messages


def table_changes(event: Any) -> list[tuple[str, Any, Any]]:
    """A stream batch as (event name, old image, new image) per record."""
    return [(r.event_name, r.old_image, r.new_image) for r in event]


def batch_failures(message_ids: list[str]) -> dict[str, Any]:
    """The partial-batch answer: only these messages return to the queue."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in message_ids]}
