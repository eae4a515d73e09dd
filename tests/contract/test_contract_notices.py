"""One contract, two implementations of `Notices`: the DynamoDB notice repository and the fake.

What the event rules rely on (chalicelib/services/ports.py): an event is stored once per id and read back as
stored; a repeat, even with other data, changes nothing; of racing publishers exactly one stores it; a read
is a copy.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.notices import MemoryNotices

from chalicelib.domain.notifications import CustomerEvent, EventType, event_id

NOW = datetime(2026, 11, 20, 9, 30, 15, 123000, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def notices_and_org(request: Any) -> tuple[Any, str]:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        return MemoryNotices(), org
    request.getfixturevalue("local_aws")
    from chalicelib.storage.notices import NoticeRepository

    return NoticeRepository(), org


def _event(org: str, cause: str, total_cents: int = 500) -> CustomerEvent:
    return CustomerEvent(event_id(org, "inv_202611", cause), EventType.INVOICE_FINALIZED, org, NOW,
                         {"invoice": {"id": "inv_202611", "total_cents": total_cents, "due_at": None,
                                      "lines": ["a", "b"]}})


def test_an_event_is_stored_once_per_id_and_read_back_as_stored(notices_and_org):
    notices, org = notices_and_org
    event = _event(org, "finalized")
    assert notices.publish(event)
    assert not notices.publish(event)  # a redelivered record or a replay
    assert not notices.publish(_event(org, "finalized", total_cents=999))  # the same id: nothing changes
    assert notices.get(org, event.id) == event
    assert notices.get(org, _event(org, "other").id) is None
    assert notices.get(f"{org}-other", event.id) is None


def test_of_racing_publishers_exactly_one_stores_the_event(notices_and_org):
    notices, org = notices_and_org
    event = _event(org, "raced")
    with ThreadPoolExecutor(max_workers=8) as pool:
        stored = list(pool.map(lambda _: notices.publish(event), range(8)))
    assert stored.count(True) == 1
    assert notices.get(org, event.id) == event


def test_a_read_is_a_copy(notices_and_org):
    notices, org = notices_and_org
    event = _event(org, "copied")
    notices.publish(event)
    read = notices.get(org, event.id)
    read.data["invoice"]["total_cents"] = 1
    event.data["invoice"]["lines"].append("c")  # nor does the caller's own object share the stored one
    assert notices.get(org, event.id) == _event(org, "copied")
