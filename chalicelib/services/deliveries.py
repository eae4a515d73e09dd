"""Delivering customer events to webhook endpoints: at least once, signed, with backoff and a DLQ.

A stored event's INSERT on the stream becomes one queue message per endpoint that wants it.
The worker POSTs the signed payload; a 2xx answer ends it. Otherwise the message comes back
after the next step of the retry schedule (about three days in all), then goes to the delivery
DLQ. An endpoint that has failed every delivery for days is disabled. Receivers dedup by the
event id: a redelivered message or a replay sends the same id again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from aws_lambda_powertools.metrics import MetricUnit

from .. import queue
from ..config import Settings, settings
from ..domain.endpoints import DeliveryStatus, WebhookEndpoint
from ..domain.errors import ValidationFailed
from ..domain.identifiers import UnsafeKeyPart
from ..domain.notifications import EVENT_ID_HEADER, SIGNATURE_HEADER, CustomerEvent, retry_delay, sign
from ..domain.periods import parse_utc, utc_iso
from ..observability import flush_metrics, logger, metrics
from ..storage import keys
from ..storage.endpoints import DeliveryRepository, EndpointRepository
from ..storage.notices import NoticeRepository
from ..storage.stream_images import Change, notices_inserted
from .endpoints import check_url
from .sync_worker import QueueMessage

TIMEOUT_SECONDS = (3, 10)  # connect, read: a slow receiver costs a retry, not a stuck worker
USER_AGENT = "usage-invoicing-webhooks/1"
_session = requests.Session()
_session.trust_env = False  # no proxy from the environment: the address we checked is the one we reach


@dataclass(frozen=True)
class DeliveryJob:
    org: str
    endpoint_id: str
    event_id: str
    event_created: datetime

    def body(self) -> str:
        return json.dumps({"org": self.org, "endpoint_id": self.endpoint_id, "event_id": self.event_id,
                           "event_created": utc_iso(self.event_created)}, sort_keys=True)

    @classmethod
    def parse(cls, body: str) -> DeliveryJob:
        raw = json.loads(body)
        return cls(keys.safe(str(raw["org"])), keys.safe(str(raw["endpoint_id"])), keys.safe(str(raw["event_id"])),
                   parse_utc(str(raw["event_created"])))


def jobs_for_changes(changes: Iterable[Change], endpoints: EndpointRepository | None = None) -> list[DeliveryJob]:
    """One job per (new event, endpoint subscribed to its type)."""
    endpoints = endpoints or EndpointRepository()
    by_org: dict[str, list[WebhookEndpoint]] = {}
    jobs = []
    for notice in notices_inserted(changes):
        if notice.org not in by_org:
            by_org[notice.org] = endpoints.of_org(notice.org)
        jobs += [DeliveryJob(notice.org, e.id, notice.event_id, notice.created)
                 for e in by_org[notice.org] if e.wants(notice.event_type)]
    return jobs


def enqueue_jobs(jobs: list[DeliveryJob], queue_url: str | None = None) -> None:
    if jobs:
        queue.send_batch(queue_url or settings().delivery_queue_url, [job.body() for job in jobs])


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    latency_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_event(url: str, event: CustomerEvent, secret: str) -> Attempt:
    payload = event.payload()
    # Wall time, not the business clock: receivers refuse signatures older than a few minutes.
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, EVENT_ID_HEADER: event.id,
               SIGNATURE_HEADER: sign(payload, secret, int(time.time()))}
    started = time.monotonic()
    try:
        # Redirects are not followed: one could lead to an address we would refuse.
        response = _session.post(url, data=payload.encode(), headers=headers, timeout=TIMEOUT_SECONDS,
                                 allow_redirects=False)
        status, error = response.status_code, None if response.ok else f"answered {response.status_code}"
    except requests.RequestException as failure:
        status, error = None, f"{type(failure).__name__}: {failure}"
    return Attempt(status, error, int((time.monotonic() - started) * 1000))


def process_deliveries(messages: list[QueueMessage], now: datetime, current: Settings | None = None) -> list[str]:
    """Deliver each message's event; the ids of messages to retry later (partial batch failure)."""
    current = current or settings()
    failed = [m.message_id for m in messages if not _deliver(m, now, current)]
    flush_metrics()
    return failed


def _deliver(message: QueueMessage, now: datetime, current: Settings) -> bool:
    try:
        job = DeliveryJob.parse(message.body)
    except (ValueError, KeyError, TypeError, UnsafeKeyPart):
        queue.send_to(current.delivery_dlq_url, message.body, "malformed delivery message")
        return True
    log = DeliveryRepository()
    found = EndpointRepository().get_with_secret(job.org, job.endpoint_id)
    event = NoticeRepository().get(job.org, job.event_id)
    context = {"org": job.org, "endpoint": job.endpoint_id, "event": job.event_id, "receive": message.receive_count}
    if found is None or event is None or not found[0].wants(event.type):
        # Deleted, disabled or unsubscribed since (or the event expired): nothing to send.
        kind = event.type.value if event else "unknown"
        log.record(job.org, job.endpoint_id, job.event_id, kind, job.event_created, DeliveryStatus.SKIPPED, now,
                   attempted=False)
        return True
    endpoint, secret = found
    previous = log.get(job.org, job.endpoint_id, job.event_created, job.event_id)
    if previous is not None and previous.status is DeliveryStatus.DELIVERED:
        return True  # a duplicate message: the receiver has it
    try:
        check_url(endpoint.url, current.local_stage)
        attempt = post_event(endpoint.url, event, secret)
    except ValidationFailed as refused:
        attempt = Attempt(None, f"refused: {refused.message}", 0)
    metrics.add_metric(name="WebhookDeliveryLatencyMs", unit=MetricUnit.Milliseconds, value=attempt.latency_ms)
    if attempt.delivered:
        log.record(job.org, job.endpoint_id, job.event_id, event.type.value, job.event_created,
                   DeliveryStatus.DELIVERED, now, attempted=True, status_code=attempt.status_code,
                   latency_ms=attempt.latency_ms)
        EndpointRepository().mark_success(job.org, job.endpoint_id, now)
        metrics.add_metric(name="WebhookDelivered", unit=MetricUnit.Count, value=1)
        return True
    return _failed(job, event, attempt, message, now, current, context)


def _failed(job: DeliveryJob, event: CustomerEvent, attempt: Attempt, message: QueueMessage, now: datetime,
            current: Settings, context: dict[str, Any]) -> bool:
    endpoints, log = EndpointRepository(), DeliveryRepository()
    metrics.add_metric(name="WebhookDeliveryFailed", unit=MetricUnit.Count, value=1)
    failing_since = endpoints.mark_failure(job.org, job.endpoint_id, now)
    delay = retry_delay(message.receive_count, current.webhook_retry_schedule)
    disabled = False
    if failing_since is not None and now - failing_since >= current.webhook_disable_after:
        since = utc_iso(failing_since)
        disabled = endpoints.disable(job.org, job.endpoint_id, now, f"every delivery failed since {since}; last: "
                                     f"{attempt.error}", now - current.webhook_disable_after)
        if disabled:
            # The notice: the endpoint reads `disabled` with the reason in the API; on-call sees the metric.
            logger.warning("webhook endpoint disabled", extra={**context, "failing_since": since})
            metrics.add_metric(name="WebhookEndpointDisabled", unit=MetricUnit.Count, value=1)
    status = DeliveryStatus.RETRYING if delay is not None and not disabled else DeliveryStatus.DEAD
    log.record(job.org, job.endpoint_id, job.event_id, event.type.value, job.event_created, status, now,
               attempted=True, status_code=attempt.status_code, error=attempt.error, latency_ms=attempt.latency_ms)
    if status is DeliveryStatus.DEAD:
        logger.warning("webhook delivery gave up", extra={**context, "error": attempt.error})
        queue.send_to(current.delivery_dlq_url, message.body, attempt.error or "delivery failed")
        metrics.add_metric(name="WebhookDeadLettered", unit=MetricUnit.Count, value=1)
        return True
    assert delay is not None
    logger.info("webhook delivery will retry", extra={**context, "error": attempt.error,
                                                      "retry_in_s": int(delay.total_seconds())})
    queue.delay_message(current.delivery_queue_url, message.receipt_handle, int(delay.total_seconds()))
    return False
