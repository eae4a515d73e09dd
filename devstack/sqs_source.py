"""An SQS queue as Lambda's event source mapping reads it.

`ReceiveMessage` (up to 10, a short wait, all attributes); the messages not listed in `batchItemFailures`
are deleted. If the handler raises, or names an id that is not in the batch, nothing is deleted: the
messages come back after the visibility timeout, and moto's server moves a message to the DLQ named by the
queue's redrive policy on the first `ReceiveMessage` after its receive count reached `maxReceiveCount`
(as SQS does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.lambda_events import Function, batch_item_failures, sqs_record

logger = logging.getLogger("devstack.event_runner")


@dataclass
class SqsSource:
    """Polls one queue and invokes `handler` with Lambda-shaped events; `poll()` handles one batch."""

    function: Function
    queue_url: str
    sqs: Callable[[], Any]  # the client, built when first needed
    queue_arn: Callable[[], str]
    batch_size: int
    wait_seconds: int
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def poll(self, wait_seconds: int | None = None) -> int:
        """One `ReceiveMessage` and, if it got any, one invocation; returns the number of messages."""
        wait = self.wait_seconds if wait_seconds is None else wait_seconds
        with self._lock:
            response = self.sqs().receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=int(wait),  # always explicit: the queue's own default wait is 20 s
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                return 0
            records = [sqs_record(message, self.queue_arn(), self.function.region) for message in messages]
            self._deliver(records)
            self.function.stats["sqs_messages"] += len(records)
            return len(records)

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        context = self.function.context()
        self.function.stats["sqs_invocations"] += 1
        ids = [r["messageId"] for r in records]
        try:
            result = self.function.handler({"Records": records}, context)
        except Exception:
            logger.exception("%s failed on %d message(s); they return after the visibility timeout",
                             context.function_name, len(records))
            self.function.stats["sqs_errors"] += 1
            return
        failed = batch_item_failures(result, ids)
        if failed is None:
            logger.error("%s returned an invalid batchItemFailures response, the whole batch failed: %r",
                         context.function_name, result)
            self.function.stats["sqs_errors"] += 1
            return
        if failed:
            self.function.stats["sqs_item_failures"] += len(failed)
            logger.warning("%s reported %d failed message(s): %s", context.function_name, len(failed),
                           sorted(failed))
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start:start + 10]
            response = self.sqs().delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                logger.warning("could not delete message %s: %s", chunk[int(failure["Id"])]["messageId"],
                               failure.get("Message", failure.get("Code")))
        self.function.stats["sqs_deleted"] += len(done)
