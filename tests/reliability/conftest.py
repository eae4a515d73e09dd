"""Fixtures of the reliability tests: the whole local stack over HTTP (`chalice local`), one per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from reliability_support import Api, running_stack


@pytest.fixture(scope="module")
def http_stack(local_aws: Any) -> Iterator[Any]:
    """The API served by `chalice local` on a free port, on this module's own table (the DynamoDB Local
    and SQS servers shared by the whole test run), with the Stripe emulator; no background event runner."""
    with running_stack(local_aws, api=True) as stack:
        yield stack


@pytest.fixture
def http(http_stack: Any) -> Iterator[Api]:
    client = Api.of(http_stack)
    yield client
    client.close()
