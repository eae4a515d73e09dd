"""Mapping between table records and domain objects, in one place."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

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


def invoice_from_record(item: InvoiceItem) -> Invoice:
    return Invoice(
        org=item.org,
        id=item.invoice_id,
        number=item.number,
        period=Period.parse(item.period),
        status=InvoiceStatus(item.status),
        currency=item.currency,
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=item.version,
        subtotal_cents=item.subtotal_cents,
        credits_cents=item.credits_cents,
        total_cents=item.total_cents,
        line_count=item.line_count,
        finalized_at=item.finalized_at,
        due_at=item.due_at,
        voided_at=item.voided_at,
        payment_status=PaymentStatus(item.payment_status),
        sync=SyncInfo(
            state=SyncState(item.sync_state),
            stripe_invoice_id=item.stripe_invoice_id,
            stripe_invoice_number=item.stripe_invoice_number,
            attempts=item.sync_attempts,
            last_error=item.sync_last_error,
            last_error_at=item.sync_last_error_at,
            requested_at=item.sync_requested_at,
            synced_at=item.synced_at,
            hosted_invoice_url=item.hosted_invoice_url,
            invoice_pdf=item.invoice_pdf,
        ),
        payment_attempts=item.payment_attempts,
        payment_event_id=item.payment_event_id,
    )


def tiers_to_json(tiers: tuple[Tier, ...]) -> str:
    return json.dumps([[None if t.up_to is None else str(t.up_to), str(t.unit_price)] for t in tiers])


def tiers_from_json(text: str) -> tuple[Tier, ...]:
    return tuple(Tier(None if up is None else Decimal(up), Decimal(price)) for up, price in json.loads(text))


def line_from_record(item: LineItemRecord) -> LineItem:
    return LineItem(
        id=item.line_id,
        kind=LineKind(item.kind),
        category=Category(item.category),
        product=item.product,
        description=item.description,
        app=item.app,
        region=item.region,
        resource=item.resource,
        meter=item.meter,
        quantity=item.quantity,
        unit=item.unit,
        display_unit=item.display_unit,
        display_divisor=item.display_divisor,
        unit_price=item.unit_price,
        price_per=item.price_per,
        price_unit=item.price_unit,
        tiers=tiers_from_json(item.tiers),
        free_pool=item.free_pool,
        free_allowance=item.free_allowance,
        price_version=item.price_version,
        usage_period=item.usage_period,
        event_count=item.event_count,
        first_usage_at=parse_utc(item.first_usage_at) if item.first_usage_at else None,
        last_usage_at=parse_utc(item.last_usage_at) if item.last_usage_at else None,
        free_quantity=item.free_quantity if item.free_quantity is not None else Decimal(0),
        amount_cents=item.amount_cents if item.amount_cents is not None else 0,
    )


def record_from_line(org: str, invoice_id: str, line: LineItem, now: datetime,
                     client_id: str | None = None) -> LineItemRecord:
    """A whole fixed-amount line (one-off, recurring, credit) as one record, written at once."""
    return LineItemRecord(
        keys.lines_pk(org, invoice_id), keys.line_sk(line.id),
        org=org, invoice_id=invoice_id, line_id=line.id, kind=line.kind.value, category=line.category.value,
        product=line.product, description=line.description, app=line.app, region=line.region,
        resource=line.resource, meter=line.meter, quantity=line.quantity, unit=line.unit,
        display_unit=line.display_unit, display_divisor=line.display_divisor, unit_price=line.unit_price,
        price_per=line.price_per, price_unit=line.price_unit, tiers=tiers_to_json(line.tiers),
        free_pool=line.free_pool, free_allowance=line.free_allowance, price_version=line.price_version,
        usage_period=line.usage_period, event_count=line.event_count,
        first_usage_at=utc_iso(line.first_usage_at) if line.first_usage_at else None,
        last_usage_at=utc_iso(line.last_usage_at) if line.last_usage_at else None,
        amount_cents=line.amount_cents, client_id=client_id, created_at=now,
    )
