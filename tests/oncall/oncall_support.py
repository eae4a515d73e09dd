"""Helpers of the on-call CLI tests: invoices in a chosen sync state, dead letters, queue reads."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

NOW = datetime.now(UTC)


def create_org() -> str:
    from chalicelib.storage.orgs import OrgRepository

    name = f"oncall-{uuid.uuid4().hex[:12]}"
    # One email per org: the Stripe customer lookup by email then never sees another org's customer.
    OrgRepository().upsert(name, "On-call Test Org", f"billing+{name}@example.com", "usd", datetime.now(UTC))
    return name


def draft_invoice(org: str, now: datetime = NOW, quantity: str = "1.25", events: int = 3) -> Any:
    """The org's invoice for `now`'s period, still a draft, with egress usage on it."""
    from chalicelib.config import settings
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.usage import UsageEvent, record_usage

    usage = [UsageEvent(f"e{i}", org, "web", "egress", Decimal(quantity), "fra", {}, now) for i in range(events)]
    record_usage(usage, now, settings())
    return InvoiceService().upcoming(org, "usd", now).invoice


def finalized_invoice(org: str, now: datetime = NOW, quantity: str = "1.25", events: int = 3) -> Any:
    """Finalized through the service, so its sync is pending exactly as month-end leaves it."""
    from chalicelib.services.invoices import InvoiceService

    invoice = draft_invoice(org, now, quantity, events)
    return InvoiceService().finalize(org, invoice.id, now)


def failed_invoice(org: str, error: str, now: datetime = NOW) -> Any:
    """What the worker leaves after a permanent failure: sync failed, the error recorded, one attempt counted."""
    from chalicelib.domain.invoice import SyncState
    from chalicelib.storage.invoices import InvoiceRepository

    invoice = finalized_invoice(org, now)
    repo = InvoiceRepository()
    assert repo.record_sync(invoice, SyncState.FAILED, now, error=error, count_attempt=True)
    return repo.get(org, invoice.id)


def synced_invoice(org: str, now: datetime = NOW) -> Any:
    from chalicelib.domain.invoice import SyncState
    from chalicelib.storage.invoices import InvoiceRepository

    invoice = finalized_invoice(org, now)
    repo = InvoiceRepository()
    assert repo.record_sync(invoice, SyncState.SYNCED, now, stripe_invoice_id=f"in_{uuid.uuid4().hex[:10]}")
    return repo.get(org, invoice.id)


def stored(org: str, invoice_id: str) -> Any:
    from chalicelib.storage.invoices import InvoiceRepository

    return InvoiceRepository().get(org, invoice_id)


def dead_letter(invoice: Any, reason: str) -> None:
    """The worker's own path to the DLQ for a permanent failure."""
    from chalicelib import queue
    from chalicelib.domain.sync_message import SyncMessage

    queue.to_dead_letters(SyncMessage(invoice.org, invoice.id, invoice.sync.requested_at).body(), reason)


def sqs() -> Any:
    import boto3

    return boto3.client("sqs", region_name="us-east-1")  # the session points AWS_ENDPOINT_URL_SQS at moto


def depth(queue_url: str) -> tuple[int, int]:
    """(visible, in flight) as SQS reports them."""
    attributes = sqs().get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every visible message; returns the decoded bodies (raw text if not JSON)."""
    client, bodies = sqs(), []
    while True:
        messages = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                          VisibilityTimeout=30).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            try:
                bodies.append(json.loads(message["Body"]))
            except ValueError:
                bodies.append({"raw": message["Body"]})
            client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
