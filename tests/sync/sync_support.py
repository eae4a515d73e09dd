"""Shared by the Stripe sync tests: invoices to sync, the queues, and what Stripe holds."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from support.crashes import ProcessDied as ProcessDied  # noqa: F401  (the sync tests import it from here)
from support.waiting import wait_for as wait_for  # noqa: F401

REGIONS = ("iad", "sjc", "fra", "nrt", "gru", "syd", "jnb", "bom")


def create_org(prefix: str = "sync") -> str:
    from chalicelib.storage.orgs import OrgRepository

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    OrgRepository().upsert(name, "Sync Test Org", f"{name}@example.com", "usd", datetime.now(UTC))
    return name


def record_lines(orgs_and_counts: list[tuple[str, int]], now: datetime, tag: str = "e") -> None:
    """Usage that lands on `count` distinct lines per org (apps x regions), each with its own amount."""
    from chalicelib.config import settings
    from chalicelib.services.usage import UsageEvent, record_usage

    events = []
    for org, count in orgs_and_counts:
        for i in range(count):
            app, region = f"app{i // len(REGIONS):03d}", REGIONS[i % len(REGIONS)]
            quantity = Decimal(10 + i) + Decimal("0.25")
            events.append(UsageEvent(f"{tag}{i}", org, app, "egress", quantity, region, {}, now))
    for start in range(0, len(events), 500):
        results = record_usage(events[start:start + 500], now, settings())
        assert all(r.status == "accepted" for r in results), [r for r in results if r.status != "accepted"]


def finalized_invoice(org: str, lines: int = 3, now: datetime | None = None) -> Any:
    """The org's current invoice with `lines` usage lines, finalized (so its sync is pending)."""
    now = now or datetime.now(UTC)
    record_lines([(org, lines)], now)
    return finalize(org, now)


def finalize(org: str, now: datetime) -> Any:
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService

    invoice = InvoiceService().finalize(org, invoice_id_for(Period.of(now)), now)
    assert invoice.sync.state.value == "pending"
    return invoice


def stored(org: str, invoice_id: str) -> Any:
    from chalicelib.storage.invoices import InvoiceRepository

    invoice = InvoiceRepository().get(org, invoice_id)
    assert invoice is not None
    return invoice


def our_lines(org: str, invoice_id: str) -> list[Any]:
    from chalicelib.storage.invoices import InvoiceRepository

    return InvoiceRepository().lines(org, invoice_id)


def stripe_copies(emulator: Any, org: str, invoice_id: str | None = None) -> list[dict[str, Any]]:
    """Every (not deleted) Stripe invoice carrying our org, and our invoice id if given, in metadata."""
    return [
        inv for inv in emulator.state()["invoices"]
        if inv["metadata"].get("org") == org and invoice_id in (None, inv["metadata"].get("invoice_id"))
    ]


def stripe_line_pairs(stripe_invoice: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((line["metadata"].get("line_key", ""), line["amount"]) for line in stripe_invoice["lines"]["data"])


def assert_one_exact_copy(emulator: Any, org: str, invoice_id: str, status: str = "open") -> dict[str, Any]:
    """Exactly one Stripe invoice for ours: same lines (one per line, by key and amount), same total, status."""
    invoice = stored(org, invoice_id)
    copies = stripe_copies(emulator, org)
    assert len(copies) == 1, [(c["id"], c["status"], c["metadata"]) for c in copies]
    copy = copies[0]
    assert copy["metadata"]["invoice_id"] == invoice_id
    assert copy["status"] == status, copy["status"]
    expected = sorted((line.id, line.amount_cents) for line in our_lines(org, invoice_id))
    got = stripe_line_pairs(copy)
    duplicated = [key for key, n in Counter(key for key, _ in got).items() if n > 1]
    assert not duplicated, f"lines added twice: {duplicated}"
    assert got == expected
    assert copy["total"] == invoice.total_cents == sum(amount for _, amount in expected)
    assert copy["currency"] == invoice.currency
    return copy


def assert_synced(emulator: Any, org: str, invoice_id: str, status: str = "open") -> dict[str, Any]:
    copy = assert_one_exact_copy(emulator, org, invoice_id, status)
    invoice = stored(org, invoice_id)
    assert invoice.sync.state.value == "synced", (invoice.sync.state, invoice.sync.last_error)
    assert invoice.sync.stripe_invoice_id == copy["id"]
    assert invoice.sync.stripe_invoice_number == copy["number"]
    return copy


@dataclass
class Queues:
    """One test's own sync queue and DLQ (redrive after 5 receives, as in infra/resources.yaml)."""

    sqs: Any
    queue_url: str
    dlq_url: str

    def depth(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def receive(self, url: str | None = None, wait_s: int = 0, count: int = 10) -> list[dict[str, Any]]:
        return list(self.sqs.receive_message(
            QueueUrl=url or self.queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait_s,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", []))

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every DLQ message, peeked (made visible again at once)."""
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(5):
            batch = self.receive(self.dlq_url)
            if not batch:
                break
            for message in batch:
                seen[message["MessageId"]] = message
                self.sqs.change_message_visibility(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"],
                                                   VisibilityTimeout=0)
        return list(seen.values())

    def send(self, body: str, times: int = 1) -> None:
        for _ in range(times):
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)


def queue_message(message: dict[str, Any]) -> Any:
    """An SQS message as the worker sees it."""
    from chalicelib.services.sync_worker import QueueMessage

    count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    return QueueMessage(message["MessageId"], message["ReceiptHandle"], message["Body"], count)


def sync_body(org: str, invoice_id: str, requested_at: datetime | None) -> str:
    from chalicelib.domain.sync_message import SyncMessage

    return SyncMessage(org, invoice_id, requested_at).body()


def body_of(message: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(message["Body"]))
