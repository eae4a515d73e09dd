"""Reading and replaying the sync dead-letter queue.

Looking never consumes: messages are received with a short visibility and made visible
again as soon as they have been read. Replay is safe to repeat and replays each invoice once,
however many dead letters it has (every message costs the worker Stripe requests): an invoice
that still needs Stripe is marked pending with a new requested time, and the table's stream
sends its one sync message, as for `resync`; an already-synced invoice's message goes back as
is, once; any other message of an invoice already replayed in the run is deleted. A message
leaves the DLQ only after its replay was done, so a crash between the steps leaves, at worst,
one more message for the worker to find nothing to do with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ..domain.invoice import SyncState
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
        outcome = self._replay(target, now, set(), dry_run=dry_run)
        if dry_run or outcome.action is ReplayAction.SKIP:
            self._release([target])
        return ReplayReport(dry_run=dry_run, method="receive-send-delete", outcomes=[outcome])

    def replay_all(self, now: datetime, dry_run: bool) -> ReplayReport:
        if dry_run:
            held = self._scan(None)
            replayed: set[tuple[str, str]] = set()
            try:
                return ReplayReport(dry_run=True, method=self._method(),
                                    outcomes=[self._replay(raw, now, replayed, dry_run=True) for raw in held.values()])
            finally:
                self._release(held.values())
        if not self.local:
            done, report = self._move_task(now)
            if report is not None:
                return report
            fallback = self._replay_each(now)  # sees only what the move task would have moved
            return replace(fallback, outcomes=done + fallback.outcomes)
        return self._replay_each(now)

    def _replay_each(self, now: datetime) -> ReplayReport:
        outcomes: list[ReplayOutcome] = []
        seen: set[str] = set()
        replayed: set[tuple[str, str]] = set()
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
                    outcome = self._replay(raw, now, replayed, dry_run=False)
                    outcomes.append(outcome)
                    if outcome.action is ReplayAction.SKIP:
                        skipped[raw["MessageId"]] = raw
        finally:
            self._release(skipped.values())
        return ReplayReport(dry_run=False, method="receive-send-delete", outcomes=outcomes)

    def _replay(self, raw: Raw, now: datetime, replayed: set[tuple[str, str]], dry_run: bool,
                send: bool = True) -> ReplayOutcome:
        """Plan one message and, unless a dry run, carry it out (`send=False`: a move task sends what moves).

        `replayed` holds the invoices this run already replayed: their other messages are dropped.
        """
        org, invoice_id = parse_body(raw["Body"])
        invoice = lookup(self.repo, org, invoice_id) if org and invoice_id else None
        action, detail = plan(invoice, org)
        if invoice is not None and action is not ReplayAction.SKIP:
            if (invoice.org, invoice.id) in replayed:
                action, detail = ReplayAction.DROP, "another message of this invoice was replayed in this run"
            replayed.add((invoice.org, invoice.id))
        state = invoice.sync.state.value if invoice else None
        if dry_run or invoice is None or action is ReplayAction.SKIP:
            return ReplayOutcome(raw["MessageId"], org, invoice_id, action, detail, state)
        if action is ReplayAction.RESYNC:
            # Pending with a new requested time: the table's stream sends the one sync message for that
            # change (sending one here too would sync the invoice twice). Until the worker is done, the
            # invoice never looks settled, and the reconciler re-enqueues it if it stays pending.
            self.repo.request_sync(invoice, now)
            state = SyncState.PENDING.value
        if action is ReplayAction.MOVE and send:
            self.sqs.send_message(QueueUrl=self.sync_queue_url, MessageBody=raw["Body"])
        if send or action is not ReplayAction.MOVE:
            # Deleted only once its replay is done: a crash in between leaves a duplicate, never a loss.
            self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=raw["ReceiptHandle"])
        return ReplayOutcome(raw["MessageId"], org, invoice_id, action, detail, state)

    def _move_task(self, now: datetime) -> tuple[list[ReplayOutcome], ReplayReport | None]:
        """AWS: mark the DLQ's invoices pending and delete the messages the stream replaces or another
        message repeats, then let SQS move the rest. Without move tasks in this SQS, the report is None
        and the outcomes are what was already done (resyncs and drops)."""
        held = self._scan(None)
        replayed: set[tuple[str, str]] = set()
        outcomes: list[ReplayOutcome] = []
        try:
            for raw in held.values():
                outcomes.append(self._replay(raw, now, replayed, dry_run=False, send=False))
        finally:
            deleted = {o.message_id for o in outcomes if o.action in (ReplayAction.RESYNC, ReplayAction.DROP)}
            self._release(raw for raw in held.values() if raw["MessageId"] not in deleted)  # a task moves visible ones
        done = [o for o in outcomes if o.message_id in deleted]
        source, destination = queues.arn(self.sqs, self.dlq_url), queues.arn(self.sqs, self.sync_queue_url)
        try:
            running = [task for task in self.sqs.list_message_move_tasks(SourceArn=source, MaxResults=10)["Results"]
                       if task.get("Status") == "RUNNING"]
            if running:
                return done, ReplayReport(dry_run=False, method="message-move-task", outcomes=outcomes,
                                          move_task=running[0].get("TaskHandle"),
                                          note="a move task is already running; no other was started")
            handle = self.sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)["TaskHandle"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in NOT_IMPLEMENTED:
                return done, None
            raise
        return done, ReplayReport(
            dry_run=False, method="message-move-task", outcomes=outcomes, move_task=str(handle),
            note="SQS moves the messages left, skipped ones too: the worker drops or dead-letters those")

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
