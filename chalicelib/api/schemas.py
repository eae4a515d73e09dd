"""Request schemas (pydantic) and the JSON shapes of responses.

Identifiers share the table's safe alphabet (no '#', bounded length), so nothing a client
sends can forge a key. Quantities are Decimal: JSON numbers are parsed as Decimal, never float.
The accepted forms of quantities, timestamps and text are in fields.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..domain.collection import MAX_DAYS_UNTIL_DUE, Collection, CollectionMethod
from ..domain.errors import ValidationFailed
from ..domain.identifiers import SAFE_PART
from ..domain.invoice import Invoice
from ..domain.lines import LATE_KINDS, LineItem, LineKind
from ..domain.money import Money
from ..domain.orgs import OrgProfile
from ..domain.periods import utc_iso
from ..safejson import UnreadableJson, loads
from ..services.invoices import InvoiceView
from .errors import ApiError
from .fields import AttributeValue, DisplayText, Email, Quantity, Timestamp

MAX_BATCH = 500
MAX_BODY_BYTES = 1_000_000

Identifier = Annotated[str, StringConstraints(pattern=SAFE_PART.pattern)]
OrgId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Short = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UsageEventIn(_Strict):
    id: Identifier
    org: OrgId
    app: Identifier
    meter: Short
    quantity: Quantity
    region: Short | None = None
    attributes: dict[Short, AttributeValue] = Field(default_factory=dict, max_length=10)
    timestamp: Timestamp


class UsageBatchIn(_Strict):
    # Any JSON value per element: each event is validated on its own, so one that is not even an object
    # rejects only itself.
    events: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class OrgIn(_Strict):
    name: DisplayText
    email: Email
    currency: Literal["usd"] = "usd"
    # How Stripe collects: the card on file, or an emailed invoice due after `days_until_due` (default 14).
    collection_method: Literal["charge_automatically", "send_invoice"] | None = None
    days_until_due: Annotated[int, Field(strict=True, ge=1, le=MAX_DAYS_UNTIL_DUE)] | None = None

    def collection(self) -> Collection | None:
        if self.collection_method is None:
            if self.days_until_due is not None:
                raise ValidationFailed("days_until_due needs collection_method send_invoice")
            return None
        return Collection.of(CollectionMethod(self.collection_method), self.days_until_due)


class InvoiceItemIn(_Strict):
    client_id: Identifier
    kind: Literal["charge", "credit"]
    amount_cents: Annotated[int, Field(strict=True, gt=0, le=100_000_000)]
    description: DisplayText


def require_json(content_type: str) -> None:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json",
                       {"content_type": content_type[:100]})


def capped(raw: bytes | None) -> bytes:
    """The body, refused before anything reads it when it is over the one size limit."""
    if raw is not None and len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes")
    return raw or b""


def parse_json(raw: bytes | None) -> Any:
    raw = capped(raw)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body must be a JSON document")
    try:
        return loads(raw)
    except UnreadableJson as error:
        raise ApiError(400, "invalid_json", str(error)) from error


def decimal_text(value: Decimal) -> str:
    """A Decimal as people and JSON parsers read it: plain notation (0.00000075, never 7.5E-7), no trailing zeros
    (3600, not 3600.000000000 or 3.6E+3). format(..., "f") is exact, unlike normalize(), which rounds to the
    context's 28 digits."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def money(cents: int, currency: str) -> dict[str, Any]:
    return {"cents": cents, "display": Money(cents, currency).display()}


def _iso(moment: Any) -> str | None:
    return utc_iso(moment) if moment is not None else None


def org_json(profile: OrgProfile) -> dict[str, Any]:
    return {
        "org": profile.org, "name": profile.name, "email": profile.email, "currency": profile.currency,
        "created_at": _iso(profile.created_at), "updated_at": _iso(profile.updated_at),
        "collection_method": profile.collection.method.value, "days_until_due": profile.collection.days_until_due,
    }


def line_json(line: LineItem, currency: str) -> dict[str, Any]:
    return {
        "id": line.id,
        "kind": line.kind.value,
        "category": line.category.value,
        "product": line.product,
        "description": line.description,
        "app": line.app,
        "resource": line.resource,
        "region": line.region,
        "quantity": decimal_text(line.quantity),
        "unit": line.unit,
        "display_quantity": decimal_text(round(line.display_quantity, 4)),
        "display_unit": line.display_unit,
        "unit_price": {"amount": decimal_text(line.unit_price), "per": decimal_text(line.price_per),
                       "unit": line.price_unit},
        "free_quantity": decimal_text(line.free_quantity),
        "amount": money(line.amount_cents, currency),
        "usage_period": line.usage_period,
        "late": line.kind in LATE_KINDS,
        "event_count": line.event_count,
        "first_usage_at": _iso(line.first_usage_at),
        "last_usage_at": _iso(line.last_usage_at),
        "price_version": line.price_version,
    }


def invoice_json(invoice: Invoice) -> dict[str, Any]:
    c = invoice.currency
    return {
        "id": invoice.id,
        "number": invoice.number,
        "org": invoice.org,
        "period": str(invoice.period),
        "period_start": _iso(invoice.period.start),
        "period_end": _iso(invoice.period.end),
        "status": invoice.status.value,
        "currency": c,
        "subtotal": money(invoice.subtotal_cents, c),
        "credits": money(invoice.credits_cents, c),
        "total": money(invoice.total_cents, c),
        "amount_due": money(invoice.total_cents, c),
        "line_count": invoice.line_count,
        "created_at": _iso(invoice.created_at),
        "updated_at": _iso(invoice.updated_at),
        "finalized_at": _iso(invoice.finalized_at),
        "due_at": _iso(invoice.due_at),
        "voided_at": _iso(invoice.voided_at),
        "version": invoice.version,
        "payment_status": invoice.payment_status.value,
        "payment_attempts": invoice.payment_attempts,
        "hosted_invoice_url": invoice.sync.hosted_invoice_url,
        "invoice_pdf": invoice.sync.invoice_pdf,
        "sync": {
            "state": invoice.sync.state.value,
            "stripe_invoice_id": invoice.sync.stripe_invoice_id,
            "stripe_invoice_number": invoice.sync.stripe_invoice_number,
            "attempts": invoice.sync.attempts,
            "last_error": invoice.sync.last_error,
            "synced_at": _iso(invoice.sync.synced_at),
        },
    }


def view_json(view: InvoiceView) -> dict[str, Any]:
    c = view.invoice.currency
    body = invoice_json(view.invoice)
    body["lines"] = [line_json(line, c) for line in view.lines]
    body["breakdown"] = {
        "by_app": {k: money(v, c) for k, v in view.by_app.items()},
        "by_category": {k: money(v, c) for k, v in view.by_category.items()},
        "by_region": {k: money(v, c) for k, v in view.by_region.items()},
    }
    body["credits_applied"] = money(-sum(line.amount_cents for line in view.lines
                                         if line.kind is LineKind.CREDIT_APPLIED), c)
    body["as_of"] = _iso(view.as_of)
    if view.credit_preview is not None:
        preview = view.credit_preview
        body["credit_preview"] = {
            "balance": money(preview.balance_cents, c), "would_apply": money(preview.would_apply_cents, c),
            "balance_after": money(preview.balance_after_cents, c),
            "amount_due_after": money(preview.amount_due_after_cents, c),
        }
    if view.projected_total_cents is not None:
        body["month_to_date"] = money(view.totals.total_cents, c)
        body["projected_total"] = money(view.projected_total_cents, c)
    return body
