"""The sync queue and its dead-letter queue (SQS through boto3)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3

from .config import settings
from .domain.sync_message import SyncMessage

MAX_VISIBILITY_SECONDS = 12 * 3600


@lru_cache(maxsize=1)
def _sqs() -> Any:
    return boto3.client("sqs", region_name=settings().region)


def enqueue_sync(messages: list[SyncMessage], queue_url: str | None = None) -> None:
    """Send in batches of 10; any entry SQS refuses raises, so the stream batch is retried."""
    send_batch(queue_url or settings().sync_queue_url, [message.body() for message in messages])


class SqsSyncQueue:
    """The sync queue as a service's port (`services.ports.SyncQueue`)."""

    def enqueue_sync(self, messages: list[SyncMessage]) -> None:
        enqueue_sync(messages)  # looked up when called, so a test that replaces the function is obeyed


def send_batch(url: str, messages: list[str]) -> None:
    """Send in batches of 10; any entry SQS refuses raises, so the caller (a stream batch) is retried."""
    for start in range(0, len(messages), 10):
        batch = messages[start:start + 10]
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)]
        response = _sqs().send_message_batch(QueueUrl=url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"SQS refused {len(response['Failed'])} messages: {response['Failed']}")


def to_dead_letters(body: str, reason: str) -> None:
    """A permanent failure skips the retries: straight to the DLQ, with the reason attached."""
    _sqs().send_message(
        QueueUrl=settings().sync_dlq_url, MessageBody=body,
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"}},
    )


def delay_retry(receipt_handle: str, receive_count: int) -> None:
    """Exponential backoff through the message's visibility (capped), so Stripe gets room to recover."""
    seconds = min(MAX_VISIBILITY_SECONDS, 2 ** min(receive_count, 16) * 5)
    _sqs().change_message_visibility(QueueUrl=settings().sync_queue_url, ReceiptHandle=receipt_handle,
                                     VisibilityTimeout=seconds)


def send_to(queue_url: str, body: str, reason: str) -> None:
    """One message, with the reason it is sent (a dead-letter queue's readers show it)."""
    _sqs().send_message(
        QueueUrl=queue_url, MessageBody=body,
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"}},
    )


def delay_message(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Bring the message back after `seconds` (SQS allows up to 12 hours)."""
    _sqs().change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle,
                                     VisibilityTimeout=max(0, min(seconds, MAX_VISIBILITY_SECONDS)))
