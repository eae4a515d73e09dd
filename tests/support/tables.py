"""The table as it stands: every item by key, read consistently (for the small tables tests compare); and a
table of a test's own, for a test that reads or changes a whole table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

from .environment import EnvironmentOverrides

Items = dict[tuple[str, str], dict[str, Any]]


@lru_cache(maxsize=8)
def _client(service: str, region: str, endpoint: str | None) -> Any:
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=endpoint)


def app_client(service: str) -> Any:
    """A client of `service` where the app's settings point (the test run's servers), one per endpoint:
    building one costs tens of milliseconds, more than a small scan."""
    from chalicelib.config import settings

    current = settings()
    return _client(service, current.region, current.dynamodb_endpoint)


def table_items(table_name: str | None = None, *, skip_pk_prefix: str | None = None) -> Items:
    """Every item of `table_name` (the app's table by default), by (pk, sk); partitions starting with
    `skip_pk_prefix` left out."""
    from chalicelib.config import settings

    client = app_client("dynamodb")
    items: Items = {}
    kwargs: dict[str, Any] = {"TableName": table_name or settings().table_name, "ConsistentRead": True}
    for _ in range(10_000):  # pages of up to 1 MB
        page = client.scan(**kwargs)
        for item in page.get("Items", []):
            if skip_pk_prefix is None or not item["pk"]["S"].startswith(skip_pk_prefix):
                items[(item["pk"]["S"], item["sk"]["S"])] = item
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raise AssertionError("the table scan did not end")


@contextmanager
def new_table(local_aws: Any, tokens: dict[str, str], prefix: str, now: datetime) -> Iterator[str]:
    """Bind the app to a fresh table on the run's DynamoDB Local, with the run's tokens in it; bind it back to the
    run's table afterwards. `tokens` must already be in the run's table (the session fixture), or it would be
    stored in this one only."""
    from chalicelib.config import settings
    from chalicelib.services.bootstrap import bind_storage
    from chalicelib.storage.tokens import TokenRepository
    from devstack.resources import create_local_resources

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    resources = create_local_resources(local_aws.dynamodb_endpoint, local_aws.sqs_endpoint, name, name)
    environment = EnvironmentOverrides()
    environment(TABLE_NAME=resources.table_name)
    try:
        bind_storage(settings())
        repo = TokenRepository(settings().token_pepper)
        repo.put(tokens["admin"], f"{prefix} admin", {"admin"}, now)
        repo.put(tokens["usage"], f"{prefix} usage", {"usage:write"}, now)
        yield resources.table_name
    finally:
        environment.restore()
        bind_storage(settings())
