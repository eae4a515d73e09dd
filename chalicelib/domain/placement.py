"""What the usage write path takes and answers: an event placed on its line, and what became of it.

Services build these (routing, pricing); storage writes them (`storage/usage_writer.py`) or an in-memory
ledger does (tests/fakes/)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from .lines import LineItem, LineKind
from .pricebook import Quote


class WriteOutcome(StrEnum):
    """What the ledger did with one event: counted it on its line; found it counted already (by this id);
    or found its invoice no longer a draft, so it wrote nothing and the event is routed again."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    INVOICE_CLOSED = "invoice_closed"


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
    digest: str  # content fingerprint, kept in the dedup record so a differing resend is told apart


@dataclass(frozen=True)
class CountedEvent:
    """What the dedup record of an already-counted event says."""

    invoice_id: str
    line_id: str
    digest: str | None  # None: written before content fingerprints were kept


def tallied_line(target: LineTarget, quantity: Decimal, events: int, first: datetime | None,
                 last: datetime | None) -> LineItem:
    """A line as its writes leave it: the price in force and the description (its snapshot), and its tally.
    The amount is not set: it is priced live while the invoice is open, and frozen at finalize."""
    quote = target.quote
    return LineItem(
        id=target.line_id, kind=target.kind, category=quote.category, product=quote.product,
        description=target.description, app=target.app, region=target.region, resource=quote.resource,
        meter=quote.meter, quantity=quantity, unit=quote.unit, display_unit=quote.display_unit,
        display_divisor=quote.display_divisor, unit_price=quote.rate.unit_price, price_per=quote.rate.price_per,
        price_unit=quote.rate.price_unit, tiers=quote.rate.tiers, free_pool=quote.free_pool,
        free_allowance=quote.rate.free_allowance, price_version=quote.price_version,
        usage_period=target.usage_period, event_count=events, first_usage_at=first, last_usage_at=last,
    )
