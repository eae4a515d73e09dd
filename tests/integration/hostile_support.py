"""Shared by the hostile-input tests: a table of their own (nothing else writes to it, so its stream shows
exactly what a request wrote), a pinned clock, and the invariants every refusal must keep."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from acceptance_support import assert_error
from support import tables as support_tables
from support.tables import Items, new_table
from support.writes import changes_to

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
NOV = "inv_202611"


@dataclass(frozen=True)
class Hostile:
    table_name: str
    org: str  # has a billing profile and a November draft holding one line
    tokens: dict[str, str]


@contextmanager
def own_table(local_aws: Any, tokens: dict[str, str]) -> Iterator[Hostile]:
    """Bind the app to a fresh table (support.tables.new_table) holding an org, with the clock pinned at NOW;
    restore the run's table and clock afterwards."""
    from chalicelib import clock
    from chalicelib.storage.orgs import OrgRepository

    with new_table(local_aws, tokens, "hostile", NOW) as table_name:
        org = f"hostile-{uuid.uuid4().hex[:8]}"
        OrgRepository().upsert(org, "Hostile Org", "billing@hostile.test", "usd", NOW)
        clock.set_clock(lambda: NOW)
        try:
            yield Hostile(table_name, org, tokens)
        finally:
            clock.set_clock(None)


def table_items(table_name: str) -> Items:
    """Every item of the (small) table by key; tokens aside (authenticating may one day note a token's last
    use, which is not the request writing)."""
    return support_tables.table_items(table_name, skip_pk_prefix="TOKEN#")


@contextmanager
def unchanged(hostile: Hostile) -> Iterator[None]:
    """The block may be refused any number of times; it must change no item of the table (tokens aside, as
    above), as the table's stream shows."""
    with changes_to(hostile.table_name) as changed:
        yield
    written = [(change.event, change.key) for change in changed if not change.key[0].startswith("TOKEN#")]
    assert written == [], written


def refused(response: Any, status: int | None = None, code: str | None = None) -> dict[str, Any]:
    """A 4xx (never a 5xx) in the one envelope."""
    assert 400 <= response.status_code < 500, (response.status_code, response.body[:500])
    return assert_error(response, status or response.status_code, code)


def no_5xx_and_enveloped(response: Any) -> None:
    """What every answer to anything must be: below 500, and an error only ever in the envelope."""
    assert response.status_code < 500, (response.status_code, response.body[:500])
    if response.status_code >= 400:
        refused(response)


def headers(token: str, content_type: str | None = "application/json") -> dict[str, str]:
    sent = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        sent["Content-Type"] = content_type
    return sent


def post_raw(api: Any, token: str, body: bytes | str, content_type: str | None = "application/json") -> Any:
    return api.http.post("/v1/usage", headers=headers(token, content_type), body=body)


def post_events(api: Any, token: str, events: list[Any]) -> Any:
    return post_raw(api, token, json.dumps({"events": events}))
