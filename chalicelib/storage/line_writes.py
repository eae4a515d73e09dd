"""What one usage transaction writes to each line: the chunk's sum, and the line's usage span.

A line not in the table yet is written whole (a Put conditioned on its absence: the snapshot of
price and description, the sums and the span); a line that exists gets an Update that ADDs the
sums and widens the span, guarded by the span read before. Either way a concurrent writer makes
the condition fail, and the transaction is read again and retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.transactions import TransactWrite

from ..domain.lines import LineItem
from ..domain.periods import utc_iso
from ..domain.placement import LineTarget, Placement, tallied_line
from . import keys
from .convert import LINE_SNAPSHOT, LINE_TALLY, line_placement, new_line_record, stored_values
from .models import LineItemRecord

Span = tuple[str | None, str | None]  # first and last usage time as stored; a missing line has none


@dataclass
class LineSum:
    """A chunk's events of one line, summed."""

    target: LineTarget
    quantity: Decimal = Decimal(0)
    events: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def as_line(self) -> LineItem:
        return tallied_line(self.target, self.quantity, self.events, self.first, self.last)


def aggregate(placements: list[Placement]) -> list[LineSum]:
    sums: dict[tuple[str, str, str], LineSum] = {}
    for placement in placements:
        target = placement.target
        line = sums.setdefault((target.org, target.invoice_id, target.line_id), LineSum(target))
        line.quantity += placement.quantity
        line.events += 1
        line.first = placement.timestamp if line.first is None else min(line.first, placement.timestamp)
        line.last = placement.timestamp if line.last is None else max(line.last, placement.timestamp)
    return list(sums.values())


def stored_spans(lines: list[LineSum]) -> dict[tuple[str, str], Span]:
    """Each existing line's stored first and last usage time (DynamoDB updates have no min or max);
    lines not in the table are absent."""
    keys_wanted = [(keys.lines_pk(s.target.org, s.target.invoice_id), keys.line_sk(s.target.line_id)) for s in lines]
    found: dict[tuple[str, str], Span] = {}
    for record in LineItemRecord.batch_get(keys_wanted, consistent_read=True,
                                           attributes_to_get=["pk", "sk", "first_usage_at", "last_usage_at"]):
        found[(record.pk, record.sk)] = (record.first_usage_at, record.last_usage_at)
    return found


def add_line_write(tx: TransactWrite, line: LineSum, spans: dict[tuple[str, str], Span], now: datetime) -> None:
    """Put the line if it was missing when read, else update it (see the module docstring)."""
    key = _line_key(line.target)
    stored = spans.get((key.pk, key.sk))
    if stored is None:
        tx.save(_new_line(line, now), condition=LineItemRecord.pk.does_not_exist())
        return
    span_actions, span_condition = _span_update(line, stored)
    tx.update(key, actions=_line_actions(line, now) + span_actions, condition=span_condition)


def _span_update(line: LineSum, stored: Span) -> tuple[list[Any], Any]:
    """Widen the line's usage span to include this chunk, guarded by the span we read.

    The guard makes a concurrent widening cancel the transaction (it is then read and
    retried), so the span is exact whatever order events arrive in.
    """
    first, last = _chunk_span(line)
    first_at, last_at = LineItemRecord.first_usage_at, LineItemRecord.last_usage_at
    if stored[0] is None or stored[1] is None:
        return [first_at.set(first), last_at.set(last)], first_at.does_not_exist()
    new_first, new_last = min(stored[0], first), max(stored[1], last)
    if (new_first, new_last) == stored:
        return [], None
    guard = (first_at == stored[0]) & (last_at == stored[1])
    return [first_at.set(new_first), last_at.set(new_last)], guard


def _chunk_span(line: LineSum) -> tuple[str, str]:
    assert line.first is not None and line.last is not None
    return utc_iso(line.first), utc_iso(line.last)  # fixed-width UTC: string order is time order


def _line_key(target: LineTarget) -> LineItemRecord:
    return LineItemRecord(keys.lines_pk(target.org, target.invoice_id), keys.line_sk(target.line_id))


def _new_line(line: LineSum, now: datetime) -> LineItemRecord:
    """The whole line: its snapshot and this chunk's tally (no amount: that is frozen at finalize)."""
    target = line.target
    return new_line_record(target.org, target.invoice_id, line.as_line(), now, LINE_SNAPSHOT + LINE_TALLY)


def _line_actions(line: LineSum, now: datetime) -> list[Any]:
    target = line.target
    snapshot = line_placement(target.org, target.invoice_id, now) + stored_values(line.as_line(), LINE_SNAPSHOT)
    # Set only where absent: a line created meanwhile keeps its own snapshot; later writes only add.
    actions: list[Any] = [attribute.set(attribute | value) for attribute, value in snapshot]
    actions += [LineItemRecord.quantity.add(line.quantity), LineItemRecord.event_count.add(line.events)]
    return actions
