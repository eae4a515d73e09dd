"""An in-memory `UsageLedger` with the table's guarantees (tests/contract/ holds it to them): an event is
claimed and counted together or not at all, once, and only while its invoice is a draft."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from chalicelib.domain.invoice import InvoiceStatus
from chalicelib.domain.placement import CountedEvent, LineTarget, Placement, WriteOutcome, tallied_line
from fakes.invoices import MemoryInvoices
from fakes.transaction import TABLE_LOCK


@dataclass
class TalliedLine:
    """A line as the writes left it: what it is, how much, from how many events, over which span."""

    target: LineTarget
    quantity: Decimal
    events: int
    first: datetime
    last: datetime


class MemoryUsageLedger:
    def __init__(self, drafts: MemoryInvoices) -> None:
        self._drafts = drafts  # the lines are written there too: finalize reads them
        self._claims: dict[tuple[str, str], CountedEvent] = {}
        self.lines: dict[tuple[str, str, str], TalliedLine] = {}  # (org, invoice id, line id) → the line
        self.writes = 0
        # For tests: runs before each write, as what happens between routing and the transaction (a finalize).
        self.before_write: Callable[[int], None] | None = None
        self._lock = TABLE_LOCK  # one write at a time, as each chunk's transaction is all or nothing

    def write(self, placements: list[Placement], now: datetime) -> dict[tuple[str, str], WriteOutcome]:
        if self.before_write is not None:
            self.before_write(self.writes)
        with self._lock:
            self.writes += 1
            return {(p.org, p.event_id): self._write_one(p) for p in placements}

    def dedup_records(self, events: list[tuple[str, str]]) -> dict[tuple[str, str], CountedEvent]:
        return {key: self._claims[key] for key in events if key in self._claims}

    def quantity(self, org: str, invoice_id: str, line_id: str) -> Decimal:
        """For tests: the line's quantity, 0 when it was never written."""
        line = self.lines.get((org, invoice_id, line_id))
        return line.quantity if line else Decimal(0)

    def _write_one(self, placement: Placement) -> WriteOutcome:
        key, target = (placement.org, placement.event_id), placement.target
        if key in self._claims:
            return WriteOutcome.DUPLICATE
        invoice = self._drafts.get(target.org, target.invoice_id)
        if invoice is None or invoice.status is not InvoiceStatus.DRAFT:
            return WriteOutcome.INVOICE_CLOSED
        self._claims[key] = CountedEvent(target.invoice_id, target.line_id, placement.digest)
        line_key = (target.org, target.invoice_id, target.line_id)
        line = self.lines.get(line_key)
        if line is None:
            self.lines[line_key] = TalliedLine(target, placement.quantity, 1, placement.timestamp, placement.timestamp)
        else:
            line.quantity += placement.quantity
            line.events += 1
            line.first, line.last = min(line.first, placement.timestamp), max(line.last, placement.timestamp)
        tally = self.lines[line_key]
        self._drafts.write_lines(target.org, target.invoice_id,
                                 [tallied_line(target, tally.quantity, tally.events, tally.first, tally.last)])
        return WriteOutcome.ACCEPTED
