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
from typing import TYPE_CHECKING, Any

from pynamodb.transactions import TransactWrite

from ..domain.periods import utc_iso
from . import keys
from .convert import tiers_to_json
from .models import LineItemRecord

if TYPE_CHECKING:
    from .usage_writer import LineTarget, Placement

Span = tuple[str | None, str | None]  # first and last usage time as stored; a missing line has none


@dataclass
class LineSum:
    """A chunk's events of one line, summed."""

    target: LineTarget
    quantity: Decimal = Decimal(0)
    events: int = 0
    first: datetime | None = None
    last: datetime | None = None


def aggregate(placements: list[Placement]) -> list[LineSum]:
    sums: dict[tuple[str, str, str], LineSum] = {}
    for p in placements:
        t = p.target
        line = sums.setdefault((t.org, t.invoice_id, t.line_id), LineSum(t))
        line.quantity += p.quantity
        line.events += 1
        line.first = p.timestamp if line.first is None else min(line.first, p.timestamp)
        line.last = p.timestamp if line.last is None else max(line.last, p.timestamp)
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
    L = LineItemRecord
    if stored[0] is None or stored[1] is None:
        return [L.first_usage_at.set(first), L.last_usage_at.set(last)], L.first_usage_at.does_not_exist()
    new_first, new_last = min(stored[0], first), max(stored[1], last)
    if (new_first, new_last) == stored:
        return [], None
    guard = (L.first_usage_at == stored[0]) & (L.last_usage_at == stored[1])
    return [L.first_usage_at.set(new_first), L.last_usage_at.set(new_last)], guard


def _chunk_span(line: LineSum) -> tuple[str, str]:
    assert line.first is not None and line.last is not None
    return utc_iso(line.first), utc_iso(line.last)  # fixed-width UTC: string order is time order


def _line_key(t: LineTarget) -> LineItemRecord:
    return LineItemRecord(keys.lines_pk(t.org, t.invoice_id), keys.line_sk(t.line_id))


def _snapshot(line: LineSum, now: datetime) -> list[tuple[Any, Any]]:
    """What the line's first write fixes: the price in force, the description, where it belongs."""
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
    return snapshot


def _new_line(line: LineSum, now: datetime) -> LineItemRecord:
    first, last = _chunk_span(line)
    t = line.target
    record = LineItemRecord(keys.lines_pk(t.org, t.invoice_id), keys.line_sk(t.line_id),
                            quantity=line.quantity, event_count=line.events, first_usage_at=first, last_usage_at=last)
    for attribute, value in _snapshot(line, now):
        setattr(record, attribute.attr_name, value)
    return record


def _line_actions(line: LineSum, now: datetime) -> list[Any]:
    L = LineItemRecord
    # Set only where absent: a line created meanwhile keeps its own snapshot; later writes only add.
    actions = [attr.set(attr | value) for attr, value in _snapshot(line, now)]
    actions += [L.quantity.add(line.quantity), L.event_count.add(line.events)]
    return actions
