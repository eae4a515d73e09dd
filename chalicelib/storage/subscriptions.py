"""An org's plan changes, and the recurring lines they put on open invoices.

The timeline is one item per org (`ORG#{org} / SUBS`) whose `version` goes up with every
recorded change, so concurrent changes serialise on it and never lose each other. Every
write of recurring lines checks, in the same transaction, that the timeline is still at the
version the lines were computed from and that the invoice is still a draft: a writer that
computed from an older timeline cannot overwrite a newer one's lines, and a write racing a
finalize either lands before `draft -> finalizing` (and finalize reads it) or fails and is
routed to the next open invoice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from ..domain.errors import InvoiceClosed, StaleRead
from ..domain.invoice import InvoiceStatus
from ..domain.lines import LineItem
from ..domain.periods import Period, parse_utc, utc_iso
from ..domain.plans import PlanChange, Timeline, materialized_mark
from ..domain.proration import RECURRING_LINE_PREFIX
from ..failures import condition_failed
from . import keys
from .convert import line_from_record, record_from_line
from .invoice_headers import Write
from .items import get_or_none
from .models import InvoiceItem, LineItemRecord, SubscriptionsItem

MAX_LINE_WRITES = 98  # plus the two condition checks: DynamoDB's 100 actions per transaction


def _changes_json(changes: tuple[PlanChange, ...]) -> str:
    return json.dumps([{"id": c.id, "family": c.family, "plan": c.plan, "effective_at": utc_iso(c.effective_at),
                        "recorded_at": utc_iso(c.recorded_at)} for c in changes])


def _timeline(item: SubscriptionsItem) -> Timeline:
    changes = tuple(
        PlanChange(raw["id"], raw["family"], raw["plan"], parse_utc(raw["effective_at"]), parse_utc(raw["recorded_at"]))
        for raw in json.loads(item.changes)
    )
    return Timeline(item.org, changes, item.version, item.materialized)


class SubscriptionRepository:
    def get(self, org: str) -> Timeline | None:
        item = get_or_none(SubscriptionsItem, keys.org_pk(org), keys.SUBS_SK)
        return _timeline(item) if item is not None else None

    def subscribed(self) -> Iterator[Timeline]:
        """Every org with a timeline (read from the index, so possibly a moment behind)."""
        for item in SubscriptionsItem.subscribed_index.query(keys.SUBSCRIBED_GSI_PK):
            yield _timeline(item)

    def record(self, org: str, change: PlanChange, now: datetime) -> tuple[Timeline, bool]:
        """Add `change` unless its id is already there; False when it was (the caller compares)."""
        for _ in range(20):
            current = self.get(org) or Timeline(org, (), 0, None)
            if current.change(change.id) is not None:
                return current, False
            changes = current.changes + (change,)
            try:
                if current.version == 0:
                    SubscriptionsItem(keys.org_pk(org), keys.SUBS_SK, org=org, changes=_changes_json(changes),
                                      version=1, updated_at=now, gsi1pk=keys.SUBSCRIBED_GSI_PK,
                                      gsi1sk=keys.safe(org)).save(condition=SubscriptionsItem.pk.does_not_exist())
                else:
                    SubscriptionsItem(keys.org_pk(org), keys.SUBS_SK).update(
                        actions=[SubscriptionsItem.changes.set(_changes_json(changes)),
                                 SubscriptionsItem.version.set(current.version + 1),
                                 SubscriptionsItem.updated_at.set(now)],
                        condition=SubscriptionsItem.version == current.version)
            except (PutError, UpdateError) as error:
                if condition_failed(error):
                    continue  # another change was recorded first: read again
                raise
            return Timeline(org, changes, current.version + 1, current.materialized), True
        raise StaleRead(f"the plan changes of {org} kept changing; retry")

    def mark_materialized(self, org: str, version: int, period: Period) -> None:
        """Remember that this version's lines are written as of `period`; the month-end sweep skips it."""
        try:
            SubscriptionsItem(keys.org_pk(org), keys.SUBS_SK).update(
                actions=[SubscriptionsItem.materialized.set(materialized_mark(version, period))],
                condition=SubscriptionsItem.version == version)
        except UpdateError as error:
            if not condition_failed(error):
                raise  # a newer version came in: its writer marks it

    def recurring_lines(self, org: str, invoice_id: str) -> list[LineItem]:
        records = LineItemRecord.query(keys.lines_pk(org, invoice_id),
                                       LineItemRecord.sk.startswith(keys.line_sk(RECURRING_LINE_PREFIX)),
                                       consistent_read=True)
        return [line_from_record(record) for record in records]

    def guard(self, org: str, version: int) -> Write:
        """For another transaction: it commits only if the timeline is still at `version`."""
        def check(tx: TransactWrite) -> None:
            tx.condition_check(SubscriptionsItem, keys.org_pk(org), keys.SUBS_SK,
                               condition=SubscriptionsItem.version == version)
        return check

    def write_lines(self, org: str, invoice_id: str, version: int, put: list[LineItem], delete: list[str],
                    now: datetime) -> None:
        """Make the draft's recurring lines what the timeline at `version` says, if both still hold."""
        writes: list[LineItem | str] = [*delete, *put]
        for start in range(0, len(writes), MAX_LINE_WRITES):
            self._write_chunk(org, invoice_id, version, writes[start:start + MAX_LINE_WRITES], now)

    def _write_chunk(self, org: str, invoice_id: str, version: int, writes: list[LineItem | str],
                     now: datetime) -> None:
        # Condition checks go first in the request (PynamoDB's order): the timeline, then the invoice.
        try:
            with TransactWrite(connection=SubscriptionsItem._get_connection().connection) as tx:
                self.guard(org, version)(tx)
                tx.condition_check(InvoiceItem, keys.org_pk(org), keys.invoice_sk(invoice_id),
                                   condition=InvoiceItem.status == InvoiceStatus.DRAFT.value)
                for target in writes:
                    if isinstance(target, LineItem):
                        tx.save(record_from_line(org, invoice_id, target, now))
                    else:
                        tx.delete(LineItemRecord(keys.lines_pk(org, invoice_id), keys.line_sk(target)))
        except TransactWriteError as error:
            reasons = list(error.cancellation_reasons or [])
            failed = [r is not None and r.code == "ConditionalCheckFailed" for r in reasons]
            if len(failed) > 1 and failed[1]:
                raise InvoiceClosed(f"invoice {invoice_id} of {org} is no longer a draft") from error
            if failed and failed[0] or any(r is not None and r.code == "TransactionConflict" for r in reasons):
                raise StaleRead(f"the plan changes of {org} moved on; compute again") from error
            raise
