"""Queue side of the sync: stream changes become messages; messages become Stripe invoices."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from .. import queue
from ..config import settings
from ..domain.invoice import SyncState
from ..domain.sync_message import MalformedSyncMessage, SyncMessage
from ..observability import flush_metrics, logger, metrics
from ..storage.stream_images import Change, invoice_changes
from ..stripe.errors import PermanentSyncError, RetryableSyncError
from ..stripe.gateway import StripeGateway, gateway_for
from .canary import canary_gateway, is_probe_org
from .sync import InvoiceSync, SyncResult


def changes_needing_sync(changes: Iterable[Change]) -> list[SyncMessage]:
    """From stream records, the invoices that now need Stripe.

    A message is due when an invoice header enters `pending` or its sync is requested
    again (a new requested-at); every other change, and every other item, is ignored.
    """
    messages = []
    for change in invoice_changes(changes):
        new, old = change.new, change.old
        if new.sync.state is not SyncState.PENDING:
            continue
        if old and old.sync.state is SyncState.PENDING and old.sync.requested_at == new.sync.requested_at:
            continue
        messages.append(SyncMessage(new.org, new.id, new.sync.requested_at))
    return messages


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


def default_gateway() -> StripeGateway:
    current = settings()
    return gateway_for(current.stripe_api_key, current.stripe_api_base, current.stripe_max_network_retries)


def process_messages(messages: list[QueueMessage], now: datetime, syncer: InvoiceSync | None = None) -> list[str]:
    """Sync each message's invoice; returns the ids of messages to retry (partial batch failure)."""
    syncers: dict[bool, InvoiceSync] = {False: syncer} if syncer else {}

    def syncer_for(org: str) -> InvoiceSync:
        canary = syncer is None and is_probe_org(settings().canary_org, org)
        if canary not in syncers:
            syncers[canary] = InvoiceSync(canary_gateway() if canary else default_gateway())
        return syncers[canary]

    failures = []
    for message in messages:
        if not _process_one(message, now, syncer_for):
            failures.append(message.message_id)
    flush_metrics()
    return failures


def _process_one(message: QueueMessage, now: datetime, syncer_for: Callable[[str], InvoiceSync]) -> bool:
    try:
        parsed = SyncMessage.parse(message.body)
    except MalformedSyncMessage as error:
        queue.to_dead_letters(message.body, f"malformed sync message: {error}")
        metrics.add_metric(name="SentToDLQ", unit=MetricUnit.Count, value=1)
        return True
    org, invoice_id = parsed.org, parsed.invoice_id
    context = {"org": org, "invoice_id": invoice_id, "message_id": message.message_id}
    try:
        syncer = syncer_for(org)
    except PermanentSyncError as error:  # no safe Stripe key for this org: retrying cannot help
        logger.error("sync cannot start", extra={**context, "error": str(error)})
        queue.to_dead_letters(message.body, str(error))
        metrics.add_metric(name="SentToDLQ", unit=MetricUnit.Count, value=1)
        return True
    try:
        result = syncer.sync(org, invoice_id, now)
    except RetryableSyncError as error:
        logger.warning("sync will retry", extra={**context, "error": str(error), "receive": message.receive_count})
        syncer.record_failure(org, invoice_id, error, now, permanent=False)
        queue.delay_retry(message.receipt_handle, message.receive_count)
        metrics.add_metric(name="SyncRetried", unit=MetricUnit.Count, value=1)
        return False
    except (PynamoDBException, BotoCoreError, ClientError) as error:
        # Our own storage or queue failed (throttling, a timeout): retry this message alone.
        logger.exception("sync hit an AWS error; will retry", extra={**context, "error": str(error)})
        metrics.add_metric(name="SyncRetried", unit=MetricUnit.Count, value=1)
        return False
    except PermanentSyncError as error:
        logger.error("sync failed permanently", extra={**context, "error": str(error)})
        syncer.record_failure(org, invoice_id, error, now, permanent=True)
        queue.to_dead_letters(message.body, str(error))
        metrics.add_metric(name="SyncFailed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="SentToDLQ", unit=MetricUnit.Count, value=1)
        return True
    logger.info("sync done", extra={**context, "result": result.value})
    if result is SyncResult.SYNCED:
        metrics.add_metric(name="InvoiceSynced", unit=MetricUnit.Count, value=1)
        if parsed.requested_at:
            lag = (now - parsed.requested_at).total_seconds()
            metrics.add_metric(name="FinalizeToSyncedSeconds", unit=MetricUnit.Seconds, value=lag)
    return True
