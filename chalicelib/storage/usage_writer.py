"""The ingestion write path: dedup and aggregation in one DynamoDB transaction.

Each transaction holds, for a chunk of events:
  - a ConditionCheck per target invoice: it must still be a draft;
  - a Put per event of its dedup record, conditioned on not existing;
  - one Update per line, ADDing the summed quantity of the chunk's events for that line;
  - one Update per line and day of the chunk's events: the line's usage buckets (buckets.py).
They commit together or not at all, so an event is never claimed without being counted
nor counted twice. A cancelled transaction tells, per action, why: duplicate events are
dropped, events whose invoice closed meanwhile go back to the caller for re-routing, and
contention is retried with backoff.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..domain.errors import Busy
from ..domain.invoice import InvoiceStatus
from ..domain.placement import CountedEvent, Placement, WriteOutcome
from ..failures import TRANSIENT_REASONS, describe, is_transient
from ..observability import logger
from . import buckets, keys
from .lanes import lanes, run_lanes
from .line_writes import LineSum, Span, add_line_write, aggregate, stored_spans
from .models import EventRecord, InvoiceItem, LineItemRecord

MAX_ACTIONS = 100  # DynamoDB's TransactWriteItems limit
MAX_CONTENTION_RETRIES = 12
# Transactions of one request in flight at once: enough to overlap DynamoDB's round trips, few enough
# that a request's own transactions rarely contend for its invoice's ConditionCheck.
PARALLEL_TRANSACTIONS = 4


@dataclass
class _Chunk:
    placements: list[Placement] = field(default_factory=list)
    invoices: set[tuple[str, str]] = field(default_factory=set)
    lines: set[tuple[str, str, str]] = field(default_factory=set)
    day_buckets: set[buckets.BucketKey] = field(default_factory=set)

    def actions_with(self, placement: Placement) -> int:
        t = placement.target
        extra_invoice = (t.org, t.invoice_id) not in self.invoices
        extra_line = (t.org, t.invoice_id, t.line_id) not in self.lines
        extra_bucket = buckets.bucket_of(placement) not in self.day_buckets
        return (len(self.invoices) + len(self.lines) + len(self.day_buckets) + len(self.placements) + 1
                + extra_invoice + extra_line + extra_bucket)

    def add(self, placement: Placement) -> None:
        t = placement.target
        self.placements.append(placement)
        self.invoices.add((t.org, t.invoice_id))
        self.lines.add((t.org, t.invoice_id, t.line_id))
        self.day_buckets.add(buckets.bucket_of(placement))


def chunk(placements: Iterable[Placement]) -> list[list[Placement]]:
    """Pack events into transactions of at most 100 actions, keeping each line's events together."""
    ordered = sorted(placements, key=lambda p: (p.target.org, p.target.invoice_id, p.target.line_id))
    chunks: list[_Chunk] = []
    current = _Chunk()
    for placement in ordered:
        if current.placements and current.actions_with(placement) > MAX_ACTIONS:
            chunks.append(current)
            current = _Chunk()
        current.add(placement)
    if current.placements:
        chunks.append(current)
    return [c.placements for c in chunks]


def write(placements: list[Placement], now: datetime) -> dict[tuple[str, str], WriteOutcome]:
    """Apply the placements; returns the outcome per (org, event id).

    Transactions that share no line commit concurrently (a 500-event request on 500 lines is 11
    transactions: one after the other they took seconds); those sharing a line, one after another.
    """
    groups = lanes(chunk(placements), lambda group: {_line_of(p) for p in group})
    if len(groups) > 1:
        _connect()  # botocore makes clients unsafely across threads: make them here, once
    outcomes: dict[tuple[str, str], WriteOutcome] = {}
    for settled in run_lanes(groups, lambda group: _commit_chunk(group, now), PARALLEL_TRANSACTIONS):
        outcomes.update(settled)
    return outcomes


def _line_of(placement: Placement) -> tuple[str, str, str]:
    return placement.target.org, placement.target.invoice_id, placement.target.line_id


def _connect() -> None:
    for model in (EventRecord, LineItemRecord):
        _ = model._get_connection().connection.client


def _commit_chunk(placements: list[Placement], now: datetime) -> dict[tuple[str, str], WriteOutcome]:
    outcomes: dict[tuple[str, str], WriteOutcome] = {}
    pending = list(placements)
    contention = 0
    while pending:
        invoices = sorted({(p.target.org, p.target.invoice_id) for p in pending})
        lines = aggregate(pending)
        try:
            _transact(invoices, pending, lines, stored_spans(lines), now)
        except TransactWriteError as error:
            reasons = list(error.cancellation_reasons or [])
            if not reasons:
                # Throttled, briefly unavailable or no answer: the dedup Puts make a retry safe.
                if not is_transient(error):
                    logger.error("usage transaction refused", extra=describe(error))
                    raise
                contention = _backoff(contention)
                continue
            line_reasons = reasons[len(invoices) + len(pending):]
            pending, settled = _sort_out(reasons, invoices, pending)
            outcomes.update(settled)
            if not settled:
                # A line was created or its usage span moved under us, or plain contention: read again, retry.
                span_moved = any(r is not None and r.code == "ConditionalCheckFailed" for r in line_reasons)
                if not span_moved and not any(r is not None and r.code in TRANSIENT_REASONS for r in reasons):
                    logger.error("usage transaction refused", extra=describe(error))
                    raise
                contention = _backoff(contention)
            continue
        outcomes.update({(p.org, p.event_id): WriteOutcome.ACCEPTED for p in pending})
        pending = []
    return outcomes


def _backoff(attempt: int) -> int:
    if attempt >= MAX_CONTENTION_RETRIES:
        raise Busy("usage write kept conflicting; retry the batch")
    time.sleep(random.randint(0, min(500, 5 * 2**attempt)) / 1000)  # full jitter, milliseconds
    return attempt + 1


def _sort_out(
    reasons: list[Any], invoices: list[tuple[str, str]], pending: list[Placement]
) -> tuple[list[Placement], dict[tuple[str, str], WriteOutcome]]:
    """Read a cancellation: which invoices closed, which events were already counted."""
    def failed(index: int) -> bool:
        return reasons[index] is not None and reasons[index].code == "ConditionalCheckFailed"

    closed = {invoices[i] for i in range(len(invoices)) if failed(i)}
    settled: dict[tuple[str, str], WriteOutcome] = {}
    remaining = []
    for offset, placement in enumerate(pending):
        key = (placement.org, placement.event_id)
        if failed(len(invoices) + offset):
            settled[key] = WriteOutcome.DUPLICATE
        elif (placement.target.org, placement.target.invoice_id) in closed:
            settled[key] = WriteOutcome.INVOICE_CLOSED
        else:
            remaining.append(placement)
    return remaining, settled


def _transact(
    invoices: list[tuple[str, str]], placements: list[Placement], lines: list[LineSum],
    spans: dict[tuple[str, str], Span], now: datetime,
) -> None:
    # Action order is condition checks, dedup puts, then the lines' puts and updates (PynamoDB sends
    # checks, puts, updates in that order); _sort_out and _commit_chunk rely on it to read cancellation
    # reasons by index: every reason after the dedup puts is a line's.
    connection = EventRecord._get_connection().connection
    with TransactWrite(connection=connection, client_request_token=str(uuid.uuid4())) as tx:
        for org, invoice_id in invoices:
            tx.condition_check(
                InvoiceItem, keys.org_pk(org), keys.invoice_sk(invoice_id),
                condition=InvoiceItem.status == InvoiceStatus.DRAFT.value,
            )
        for p in placements:
            record = EventRecord(
                keys.event_pk(p.org, p.event_id), keys.EVENT_SK,
                invoice_id=p.target.invoice_id, line_id=p.target.line_id, expires_at=p.expires_at,
                digest=p.digest,
            )
            tx.save(record, condition=EventRecord.pk.does_not_exist())
        for line in lines:
            add_line_write(tx, line, spans, now)  # a Put (new line, after the dedup Puts) or an Update
        buckets.add_updates(tx, placements)  # unconditioned, after the line writes: reasons read by index above


def dedup_records(keys_wanted: list[tuple[str, str]]) -> dict[tuple[str, str], CountedEvent]:
    """Where already-counted events landed, and their content fingerprint: (org, event id) → CountedEvent."""
    found: dict[tuple[str, str], CountedEvent] = {}
    wanted = {keys.event_pk(org, event_id): (org, event_id) for org, event_id in keys_wanted}
    for record in EventRecord.batch_get([(pk, keys.EVENT_SK) for pk in wanted], consistent_read=True):
        found[wanted[record.pk]] = CountedEvent(record.invoice_id, record.line_id, record.digest)
    return found


class UsageLedgerTable:
    """The write path as an object, for code that takes its ledger as a port (`services/ports.py`). It calls
    the module's functions at call time, so what replaces them (a test's failing transaction) applies."""

    def write(self, placements: list[Placement], now: datetime) -> dict[tuple[str, str], WriteOutcome]:
        return write(placements, now)

    def dedup_records(self, events: list[tuple[str, str]]) -> dict[tuple[str, str], CountedEvent]:
        return dedup_records(events)
