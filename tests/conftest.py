"""Shared fixtures: the session's servers (see `support/servers.py`) and data isolated per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

pytest_plugins = ["support.environment", "support.servers", "support.marks", "support.scheduling"]

ADMIN_TOKEN = "test-admin-token"
USAGE_TOKEN = "test-usage-token"


@pytest.fixture(scope="session")
def tokens(local_aws: Any) -> dict[str, str]:
    from chalicelib.config import settings
    from chalicelib.storage.tokens import TokenRepository

    repo = TokenRepository(settings().token_pepper)
    now = datetime.now(UTC)
    repo.put(ADMIN_TOKEN, "test admin", {"admin"}, now)
    repo.put(USAGE_TOKEN, "test usage", {"usage:write"}, now)
    return {"admin": ADMIN_TOKEN, "usage": USAGE_TOKEN}


@pytest.fixture
def org(local_aws: Any) -> str:
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
def api(local_aws: Any, tokens: dict[str, str]) -> Iterator[object]:
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
