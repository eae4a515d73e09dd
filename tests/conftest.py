"""Shared fixtures: real DynamoDB Local and moto's SQS server for the whole run, data isolated per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "TOKEN_PEPPER": "test-pepper",
    "STRIPE_API_KEY": "sk_test_local",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_local",
}
ADMIN_TOKEN = "test-admin-token"
USAGE_TOKEN = "test-usage-token"


@dataclass(frozen=True)
class LocalAws:
    dynamodb_endpoint: str
    sqs_endpoint: str
    table_name: str
    stream_arn: str
    queue_url: str
    dlq_url: str


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """DynamoDB Local and moto's SQS server, with the table and queues made from infra/resources.yaml."""
    from devstack.dynamodb_local import DynamoDBLocal
    from devstack.resources import create_local_resources
    from devstack.sqs_local import SqsLocal

    saved = dict(os.environ)
    os.environ.update(LOCAL_ENV)
    dynamodb, sqs = DynamoDBLocal(), SqsLocal()
    try:
        ddb_url, sqs_url = dynamodb.start(), sqs.start()
        resources = create_local_resources(ddb_url, sqs_url, "invoicing-test", "invoicing-test",
                                           sync_queue_visibility_seconds=2, receive_wait_seconds=0)
        os.environ.update({
            "AWS_ENDPOINT_URL_DYNAMODB": ddb_url,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": ddb_url,
            "AWS_ENDPOINT_URL_SQS": sqs_url,
            "TABLE_NAME": resources.table_name,
            "TABLE_STREAM_ARN": resources.stream_arn,
            "SYNC_QUEUE_URL": resources.queue_url,
            "SYNC_DLQ_URL": resources.dlq_url,
            "DELIVERY_QUEUE_URL": resources.delivery_queue_url,
            "DELIVERY_DLQ_URL": resources.delivery_dlq_url,
        })
        from chalicelib.config import reload_settings
        from chalicelib.services.bootstrap import bind_storage

        bind_storage(reload_settings())
        yield LocalAws(ddb_url, sqs_url, resources.table_name, resources.stream_arn, resources.queue_url,
                       resources.dlq_url)
    finally:
        sqs.stop()
        dynamodb.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def tokens(local_aws: LocalAws) -> dict[str, str]:
    from chalicelib.config import settings
    from chalicelib.storage.tokens import TokenRepository

    repo = TokenRepository(settings().token_pepper)
    now = datetime.now(UTC)
    repo.put(ADMIN_TOKEN, "test admin", {"admin"}, now)
    repo.put(USAGE_TOKEN, "test usage", {"usage:write"}, now)
    return {"admin": ADMIN_TOKEN, "usage": USAGE_TOKEN}


@pytest.fixture
def org(local_aws: LocalAws) -> str:
    """A fresh organisation with a billing profile, so tests never share data."""
    from chalicelib.storage.orgs import OrgRepository

    name = f"org-{uuid.uuid4().hex[:12]}"
    OrgRepository().upsert(name, "Test Org", "billing@example.com", "usd", datetime.now(UTC))
    return name


@pytest.fixture
def reader_token(org: str) -> str:
    """A read-only token scoped to `org`."""
    from chalicelib.config import settings
    from chalicelib.storage.tokens import TokenRepository

    token = f"read-{uuid.uuid4().hex}"
    TokenRepository(settings().token_pepper).put(token, "reader", {f"org:{org}:read"}, datetime.now(UTC))
    return token


@pytest.fixture
def api(local_aws: LocalAws, tokens: dict[str, str]) -> Iterator[object]:
    """The Chalice app through its real routing, in process."""
    from chalice.test import Client

    import app as application

    with Client(application.app) as client:
        yield client


@pytest.fixture
def pinned_clock() -> Iterator[object]:
    """Pin the one clock; tests set `.now` to move time."""
    from chalicelib import clock

    class Pinned:
        now = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)

    clock.set_clock(lambda: Pinned.now)
    yield Pinned
    clock.set_clock(None)
