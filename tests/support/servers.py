"""The servers a test session starts once and every test shares: DynamoDB Local, moto's SQS server and the
Stripe emulator. Tests keep their data apart instead (fresh org names, their own tables and queues, an
emulator reset before each test)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .environment import LOCAL_ENV, EnvironmentOverrides

SESSION_TABLE = "invoicing-test"


@dataclass(frozen=True)
class LocalAws:
    dynamodb_endpoint: str
    sqs_endpoint: str
    table_name: str
    stream_arn: str
    queue_url: str
    dlq_url: str


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[Any]:
    """The session's one DynamoDB Local (a JVM: seconds to start, so never per test)."""
    from devstack.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal() as server:
        yield server


@pytest.fixture(scope="session")
def sqs_server() -> Iterator[Any]:
    """The session's one moto SQS server, in this process."""
    from devstack.sqs_local import SqsLocal

    with SqsLocal() as server:
        yield server


@pytest.fixture(scope="session")
def local_aws(dynamodb_server: Any, sqs_server: Any) -> Iterator[LocalAws]:
    """The app's table and queues (from infra/resources.yaml) on the session's servers, and the app's
    settings pointed at them for the whole run."""
    from devstack.resources import create_local_resources

    environment = EnvironmentOverrides()
    environment.apply(LOCAL_ENV)
    ddb_url, sqs_url = dynamodb_server.endpoint_url, sqs_server.endpoint_url
    try:
        resources = create_local_resources(ddb_url, sqs_url, SESSION_TABLE, SESSION_TABLE,
                                           sync_queue_visibility_seconds=2, receive_wait_seconds=0)
        environment.apply({
            "AWS_ENDPOINT_URL_DYNAMODB": ddb_url,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": ddb_url,
            "AWS_ENDPOINT_URL_SQS": sqs_url,
            "TABLE_NAME": resources.table_name,
            "TABLE_STREAM_ARN": resources.stream_arn,
            "SYNC_QUEUE_URL": resources.queue_url,
            "SYNC_DLQ_URL": resources.dlq_url,
        })
        from chalicelib.config import settings
        from chalicelib.services.bootstrap import bind_storage

        bind_storage(settings())
        yield LocalAws(ddb_url, sqs_url, resources.table_name, resources.stream_arn, resources.queue_url,
                       resources.dlq_url)
    finally:
        environment.restore()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[Any]:
    """The session's one Stripe emulator; take it through a suite's `emulator` fixture, which resets it."""
    from devstack.stripe_emulator import StripeEmulator

    with StripeEmulator() as emulator:
        yield emulator
