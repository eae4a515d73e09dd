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
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..domain.invoice import InvoiceStatus
from ..domain.lines import LineKind
from ..domain.periods import utc_iso
from ..domain.pricebook import Quote
from . import buckets, keys
from .convert import tiers_to_json
from .models import EventRecord, InvoiceItem, LineItemRecord

MAX_ACTIONS = 100  # DynamoDB's TransactWriteItems limit
RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
RETRYABLE_ERRORS = frozenset({"TransactionInProgressException", "ThrottlingException"})
MAX_CONTENTION_RETRIES = 12


class WriteOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    INVOICE_CLOSED = "invoice_closed"


class StorageBusy(Exception):
    """DynamoDB kept refusing under contention; the caller should answer 503 and let the client retry."""


@dataclass(frozen=True)
class LineTarget:
    org: str
    invoice_id: str
    line_id: str
    kind: LineKind
    quote: Quote
    description: str
    app: str
    region: str | None
    usage_period: str


@dataclass(frozen=True)
class Placement:
    """One validated event and the line it goes to."""

    org: str
    event_id: str
    quantity: Decimal
    timestamp: datetime
    target: LineTarget
    expires_at: int


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
    """Apply the placements; returns the outcome per (org, event id)."""
    outcomes: dict[tuple[str, str], WriteOutcome] = {}
    for group in chunk(placements):
        outcomes.update(_commit_chunk(group, now))
    return outcomes


def _commit_chunk(placements: list[Placement], now: datetime) -> dict[tuple[str, str], WriteOutcome]:
    outcomes: dict[tuple[str, str], WriteOutcome] = {}
    pending = list(placements)
    contention = 0
    while pending:
        invoices = sorted({(p.target.org, p.target.invoice_id) for p in pending})
        lines = _aggregate(pending)
        try:
            _transact(invoices, pending, lines, _stored_spans(lines), now)
        except TransactWriteError as error:
            reasons = list(error.cancellation_reasons or [])
            if not reasons:
                if getattr(error, "cause_response_code", "") in RETRYABLE_ERRORS:
                    contention = _backoff(contention)
                    continue
                raise
            line_reasons = reasons[len(invoices) + len(pending):]
            pending, settled = _sort_out(reasons, invoices, pending)
            outcomes.update(settled)
            if not settled:
                # A line's usage span moved under us, or plain contention: read again and retry.
                span_moved = any(r is not None and r.code == "ConditionalCheckFailed" for r in line_reasons)
                if not span_moved and not any(r is not None and r.code in RETRYABLE_REASONS for r in reasons):
                    raise
                contention = _backoff(contention)
            continue
        outcomes.update({(p.org, p.event_id): WriteOutcome.ACCEPTED for p in pending})
        pending = []
    return outcomes


def _backoff(attempt: int) -> int:
    if attempt >= MAX_CONTENTION_RETRIES:
        raise StorageBusy("usage write kept conflicting; retry the batch")
    time.sleep(random.randint(0, min(500, 5 * 2**attempt)) / 1000)  # full jitter, milliseconds
    return attempt + 1


def _sort_out(
    reasons: list[Any], invoices: list[tuple[str, str]], pending: list[Placement]
) -> tuple[list[Placement], dict[tuple[str, str], WriteOutcome]]:
    """Read a cancellation: which invoices closed, which events were already counted."""
    failed = lambda index: reasons[index] is not None and reasons[index].code == "ConditionalCheckFailed"  # noqa: E731
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


@dataclass
class _LineSum:
    target: LineTarget
    quantity: Decimal = Decimal(0)
    events: int = 0
    first: datetime | None = None
    last: datetime | None = None


def _aggregate(placements: list[Placement]) -> list[_LineSum]:
    sums: dict[tuple[str, str, str], _LineSum] = {}
    for p in placements:
        t = p.target
        line = sums.setdefault((t.org, t.invoice_id, t.line_id), _LineSum(t))
        line.quantity += p.quantity
        line.events += 1
        line.first = p.timestamp if line.first is None else min(line.first, p.timestamp)
        line.last = p.timestamp if line.last is None else max(line.last, p.timestamp)
    return list(sums.values())


Span = tuple[str | None, str | None]


def _stored_spans(lines: list[_LineSum]) -> dict[tuple[str, str], Span]:
    """Each line's stored first and last usage time (DynamoDB updates have no min or max)."""
    keys_wanted = [(keys.lines_pk(s.target.org, s.target.invoice_id), keys.line_sk(s.target.line_id)) for s in lines]
    found: dict[tuple[str, str], Span] = {}
    for record in LineItemRecord.batch_get(keys_wanted, consistent_read=True,
                                           attributes_to_get=["pk", "sk", "first_usage_at", "last_usage_at"]):
        found[(record.pk, record.sk)] = (record.first_usage_at, record.last_usage_at)
    return found


def _transact(
    invoices: list[tuple[str, str]], placements: list[Placement], lines: list[_LineSum],
    spans: dict[tuple[str, str], Span], now: datetime,
) -> None:
    # Action order is condition checks, puts, updates (PynamoDB sends them in that order);
    # _sort_out and _commit_chunk rely on it to read cancellation reasons by index.
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
            )
            tx.save(record, condition=EventRecord.pk.does_not_exist())
        for line in lines:
            key = _line_key(line.target)
            span_actions, span_condition = _span_update(line, spans.get((key.pk, key.sk)))
            tx.update(key, actions=_line_actions(line, now) + span_actions, condition=span_condition)
        buckets.add_updates(tx, placements)  # unconditioned, after the line updates: reasons read by index above


def _span_update(line: _LineSum, stored: Span | None) -> tuple[list[Any], Any]:
    """Widen the line's usage span to include this chunk, guarded by the span we read.

    The guard makes a concurrent widening cancel the transaction (it is then read and
    retried), so the span is exact whatever order events arrive in.
    """
    assert line.first is not None and line.last is not None
    L = LineItemRecord
    first, last = utc_iso(line.first), utc_iso(line.last)  # fixed-width UTC: string order is time order
    if stored is None or stored[0] is None or stored[1] is None:
        return [L.first_usage_at.set(first), L.last_usage_at.set(last)], L.first_usage_at.does_not_exist()
    new_first, new_last = min(stored[0], first), max(stored[1], last)
    if (new_first, new_last) == stored:
        return [], None
    guard = (L.first_usage_at == stored[0]) & (L.last_usage_at == stored[1])
    return [L.first_usage_at.set(new_first), L.last_usage_at.set(new_last)], guard


def _line_key(t: LineTarget) -> LineItemRecord:
    return LineItemRecord(keys.lines_pk(t.org, t.invoice_id), keys.line_sk(t.line_id))


def _line_actions(line: _LineSum, now: datetime) -> list[Any]:
    t, q, L = line.target, line.target.quote, LineItemRecord
    snapshot: list[tuple[Any, Any]] = [
        (L.org, t.org), (L.invoice_id, t.invoice_id), (L.line_id, t.line_id), (L.kind, t.kind.value),
        (L.category, q.category.value), (L.product, q.product), (L.description, t.description),
        (L.app, t.app), (L.resource, q.resource), (L.meter, q.meter), (L.unit, q.unit),
        (L.display_unit, q.display_unit), (L.display_divisor, q.display_divisor),
        (L.unit_price, q.rate.unit_price), (L.price_per, q.rate.price_per), (L.price_unit, q.rate.price_unit),
        (L.tiers, tiers_to_json(q.rate.tiers)), (L.free_allowance, q.rate.free_allowance),
        (L.price_version, q.price_version), (L.usage_period, t.usage_period), (L.created_at, now),
    ]
    if t.region is not None:
        snapshot.append((L.region, t.region))
    if q.free_pool is not None:
        snapshot.append((L.free_pool, q.free_pool))
    # The first write fixes the snapshot (price in force, description); later writes only add.
    actions = [attr.set(attr | value) for attr, value in snapshot]
    actions += [L.quantity.add(line.quantity), L.event_count.add(line.events)]
    return actions


def dedup_records(keys_wanted: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """Where already-counted events landed: (org, event id) → (invoice id, line id)."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    wanted = {keys.event_pk(org, event_id): (org, event_id) for org, event_id in keys_wanted}
    for record in EventRecord.batch_get([(pk, keys.EVENT_SK) for pk in wanted], consistent_read=True):
        found[wanted[record.pk]] = (record.invoice_id, record.line_id)
    return found
