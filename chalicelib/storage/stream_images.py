"""The table's stream records read in the table's own shapes, so services see domain objects and never a
raw image, a key prefix or a stored state name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.invoice import Invoice
from ..domain.notifications import EventType
from ..domain.periods import parse_utc
from . import keys
from .convert import invoice_from_record
from .models import InvoiceItem

Image = Mapping[str, Any]
# One stream record: (event name, old image, new image), images in DynamoDB's attribute-value form.
Change = tuple[str, Image | None, Image | None]

_WRITES = ("INSERT", "MODIFY")


@dataclass(frozen=True)
class InvoiceChange:
    old: Invoice | None  # None when the header was inserted
    new: Invoice


@dataclass(frozen=True)
class NoticeInserted:
    org: str
    event_id: str
    event_type: EventType
    created: datetime


def _written(changes: Iterable[Change], sk_prefix: str, events: tuple[str, ...] = _WRITES
             ) -> Iterator[tuple[Image | None, Image]]:
    for event_name, old, new in changes:
        if event_name in events and new and new.get("sk", {}).get("S", "").startswith(sk_prefix):
            yield old, new


def _invoice(image: Image) -> Invoice:
    return invoice_from_record(InvoiceItem.from_raw_data(dict(image)))


def invoice_changes(changes: Iterable[Change]) -> list[InvoiceChange]:
    """Invoice headers inserted or modified, before and after."""
    return [InvoiceChange(_invoice(old) if old else None, _invoice(new))
            for old, new in _written(changes, keys.INVOICE_SK_PREFIX)]


def invoices_with_lines_written(changes: Iterable[Change]) -> set[tuple[str, str]]:
    """(org, invoice id) of every line written: usage ADDs, fixed items, frozen amounts."""
    touched = set()
    for _old, new in _written(changes, keys.LINE_SK_PREFIX):
        org, invoice_id = new.get("org", {}).get("S"), new.get("invoice_id", {}).get("S")
        if org and invoice_id:
            touched.add((org, invoice_id))
    return touched


def notices_inserted(changes: Iterable[Change]) -> list[NoticeInserted]:
    """Customer events stored for the first time (a later MODIFY is not a new event)."""
    return [NoticeInserted(new["org"]["S"], new["event_id"]["S"], EventType(new["event_type"]["S"]),
                           parse_utc(new["created"]["S"]))
            for _old, new in _written(changes, keys.NOTICE_SK_PREFIX, events=("INSERT",))]
