"""Invoice headers: reads, creation of a period's draft, and guarded status changes.

Every write is conditioned on the status (and version) it expects; a failed condition
becomes a named domain error, never a silent overwrite.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from ..domain.errors import Conflict, StaleRead, ValidationFailed
from ..domain.invoice import (
    Invoice,
    InvoiceStatus,
    SyncState,
    check_transition,
    invoice_id_for,
    invoice_number,
    number_prefix,
    refused_transition,
)
from ..domain.lines import Totals
from ..domain.periods import Period
from ..failures import is_transient
from . import keys
from .convert import index_state, invoice_from_record
from .items import get_or_none
from .models import InvoiceItem, OrgItem
from .rollups import add_to_rollups, open_month

Write = Callable[[TransactWrite], None]  # writes that join another write's transaction


def encode_cursor(invoice_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": invoice_id}).encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))["after"]
        return keys.safe(after)
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise ValidationFailed("cursor is not one this API issued") from error


def header_key(invoice: Invoice) -> InvoiceItem:
    """The invoice's header item, keys only: the target of an update."""
    return InvoiceItem(keys.org_pk(invoice.org), keys.invoice_sk(invoice.id))


class InvoiceHeaders:
    def get(self, org: str, invoice_id: str) -> Invoice | None:
        item = get_or_none(InvoiceItem, keys.org_pk(org), keys.invoice_sk(invoice_id))
        return invoice_from_record(item) if item is not None else None

    def page(self, org: str, limit: int, cursor: str | None) -> tuple[list[Invoice], str | None]:
        """Newest first (invoice ids sort by period), one page at a time."""
        start = None
        if cursor:
            start = {"pk": {"S": keys.org_pk(org)}, "sk": {"S": keys.invoice_sk(decode_cursor(cursor))}}
        # One more than asked: DynamoDB returns a LastEvaluatedKey whenever the limit is hit, even when
        # nothing follows, so only the extra item proves there is a next page.
        query = InvoiceItem.query(
            keys.org_pk(org),
            InvoiceItem.sk.startswith(keys.INVOICE_SK_PREFIX),
            scan_index_forward=False,
            limit=limit + 1,
            last_evaluated_key=start,
        )
        invoices = [invoice_from_record(item) for item in query]
        more = len(invoices) > limit
        invoices = invoices[:limit]
        return invoices, encode_cursor(invoices[-1].id) if more else None

    def by_state(self, state: str, before_period: Period | None = None) -> Iterator[Invoice]:
        condition: Condition | None = None
        if before_period is not None:
            condition = InvoiceItem.gsi1sk < f"{before_period}#"
        for item in InvoiceItem.state_index.query(keys.state_gsi_pk(state), condition):
            yield invoice_from_record(item)

    def open_month(self, period: Period) -> None:
        open_month(period)

    def create_draft(self, org: str, period: Period, now: datetime) -> Invoice:
        """Create the org's invoice for `period`, numbering it from the org's sequence.

        Racing creators converge: the invoice id is derived from the period, and the
        sequence bump and the insert commit together or not at all.
        """
        for _ in range(10):
            existing = self.get(org, invoice_id_for(period))
            if existing is not None:
                return existing
            profile = OrgItem.get(keys.org_pk(org), keys.PROFILE_SK, consistent_read=True)
            sequence = profile.invoice_seq + 1
            item = InvoiceItem(
                keys.org_pk(org),
                keys.invoice_sk(invoice_id_for(period)),
                org=org,
                invoice_id=invoice_id_for(period),
                number=invoice_number(number_prefix(org), sequence),
                period=str(period),
                status=InvoiceStatus.DRAFT.value,
                currency=profile.currency,
                created_at=now,
                updated_at=now,
                gsi1pk=keys.state_gsi_pk(InvoiceStatus.DRAFT.value),
                gsi1sk=keys.state_gsi_sk(str(period), org),
            )
            try:
                with TransactWrite(connection=OrgItem._get_connection().connection) as tx:
                    tx.update(
                        profile,
                        actions=[OrgItem.invoice_seq.set(sequence)],
                        condition=OrgItem.invoice_seq == profile.invoice_seq,
                    )
                    tx.save(item, condition=InvoiceItem.pk.does_not_exist())
                return invoice_from_record(item)
            except TransactWriteError:
                continue  # another writer numbered an invoice first: read again
        raise Conflict(f"could not create the {period} invoice for {org}: too much contention")

    def transition(
        self,
        invoice: Invoice,
        target: InvoiceStatus,
        now: datetime,
        *,
        totals: Totals | None = None,
        line_count: int | None = None,
        due_at: datetime | None = None,
        sync_state: SyncState | None = None,
        rollup_sign: int = 0,
        along: Write | None = None,
    ) -> Invoice:
        """Move the invoice to `target` if it is still at the status and version we read.

        With `rollup_sign` ±1, the month rollups change in the same transaction, so
        finance totals stay exact whatever crashes or retries happen around it. `along`
        adds its own guarded writes (credit movements, a subscription version check) to
        the same transaction; when one of those fails, StaleRead says to read and retry.
        """
        check_transition(invoice.status, target)
        updated = replace(invoice, status=target, updated_at=now, version=invoice.version + 1)
        actions: list[Action] = [
            InvoiceItem.status.set(target.value),
            InvoiceItem.updated_at.set(now),
            InvoiceItem.version.set(updated.version),
        ]
        if totals is not None and line_count is not None:
            updated = replace(
                updated, subtotal_cents=totals.subtotal_cents, credits_cents=totals.credits_cents,
                total_cents=totals.total_cents, line_count=line_count, finalized_at=now, due_at=due_at,
            )
            actions += [
                InvoiceItem.subtotal_cents.set(totals.subtotal_cents),
                InvoiceItem.credits_cents.set(totals.credits_cents),
                InvoiceItem.total_cents.set(totals.total_cents),
                InvoiceItem.line_count.set(line_count),
                InvoiceItem.finalized_at.set(now),
            ]
            if due_at is not None:
                actions.append(InvoiceItem.due_at.set(due_at))
        if target is InvoiceStatus.VOID:
            updated = replace(updated, voided_at=now)
            actions.append(InvoiceItem.voided_at.set(now))
        if sync_state is not None:
            updated = replace(updated, sync=replace(invoice.sync, state=sync_state, requested_at=now))
            actions += [InvoiceItem.sync_state.set(sync_state.value), InvoiceItem.sync_requested_at.set(now)]
        actions.append(InvoiceItem.gsi1pk.set(keys.state_gsi_pk(index_state(target, updated.sync.state))))
        condition = (InvoiceItem.status == invoice.status.value) & (InvoiceItem.version == invoice.version)
        if sync_state is None:
            # The index partition above comes from the sync state we read, and recording a sync does not bump
            # the version: without this, a read from before the sync finished would file a synced invoice
            # under sync_pending for good.
            condition &= InvoiceItem.sync_state == invoice.sync.state.value
        try:
            with TransactWrite(connection=InvoiceItem._get_connection().connection) as tx:
                tx.update(header_key(invoice), actions=actions, condition=condition)
                if rollup_sign:
                    add_to_rollups(tx, updated, rollup_sign)
                if along is not None:
                    along(tx)
        except TransactWriteError as error:
            reasons = [r for r in error.cancellation_reasons or [] if r is not None]
            if any(r.code == "ConditionalCheckFailed" for r in reasons):
                raise refused_transition(invoice, self.get(invoice.org, invoice.id)) from error
            if is_transient(error):
                raise StaleRead("a concurrent change touched the same items; read again") from error
            raise
        return updated
