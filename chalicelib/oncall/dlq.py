"""Reading and replaying the sync dead-letter queue.

Looking never consumes: messages are received with a short visibility and made visible
again as soon as they have been read. Replay is safe to repeat: an invoice that still needs
Stripe is marked pending with a new requested time before its message goes back to the sync
queue, a message is deleted from the DLQ only after it was sent, and the worker treats an
already-synced invoice as done. A crash between the steps leaves, at worst, one more message
for the worker to find nothing to do with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .. import queue
from ..domain.invoice import SyncState
from ..domain.periods import utc_iso
from ..storage.invoices import InvoiceRepository
from . import queues
from .invoices import lookup
from .letters import DeadLetter, Raw, ReplayAction, ReplayOutcome, ReplayReport, dead_letters, parse_body, plan

# Long enough to deal with one batch, short enough that a crashed run hides nothing for long.
VISIBILITY_SECONDS = 30
BATCH = 10  # SQS's most per receive and per batch call
SYSTEM_ATTRIBUTES = ["SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"]
# How SQS look-alikes say they lack an action (AWS itself has StartMessageMoveTask).
NOT_IMPLEMENTED = frozenset({"NotImplemented", "InvalidAction", "UnsupportedOperation",
                             "AWS.SimpleQueueService.UnsupportedOperation"})


class DeadLetterQueue:
    def __init__(self, sqs: Any, dlq_url: str, sync_queue_url: str, repo: InvoiceRepository, *,
                 local: bool) -> None:
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.sync_queue_url = sync_queue_url
        self.repo = repo
        self.local = local
        # Long polling asks every SQS server, so a nearly empty queue does not look empty;
        # an emulator answers exactly and need not wait.
        self.wait_seconds = 0 if local else 1

    # -- looking -----------------------------------------------------------------------------
    def peek(self, limit: int) -> list[DeadLetter]:
        held = self._scan(limit)
        try:
            return dead_letters(held.values(), self.repo)
        finally:
            self._release(held.values())

    def find(self, message_id: str) -> DeadLetter | None:
        held = self._scan(None, until=lambda raw: raw["MessageId"] == message_id)
        try:
            raw = held.get(message_id)
            return dead_letters([raw], self.repo)[0] if raw else None
        finally:
            self._release(held.values())

    # -- replaying ---------------------------------------------------------------------------
    def replay_one(self, message_id: str, now: datetime, dry_run: bool) -> ReplayReport | None:
        """Replay one message; None when it is not in the DLQ (already replayed, expired, or a wrong id)."""
        held = self._scan(None, until=lambda raw: raw["MessageId"] == message_id)
        target = held.pop(message_id, None)
        self._release(held.values())
        if target is None:
            return None
        outcome = self._replay(target, now, dry_run=dry_run)
        if dry_run or outcome.action is ReplayAction.SKIP:
            self._release([target])
        return ReplayReport(dry_run=dry_run, method="receive-send-delete", outcomes=[outcome])

    def replay_all(self, now: datetime, dry_run: bool) -> ReplayReport:
        if dry_run:
            held = self._scan(None)
            try:
                return ReplayReport(dry_run=True, method=self._method(),
                                    outcomes=[self._replay(raw, now, dry_run=True) for raw in held.values()])
            finally:
                self._release(held.values())
        if not self.local:
            report = self._move_task(now)
            if report is not None:
                return report
        return self._replay_each(now)

    def _replay_each(self, now: datetime) -> ReplayReport:
        outcomes: list[ReplayOutcome] = []
        seen: set[str] = set()
        skipped: dict[str, Raw] = {}
        try:
            while True:
                batch = self._receive(BATCH)
                for raw in batch:
                    if raw["MessageId"] in skipped:
                        skipped[raw["MessageId"]] = raw  # only the latest receipt handle counts
                fresh = [raw for raw in batch if raw["MessageId"] not in seen]
                if not fresh:
                    break
                for raw in fresh:
                    seen.add(raw["MessageId"])
                    outcome = self._replay(raw, now, dry_run=False)
                    outcomes.append(outcome)
                    if outcome.action is ReplayAction.SKIP:
                        skipped[raw["MessageId"]] = raw
        finally:
            self._release(skipped.values())
        return ReplayReport(dry_run=False, method="receive-send-delete", outcomes=outcomes)

    def _replay(self, raw: Raw, now: datetime, dry_run: bool, send: bool = True) -> ReplayOutcome:
        """Plan one message and, unless a dry run, carry it out (`send=False`: a move task sends it)."""
        org, invoice_id = parse_body(raw["Body"])
        invoice = lookup(self.repo, org, invoice_id) if org and invoice_id else None
        action, detail = plan(invoice, org)
        state = invoice.sync.state.value if invoice else None
        if dry_run or invoice is None or action is ReplayAction.SKIP:
            return ReplayOutcome(raw["MessageId"], org, invoice_id, action, detail, state)
        body = raw["Body"]
        if action is ReplayAction.RESYNC:
            # Pending with a new requested time first, so the invoice never looks settled while its
            # message is in flight. The stream sends a message for that change too; the worker's
            # lease and state check absorb the duplicate, as they do SQS's own.
            self.repo.request_sync(invoice, now)
            body = queue.sync_message(invoice.org, invoice.id, utc_iso(now))
            state = SyncState.PENDING.value
        if send:
            self.sqs.send_message(QueueUrl=self.sync_queue_url, MessageBody=body)
            # Deleted only once sent: a crash in between leaves a duplicate, never a loss.
            self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=raw["ReceiptHandle"])
        return ReplayOutcome(raw["MessageId"], org, invoice_id, action, detail, state)

    def _move_task(self, now: datetime) -> ReplayReport | None:
        """AWS: mark the DLQ's invoices pending, then let SQS move every message; None if SQS can't."""
        held = self._scan(None)
        try:
            outcomes = [self._replay(raw, now, dry_run=False, send=False) for raw in held.values()]
        finally:
            self._release(held.values())  # the task moves visible messages only
        source, destination = queues.arn(self.sqs, self.dlq_url), queues.arn(self.sqs, self.sync_queue_url)
        try:
            running = [task for task in self.sqs.list_message_move_tasks(SourceArn=source, MaxResults=10)["Results"]
                       if task.get("Status") == "RUNNING"]
            if running:
                return ReplayReport(dry_run=False, method="message-move-task", outcomes=outcomes,
                                    move_task=running[0].get("TaskHandle"),
                                    note="a move task is already running; no other was started")
            handle = self.sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)["TaskHandle"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in NOT_IMPLEMENTED:
                return None
            raise
        return ReplayReport(dry_run=False, method="message-move-task", outcomes=outcomes, move_task=str(handle),
                            note="SQS moves every message, skipped ones too: the worker drops or dead-letters those")

    def _method(self) -> str:
        return "receive-send-delete" if self.local else "message-move-task"

    # -- SQS ---------------------------------------------------------------------------------
    def _receive(self, count: int) -> list[Raw]:
        response = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=count, WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=VISIBILITY_SECONDS, MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _scan(self, limit: int | None, until: Callable[[Raw], bool] | None = None) -> dict[str, Raw]:
        """Receive (and so hide) up to `limit` distinct messages; stops when SQS has no new ones."""
        held: dict[str, Raw] = {}
        while limit is None or len(held) < limit:
            batch = self._receive(BATCH if limit is None else min(BATCH, limit - len(held)))
            fresh = [raw for raw in batch if raw["MessageId"] not in held]
            held.update((raw["MessageId"], raw) for raw in batch)  # the latest receipt handle counts
            if not fresh:
                break
            if until is not None and any(until(raw) for raw in fresh):
                break
        return held

    def _release(self, held: Iterable[Raw]) -> None:
        """Make held messages visible again at once."""
        raws = list(held)
        for start in range(0, len(raws), BATCH):
            entries = [{"Id": str(i), "ReceiptHandle": raw["ReceiptHandle"], "VisibilityTimeout": 0}
                       for i, raw in enumerate(raws[start:start + BATCH])]
            # A failed entry (say, a message deleted meanwhile) needs nothing: its short visibility ends anyway.
            self.sqs.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)
