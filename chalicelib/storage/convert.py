"""Mapping between table records and domain objects, in one place."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.attributes import Attribute

from ..domain.catalog import Category
from ..domain.invoice import Invoice, InvoiceStatus, PaymentStatus, SyncInfo, SyncState
from ..domain.lines import LineItem, LineKind
from ..domain.periods import Period, parse_utc, utc_iso
from ..domain.pricebook import Tier
from . import keys
from .models import InvoiceItem, LineItemRecord


def index_state(status: InvoiceStatus, sync_state: SyncState) -> str:
    """The gsi1 partition an invoice sits in: what work, if any, it is waiting for."""
    if status in (InvoiceStatus.DRAFT, InvoiceStatus.FINALIZING):
        return status.value
    if sync_state in (SyncState.PENDING, SyncState.FAILED):
        return f"sync_{sync_state.value}"
    return status.value


# Invoice fields the header stores under their own name, as they are.
_INVOICE_AS_STORED = (
    "org", "number", "currency", "created_at", "updated_at", "version", "subtotal_cents", "credits_cents",
    "total_cents", "line_count", "finalized_at", "due_at", "voided_at", "payment_attempts", "payment_event_id",
)
# SyncInfo fields and the header attributes that store them: `sync_` tells the sync's own apart on the header.
_SYNC_ATTRIBUTES = {
    "stripe_invoice_id": "stripe_invoice_id", "stripe_invoice_number": "stripe_invoice_number",
    "attempts": "sync_attempts", "last_error": "sync_last_error", "last_error_at": "sync_last_error_at",
    "requested_at": "sync_requested_at", "synced_at": "synced_at", "hosted_invoice_url": "hosted_invoice_url",
    "invoice_pdf": "invoice_pdf",
}


def invoice_from_record(item: InvoiceItem) -> Invoice:
    sync = SyncInfo(state=SyncState(item.sync_state),
                    **{name: getattr(item, attribute) for name, attribute in _SYNC_ATTRIBUTES.items()})
    return Invoice(
        **{name: getattr(item, name) for name in _INVOICE_AS_STORED},
        id=item.invoice_id, period=Period.parse(item.period), status=InvoiceStatus(item.status),
        payment_status=PaymentStatus(item.payment_status), sync=sync,
    )


def tiers_to_json(tiers: tuple[Tier, ...]) -> str:
    return json.dumps([[None if t.up_to is None else str(t.up_to), str(t.unit_price)] for t in tiers])


def tiers_from_json(text: str) -> tuple[Tier, ...]:
    return tuple(Tier(None if up is None else Decimal(up), Decimal(price)) for up, price in json.loads(text))


def _as_is(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class LineField:
    """One LineItem field and the LineItemRecord attribute that stores it."""

    name: str  # the LineItem field
    attribute: Attribute[Any]
    to_stored: Callable[[Any], Any] = _as_is
    from_stored: Callable[[Any], Any] = _as_is


def _enum_value(member: Any) -> Any:
    return member.value


def _time_to_stored(moment: datetime | None) -> str | None:
    return utc_iso(moment) if moment else None  # fixed-width UTC: string order is time order


def _time_from_stored(text: str | None) -> datetime | None:
    return parse_utc(text) if text else None


def _decimal_or_zero(value: Decimal | None) -> Decimal:
    return Decimal(0) if value is None else value  # free quantity: none before finalize


def _int_or_zero(value: int | None) -> int:
    return 0 if value is None else value  # amount: none on a metered line before finalize


def _stored_as_is(*names: str) -> tuple[LineField, ...]:
    """Fields the record keeps under the line's own name, unconverted."""
    return tuple(LineField(name, getattr(LineItemRecord, name)) for name in names)


# The one mapping of a line's fields to its record. A line's first write fixes the snapshot (what is
# billed, at which price, for which period); usage then adds to the tally; finalize freezes the priced
# fields of metered lines (fixed lines carry their amount from the start).
LINE_SNAPSHOT: tuple[LineField, ...] = (
    LineField("id", LineItemRecord.line_id),
    LineField("kind", LineItemRecord.kind, _enum_value, LineKind),
    LineField("category", LineItemRecord.category, _enum_value, Category),
    *_stored_as_is("product", "description", "app", "region", "resource", "meter", "unit", "display_unit",
                   "display_divisor", "unit_price", "price_per", "price_unit"),
    LineField("tiers", LineItemRecord.tiers, tiers_to_json, tiers_from_json),
    *_stored_as_is("free_pool", "free_allowance", "price_version", "usage_period"),
)
LINE_TALLY: tuple[LineField, ...] = (
    LineField("quantity", LineItemRecord.quantity),
    LineField("event_count", LineItemRecord.event_count),
    LineField("first_usage_at", LineItemRecord.first_usage_at, _time_to_stored, _time_from_stored),
    LineField("last_usage_at", LineItemRecord.last_usage_at, _time_to_stored, _time_from_stored),
)
LINE_AMOUNT = LineField("amount_cents", LineItemRecord.amount_cents, from_stored=_int_or_zero)
LINE_PRICED: tuple[LineField, ...] = (
    LineField("free_quantity", LineItemRecord.free_quantity, from_stored=_decimal_or_zero),
    LINE_AMOUNT,
)
LINE_FIELDS = LINE_SNAPSHOT + LINE_TALLY + LINE_PRICED


def stored_values(line: LineItem, fields: tuple[LineField, ...]) -> list[tuple[Attribute[Any], Any]]:
    """Each field's attribute and stored value; a field without a value is left out (not written)."""
    stored = ((field.attribute, field.to_stored(getattr(line, field.name))) for field in fields)
    return [(attribute, value) for attribute, value in stored if value is not None]


def line_placement(org: str, invoice_id: str, now: datetime) -> list[tuple[Attribute[Any], Any]]:
    """What a line's record holds besides the line: the invoice it belongs to, and when it was first written."""
    return [(LineItemRecord.org, org), (LineItemRecord.invoice_id, invoice_id), (LineItemRecord.created_at, now)]


def line_from_record(item: LineItemRecord) -> LineItem:
    return LineItem(**{field.name: field.from_stored(getattr(item, field.attribute.attr_name))
                       for field in LINE_FIELDS})


def new_line_record(org: str, invoice_id: str, line: LineItem, now: datetime, fields: tuple[LineField, ...],
                    client_id: str | None = None) -> LineItemRecord:
    """The record of a line not in the table yet, holding `fields` of the line."""
    record = LineItemRecord(keys.lines_pk(org, invoice_id), keys.line_sk(line.id), client_id=client_id)
    for attribute, value in line_placement(org, invoice_id, now) + stored_values(line, fields):
        setattr(record, attribute.attr_name, value)
    return record


def record_from_line(org: str, invoice_id: str, line: LineItem, now: datetime,
                     client_id: str | None = None) -> LineItemRecord:
    """A whole fixed-amount line (one-off, recurring, credit) as one record, written at once."""
    return new_line_record(org, invoice_id, line, now, LINE_SNAPSHOT + LINE_TALLY + (LINE_AMOUNT,), client_id)
