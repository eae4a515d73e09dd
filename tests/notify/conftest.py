"""Fixtures of the budget, alert, webhook and collection tests: a local stack on this module's own table
(the run's DynamoDB Local and SQS servers; the Stripe emulator; no HTTP server), a customer's receiver,
and short delivery retries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.webhook_receiver import WebhookReceiver

# Retries after 1 s instead of 30 s, 2 min, ...: an outage of a few seconds spans several attempts.
RETRY_SCHEDULE = "1,1,1,1,1,1,1,1,1,1,1,1"


@pytest.fixture(scope="module")
def stack(local_aws: Any) -> Iterator[Any]:
    from devstack.local_stack import LocalStack

    suffix = uuid.uuid4().hex[:8]
    with LocalStack(table_name=f"notify-{suffix}", queue_prefix=f"notify-{suffix}", api=False,
                    dynamodb_endpoint=local_aws.dynamodb_endpoint, sqs_endpoint=local_aws.sqs_endpoint,
                    stripe_options={"global_rate_limit": None, "endpoint_rate_limit": None},
                    runner_options={"sqs_wait_seconds": 0, "max_retries": 3},
                    extra_env={"WEBHOOK_RETRY_SCHEDULE_SECONDS": RETRY_SCHEDULE}) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def api(stack: Any) -> Iterator[Any]:
    """The Chalice app through its real routing, in process, on the stack's table."""
    from chalice.test import Client

    import app as application

    with Client(application.app) as client:
        yield client
