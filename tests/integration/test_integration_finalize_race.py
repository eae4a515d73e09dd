"""Four producers post usage (with retries and duplicates) while the period is finalized
under them: every event counts once, the finalized invoice never moves, stragglers are
billed as late usage on the next invoice, and every line's hourly buckets hold exactly the
events accepted into it."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from acceptance_support import stored_buckets, usage_event

D = Decimal
NOV, DEC = "inv_202611", "inv_202612"
WRITERS = 4
BATCHES_PER_WRITER = 6
EVENTS_PER_BATCH = 20
BATCHES_BEFORE_CLOSE = 4  # each writer then waits until the invoice is closing, and sends the rest
FINALIZE_AFTER_ACCEPTED = 150
BATCHES_WHILE_FINALIZING = 4  # finalize reads its lines only after this many batches met the closed invoice
DEADLINE_SECONDS = 60
SHARED_PER_BATCH = 3  # events writers 0 and 1 both send, concurrently
LINES = [("egress", "web", "iad", {}), ("egress", "api", "nrt", {}),
         ("machine_runtime", "web", "fra", {"preset": "shared-cpu-1x"}),
         ("volume_storage", "db", "iad", {}), ("snapshot_storage", "db", "iad", {}),
         ("ipv4_address", "api", None, {})]


@dataclass
class Sent:
    quantity: Decimal
    accepted_into: list[str]  # invoice ids of answers "accepted"; exactly one expected
    duplicate_of: list[str | None]  # invoice ids named by answers "duplicate"


def build_batches(org: str, rng: random.Random) -> list[list[list[dict[str, Any]]]]:
    """Per writer, its batches. Writers 0 and 1 also both send a shared set of events."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    batches: list[list[list[dict[str, Any]]]] = [[] for _ in range(WRITERS)]
    for writer in range(WRITERS):
        for number in range(BATCHES_PER_WRITER):
            batch = []
            for index in range(EVENTS_PER_BATCH):
                meter, app, region, attributes = LINES[rng.randrange(len(LINES))]
                moment = start + timedelta(seconds=rng.randint(0, 19 * 86400))
                if writer == 1 and index < SHARED_PER_BATCH:
                    batch.append(batches[0][number][index])  # the very event writer 0 sends
                    continue
                quantity = f"{rng.randint(1, 100_000) / 1000:.3f}"
                event_id = f"w{writer}-b{number}-e{index}"
                if writer == 0 and index < SHARED_PER_BATCH:
                    event_id = f"shared-b{number}-e{index}"
                batch.append(usage_event(org, event_id, meter=meter, quantity=quantity, region=region, app=app,
                                         timestamp=moment.strftime("%Y-%m-%dT%H:%M:%SZ"), attributes=attributes))
            batches[writer].append(batch)
    return batches


def test_finalize_racing_four_writers_counts_every_event_once_and_freezes_the_invoice(org, pinned_clock,
                                                                                      monkeypatch, store):
    from chalicelib.api.requests import usage_batch
    from chalicelib.config import settings
    from chalicelib.domain.errors import Busy
    from chalicelib.domain.invoice import InvoiceStatus
    from chalicelib.domain.periods import parse_utc
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.usage import record_usage
    from chalicelib.storage.invoices import InvoiceRepository

    pinned_clock.now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    now = pinned_clock.now
    batches = build_batches(org, random.Random(2026))

    progress = threading.Condition()
    state = {"accepted": 0, "after_close": 0}
    closing = threading.Event()
    frozen: dict[str, tuple[Decimal, int, int]] = {}

    original_transition = InvoiceRepository.transition
    original_freeze = InvoiceRepository.freeze_lines

    def transition(self: Any, invoice: Any, target: Any, moment: Any, **kwargs: Any) -> Any:
        updated = original_transition(self, invoice, target, moment, **kwargs)
        if target is InvoiceStatus.FINALIZING and invoice.org == org:
            # The invoice is now closed to usage; hold finalize here until writers have met it.
            closing.set()
            with progress:
                assert progress.wait_for(lambda: state["after_close"] >= BATCHES_WHILE_FINALIZING,
                                         timeout=DEADLINE_SECONDS)
        return updated

    def freeze_lines(self: Any, owner: str, invoice_id: str, priced: list[Any]) -> None:
        if owner == org:
            frozen.update({line.id: (line.quantity, line.event_count, line.amount_cents) for line in priced})
        original_freeze(self, owner, invoice_id, priced)

    monkeypatch.setattr(InvoiceRepository, "transition", transition)
    monkeypatch.setattr(InvoiceRepository, "freeze_lines", freeze_lines)

    answers: list[dict[str, Any]] = []
    answers_lock = threading.Lock()

    def send(batch: list[dict[str, Any]]) -> None:
        for _ in range(5):  # a producer retries a batch the service asked it to retry
            try:
                results = record_usage(usage_batch({"events": batch}), now, settings())
                break
            except Busy:
                continue
        else:
            raise AssertionError("the service stayed busy")
        with answers_lock:
            answers.extend({"event": e, "result": r} for e, r in zip(batch, results, strict=True))
        with progress:
            state["accepted"] += sum(r.status == "accepted" for r in results)
            if closing.is_set():
                state["after_close"] += 1
            progress.notify_all()

    def writer(number: int) -> None:
        mine = batches[number]
        for index, batch in enumerate(mine):
            if index == BATCHES_BEFORE_CLOSE:
                assert closing.wait(timeout=DEADLINE_SECONDS), "finalize never started"
            send(batch)
            if index % 3 == 2:
                send(mine[index - 2])  # a producer retry of an earlier batch

    def finalizer() -> Any:
        with progress:
            assert progress.wait_for(lambda: state["accepted"] >= FINALIZE_AFTER_ACCEPTED, timeout=DEADLINE_SECONDS)
        return InvoiceService().finalize(org, NOV, now)

    with ThreadPoolExecutor(WRITERS + 1) as pool:
        futures = [pool.submit(writer, n) for n in range(WRITERS)]
        finalized = pool.submit(finalizer)
        for future in futures:
            future.result()
        finalized_invoice = finalized.result()

    # Every answer is accepted or duplicate; each event was accepted exactly once.
    sent: dict[str, Sent] = {}
    for answer in answers:
        event, result = answer["event"], answer["result"]
        entry = sent.setdefault(event["id"], Sent(D(event["quantity"]), [], []))
        assert result.status in ("accepted", "duplicate"), (event["id"], result)
        if result.status == "accepted":
            entry.accepted_into.append(result.invoice_id)
        else:
            entry.duplicate_of.append(result.invoice_id)
    unique = {e["id"] for writer in batches for batch in writer for e in batch}
    assert set(sent) == unique
    assert all(len(entry.accepted_into) == 1 for entry in sent.values())
    assert all(set(entry.duplicate_of) <= set(entry.accepted_into) for entry in sent.values())
    assert sum(len(entry.duplicate_of) for entry in sent.values()) > 0

    # Stored quantities: all invoices together hold exactly the unique events, each invoice its own.
    invoices = store.invoices(org)
    assert set(invoices) == {NOV, DEC}
    all_lines = [line for invoice in invoices.values() for line in invoice.lines.values()]
    assert sum(line.quantity for line in all_lines) == sum(entry.quantity for entry in sent.values())
    assert sum(line.event_count for line in all_lines) == len(unique)
    per_invoice: dict[str, Decimal] = defaultdict(Decimal)
    for entry in sent.values():
        per_invoice[entry.accepted_into[0]] += entry.quantity
    for invoice_id, invoice in invoices.items():
        assert sum(line.quantity for line in invoice.lines.values()) == per_invoice[invoice_id]

    # The finalized invoice holds what finalize froze, and nothing since.
    november = invoices[NOV]
    assert november.status == "finalized"
    assert {i: (line.quantity, line.event_count, line.amount_cents) for i, line in november.lines.items()} == frozen
    assert november.total_cents == finalized_invoice.total_cents == sum(amount for _, _, amount in frozen.values())
    assert Counter(entry.accepted_into[0] for entry in sent.values())[NOV] == sum(
        count for _, count, _ in frozen.values())

    # Finalize happened mid-stream: usage landed on both sides, the stragglers as late usage for November.
    december = invoices[DEC]
    assert per_invoice[NOV] > 0 and per_invoice[DEC] > 0
    assert {(line.kind, line.usage_period) for line in december.lines.values()} == {("late_usage", "2026-11")}
    late_answers = [a["result"] for a in answers if a["result"].status == "accepted" and a["result"].invoice_id == DEC]
    assert late_answers and all(result.late for result in late_answers)

    # Each line's buckets hold exactly the events accepted into it; the late line's are November's, the month
    # its usage happened.
    expected: dict[tuple[str, str, datetime], Decimal] = defaultdict(Decimal)
    for answer in answers:
        event, result = answer["event"], answer["result"]
        if result.status == "accepted":
            hour = parse_utc(event["timestamp"]).replace(minute=0, second=0)
            expected[(result.invoice_id, result.line_id, hour)] += D(event["quantity"])
    assert {invoice for invoice, _, _ in expected} == {NOV, DEC}
    assert stored_buckets(org, "2026-11", "2026-12") == expected
    for invoice in invoices.values():
        for line in invoice.lines.values():
            assert line.quantity == sum(quantity for (invoice_id, line_id, _), quantity in expected.items()
                                        if (invoice_id, line_id) == (invoice.id, line.id))
