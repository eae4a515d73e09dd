"""Record a batch of usage events: validate, route, write once, answer per event."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..config import Settings
from ..domain.errors import DomainError
from ..domain.fingerprint import differing, fingerprint
from ..domain.invoice import invoice_id_for
from ..domain.lines import LineKind, describe, usage_kind, usage_line_id
from ..domain.periods import Period, utc_iso
from ..domain.placement import LineTarget, Placement, WriteOutcome
from ..domain.pricebook import Quote, quote
from ..storage.invoice_headers import InvoiceHeaders
from ..storage.orgs import OrgRepository
from ..storage.usage_writer import UsageLedgerTable
from .ports import InvoiceDrafts, OrgProfiles, UsageLedger
from .routing import InvoiceRouter

MAX_REROUTES = 5


@dataclass(frozen=True)
class UsageEvent:
    id: str
    org: str
    app: str
    meter: str
    quantity: Decimal
    region: str | None
    attributes: Mapping[str, str]
    timestamp: datetime


@dataclass(frozen=True)
class Rejection:
    code: str
    message: str
    id: str | None = None


@dataclass
class EventResult:
    index: int
    id: str | None
    status: str  # one of STATUSES
    invoice_id: str | None = None
    line_id: str | None = None
    late: bool = False
    error: dict[str, Any] | None = field(default=None)


# Every answer an event can get, in the order the response counts them.
STATUSES = ("accepted", "duplicate", "conflict", "rejected")


def count_by_status(results: list[EventResult]) -> dict[str, int]:
    """How many events got each answer; every status appears, with 0 when none did."""
    return {status: sum(r.status == status for r in results) for status in STATUSES}


def content_digest(event: UsageEvent) -> str:
    """The event's fingerprint over one canonical form of each field: 5 and 5.000 are the same quantity,
    and the same instant in another offset is the same timestamp."""
    return fingerprint({
        "org": event.org, "app": event.app, "meter": event.meter,
        "quantity": format(event.quantity.normalize(), "f"), "region": event.region or "",
        "attributes": json.dumps(dict(event.attributes), sort_keys=True), "timestamp": utc_iso(event.timestamp),
    })


@dataclass(frozen=True)
class UsageStores:
    """What recording usage reads and writes; the table's by default, in-memory fakes in unit tests."""

    invoices: InvoiceDrafts = field(default_factory=InvoiceHeaders)
    orgs: OrgProfiles = field(default_factory=OrgRepository)
    ledger: UsageLedger = field(default_factory=UsageLedgerTable)


def record_usage(
    items: list[UsageEvent | Rejection], now: datetime, settings: Settings, stores: UsageStores | None = None
) -> list[EventResult]:
    stores = stores or UsageStores()
    results: list[EventResult | None] = [None] * len(items)
    first_index: dict[tuple[str, str], int] = {}
    digests: dict[int, str] = {}
    candidates: list[tuple[int, UsageEvent]] = []
    for index, item in enumerate(items):
        if isinstance(item, Rejection):
            results[index] = _rejected(index, item.id, item.code, item.message)
            continue
        digests[index] = content_digest(item)
        if (item.org, item.id) in first_index:
            continue  # a repeat inside the batch answers like its first occurrence, below
        first_index[(item.org, item.id)] = index
        candidates.append((index, item))

    profiles = stores.orgs.get_many({event.org for _, event in candidates}) if candidates else {}
    router = InvoiceRouter(stores.invoices, now, settings.finalize_grace)
    placements: dict[tuple[str, str], tuple[int, Placement]] = {}
    for index, event in candidates:
        problem = _check(event, now, settings, set(profiles))
        if problem:
            results[index] = _rejected(index, event.id, *problem)
            continue
        try:
            placements[(event.org, event.id)] = (index, _place(event, digests[index], router, settings))
        except DomainError as error:
            results[index] = _rejected(index, event.id, error.code, error.message)

    _write(placements, router, stores.ledger, now, results)
    for index, item in enumerate(items):
        if results[index] is None and isinstance(item, UsageEvent):
            first = first_index[(item.org, item.id)]
            results[index] = _repeat_of(results[first], index, differing(digests[first], digests[index]))
    return [r for r in results if r is not None]


def _check(event: UsageEvent, now: datetime, settings: Settings, known_orgs: set[str]) -> tuple[str, str] | None:
    if event.org not in known_orgs:
        return "unknown_org", f"organisation {event.org!r} has no billing profile"
    if event.timestamp > now + settings.future_tolerance:
        return "timestamp_in_future", "timestamp is more than 5 minutes ahead of the server clock"
    if event.timestamp < now - settings.late_usage_window:
        days = settings.late_usage_window.days
        return "timestamp_too_old", f"timestamp is older than the {days}-day late-usage window"
    return None


def _place(event: UsageEvent, digest: str, router: InvoiceRouter, settings: Settings) -> Placement:
    usage_period = Period.of(event.timestamp)
    event_quote = quote(event.meter, event.region, event.attributes, usage_period)
    target = _line_target(event.org, event_quote, event.app, event.region, usage_period, router)
    expires_at = int((event.timestamp + settings.dedup_retention).timestamp())
    return Placement(event.org, event.id, event.quantity, event.timestamp, target, expires_at, digest)


def _line_target(
    org: str, event_quote: Quote, app: str, region: str | None, usage_period: Period, router: InvoiceRouter
) -> LineTarget:
    invoice, late = router.target(org, usage_period)
    return LineTarget(
        org=org,
        invoice_id=invoice.id,
        line_id=usage_line_id(event_quote, app, region, str(usage_period), late),
        kind=usage_kind(event_quote, late),
        quote=event_quote,
        description=describe(event_quote, app, region, str(usage_period) if late else None),
        app=app,
        region=region,
        usage_period=str(usage_period),
    )


def _write(
    placements: dict[tuple[str, str], tuple[int, Placement]],
    router: InvoiceRouter,
    ledger: UsageLedger,
    now: datetime,
    results: list[EventResult | None],
) -> None:
    pending = dict(placements)
    duplicates: list[tuple[str, str]] = []
    for _ in range(MAX_REROUTES):
        if not pending:
            break
        outcomes = ledger.write([p for _, p in pending.values()], now)
        retry: dict[tuple[str, str], tuple[int, Placement]] = {}
        for key, (index, placement) in pending.items():
            outcome = outcomes[key]
            if outcome is WriteOutcome.ACCEPTED:
                t = placement.target
                late = t.kind is LineKind.LATE_USAGE
                results[index] = EventResult(index, key[1], "accepted", t.invoice_id, t.line_id, late)
            elif outcome is WriteOutcome.DUPLICATE:
                duplicates.append(key)
            else:
                # The invoice was finalized while we wrote: route again, to the next open one. Other events
                # of the batch may be written already, so a routing refusal rejects this event only.
                router.forget(placement.org, placement.target.invoice_id)
                try:
                    retry[key] = (index, _rerouted(placement, router))
                except DomainError as error:
                    results[index] = _rejected(index, key[1], error.code, error.message)
        pending = retry
    for key, (index, _) in pending.items():
        results[index] = _rejected(index, key[1], "retry_later", "invoice changed repeatedly; resend this event")
    _fill_duplicates(duplicates, placements, ledger, results)


def _rerouted(placement: Placement, router: InvoiceRouter) -> Placement:
    t = placement.target
    target = _line_target(t.org, t.quote, t.app, t.region, Period.parse(t.usage_period), router)
    return replace(placement, target=target)


def _fill_duplicates(
    duplicates: list[tuple[str, str]],
    placements: dict[tuple[str, str], tuple[int, Placement]],
    ledger: UsageLedger,
    results: list[EventResult | None],
) -> None:
    if not duplicates:
        return
    landed = ledger.dedup_records(duplicates)
    for key in duplicates:
        index, placement = placements[key]
        counted = landed.get(key)
        invoice_id, line_id = (counted.invoice_id, counted.line_id) if counted else (None, None)
        late = invoice_id is not None and invoice_id != invoice_id_for(Period.parse(placement.target.usage_period))
        differs = differing(counted.digest, placement.digest) if counted else []
        if differs:
            results[index] = EventResult(index, key[1], "conflict", invoice_id, line_id, late, _conflict(differs))
        else:
            results[index] = EventResult(index, key[1], "duplicate", invoice_id, line_id, late)


def _rejected(index: int, event_id: str | None, code: str, message: str) -> EventResult:
    return EventResult(index, event_id, "rejected", error={"code": code, "message": message})


def _conflict(differs: list[str]) -> dict[str, Any]:
    return {"code": "conflict", "message": f"this event id was already used for an event with another "
            f"{', '.join(differs)}; send a new id for a new event", "details": {"differs": differs}}


def _repeat_of(first: EventResult | None, index: int, differs: list[str]) -> EventResult:
    """A repeat inside the batch: a conflict if its content differs from the first occurrence, else that answer."""
    assert first is not None
    if differs:
        return EventResult(index, first.id, "conflict", first.invoice_id, first.line_id, first.late, _conflict(differs))
    if first.status in ("rejected", "conflict"):
        return EventResult(index, first.id, first.status, first.invoice_id, first.line_id, first.late, first.error)
    return EventResult(index, first.id, "duplicate", first.invoice_id, first.line_id, first.late)
