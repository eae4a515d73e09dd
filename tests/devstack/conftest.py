"""Fixtures for the local stack's own tests: a fresh table and queues per test on the session's servers."""

from __future__ import annotations

from typing import Any

import pytest
from devstack_support import Aws


@pytest.fixture
def aws(local_aws: Any) -> Aws:
    return Aws(local_aws.dynamodb_endpoint, local_aws.sqs_endpoint)
