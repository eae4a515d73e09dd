"""What the usage write path takes and answers: an event placed on its line, and what became of it.

Services build these (routing, pricing); storage writes them (`storage/usage_writer.py`) or an in-memory
ledger does (tests/fakes/)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from .lines import LineKind
from .pricebook import Quote


class WriteOutcome(StrEnum):
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
