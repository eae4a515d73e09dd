"""Fixtures of the Stripe sync tests: the session's Stripe emulator, reset, and a fresh pair of queues per test,
the app's settings pointed at them, and the Lambda event sources driven in process."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support.environment import EnvironmentOverrides
from sync_support import Queues

from devstack.stripe_emulator import StripeEmulator

VISIBILITY_SECONDS = 2  # the sync queue's visibility in these tests (the shared fixture uses 2 s too)
MAX_RECEIVE_COUNT = 5  # as infra/resources.yaml


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """stripe-python waits at least 0.5 s between retries, and the worker backs a failed message off
    through its visibility (10 s and up): both shrunk, so retries happen in test time."""
    from stripe import _http_client

    from chalicelib import queue

    monkeypatch.setattr(_http_client.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(_http_client.HTTPClient, "MAX_DELAY", 0.05)
    monkeypatch.setattr(queue, "MAX_VISIBILITY_SECONDS", 1)


@pytest.fixture
def emulator(stripe_server: StripeEmulator) -> StripeEmulator:
    """The session's emulator, reset; rate limits off: tests that want 429s inject them."""
    stripe_server.reset()
    stripe_server.set_rate_limits(global_per_second=None, per_endpoint_per_second=None)
    stripe_server.seed(20261115)
    return stripe_server


@pytest.fixture
def gateway(emulator: StripeEmulator) -> Any:
    """A gateway without client-side retries: every failure reaches the sync, as a lost delivery would."""
    from chalicelib.stripe.gateway import StripeGateway

    assert emulator.base_url
    return StripeGateway("sk_test_sync", emulator.base_url, max_network_retries=0)


@dataclass
class SyncEnv:
    emulator: StripeEmulator
    queues: Queues
    stream_arn: str


@pytest.fixture
def sync_env(local_aws: Any, emulator: StripeEmulator, set_env: EnvironmentOverrides) -> Iterator[SyncEnv]:
    """This test's queues and emulator in the app's settings (SYNC_QUEUE_URL, SYNC_DLQ_URL, STRIPE_API_BASE)."""
    import boto3

    sqs = boto3.client("sqs", region_name=os.environ["AWS_DEFAULT_REGION"])
    prefix = f"sync-{uuid.uuid4().hex[:10]}"
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=prefix, Attributes={
        "VisibilityTimeout": str(VISIBILITY_SECONDS),
        "ReceiveMessageWaitTimeSeconds": "0",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
    })["QueueUrl"]
    set_env(SYNC_QUEUE_URL=queue_url, SYNC_DLQ_URL=dlq_url, STRIPE_API_BASE=str(emulator.base_url),
            STRIPE_MAX_NETWORK_RETRIES="2")
    try:
        yield SyncEnv(emulator, Queues(sqs, queue_url, dlq_url), local_aws.stream_arn)
    finally:
        for url in (queue_url, dlq_url):
            sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def runner(sync_env: SyncEnv) -> Iterator[Any]:
    """Lambda's event source mappings for the app's two handlers: the table stream (from now on) and
    this test's sync queue. Driven by the test (`poll_once`), never in the background."""
    import app
    from devstack.event_runner import EventRunner

    events = EventRunner(
        app.handle_table_changes, app.sync_invoices,
        stream_arn=sync_env.stream_arn, queue_url=sync_env.queues.queue_url,
        starting_position="LATEST", sqs_wait_seconds=0, max_retries=3,
    )
    events.poll_once(sqs_wait_seconds=0)  # position every shard's iterator before the test writes
    yield events
    events.stop()
