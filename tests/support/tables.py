"""The table as it stands: every item by key, read consistently. For the small tables tests compare."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

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
