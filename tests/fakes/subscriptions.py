"""An in-memory `Timelines` with the table's guarantees (tests/contract/test_contract_timelines.py holds it to
them): a change recorded once per id, the version up by one with each, the materialized mark only at the
current version, and recurring lines written only while the timeline is at the version they were computed from
and the invoice is a draft.

The recurring lines live among the invoice's lines in `MemoryInvoices` (ids starting with the recurring prefix),
as they live among the line records on the table; a write of them is one `MemoryTransaction` over both fakes.
Timelines and lines are frozen dataclasses, so handing out the stored ones is as safe as a copy.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from chalicelib.domain.errors import InvoiceClosed, StaleRead
from chalicelib.domain.lines import LineItem
from chalicelib.domain.periods import Period
from chalicelib.domain.plans import PlanChange, Timeline, materialized_mark
from chalicelib.domain.proration import RECURRING_LINE_PREFIX
from chalicelib.services.ports import TransactionPart

from .invoices import HEADER, MemoryInvoices
from .transaction import TABLE_LOCK, MemoryTransaction, TransactionCancelled


def _timeline_check(org: str) -> str:
    """The name of the timeline's condition in a cancelled transaction."""
    return f"the plan timeline of {org}"


class MemoryTimelines:
    def __init__(self, invoices: MemoryInvoices) -> None:
        self._invoices = invoices  # where recurring lines are written, among the invoice's other lines
        self._timelines: dict[str, Timeline] = {}
        self._lock = TABLE_LOCK  # the fakes' one table: a recorded change never slips into a transaction

    # -- reads -------------------------------------------------------------------------------------
    def get(self, org: str) -> Timeline | None:
        return self._timelines.get(org)

    def subscribed(self) -> list[Timeline]:
        """As the table's index (sorted by org), read at once: the fake has no lag."""
        with self._lock:
            return [self._timelines[org] for org in sorted(self._timelines)]

    def recurring_lines(self, org: str, invoice_id: str) -> list[LineItem]:
        return [line for line in self._invoices.lines(org, invoice_id) if line.id.startswith(RECURRING_LINE_PREFIX)]

    # -- writes ------------------------------------------------------------------------------------
    def record(self, org: str, change: PlanChange, now: datetime) -> tuple[Timeline, bool]:
        with self._lock:
            current = self._timelines.get(org) or Timeline(org, (), 0, None)
            if current.change(change.id) is not None:
                return current, False
            recorded = Timeline(org, current.changes + (change,), current.version + 1, current.materialized)
            self._timelines[org] = recorded
            return recorded, True

    def mark_materialized(self, org: str, version: int, period: Period) -> None:
        with self._lock:
            stored = self._timelines.get(org)
            if stored is not None and stored.version == version:  # a newer version's writer marks its own
                self._timelines[org] = replace(stored, materialized=materialized_mark(version, period))

    def guard(self, org: str, version: int) -> TransactionPart:
        def part(tx: MemoryTransaction) -> None:
            tx.check(_timeline_check(org), lambda: self._at(org, version))
        return part

    def write_lines(self, org: str, invoice_id: str, version: int, put: list[LineItem], delete: list[str],
                    now: datetime) -> None:
        if {line.id for line in put} & set(delete):
            raise ValueError("a write puts or deletes a line, not both (the table refuses two actions on one item)")
        # As the table's transaction: the timeline's check, the invoice's, then the puts and deletes.
        tx = MemoryTransaction()
        self.guard(org, version)(tx)
        tx.check(HEADER, lambda: self._invoices.is_draft(org, invoice_id))
        tx.write(lambda: self._invoices.write_lines(org, invoice_id, put, tuple(delete)))
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if HEADER in cancelled.failed:
                raise InvoiceClosed(f"invoice {invoice_id} of {org} is no longer a draft") from cancelled
            raise StaleRead(f"the plan changes of {org} moved on; compute again") from cancelled

    def _at(self, org: str, version: int) -> bool:
        stored = self._timelines.get(org)
        return stored is not None and stored.version == version
