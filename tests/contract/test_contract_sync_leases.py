"""One contract, two implementations of `SyncLeases`: the DynamoDB lease table and the fake.

What the sync relies on (chalicelib/services/ports.py): one holder per invoice; a holder that died
is replaced once its lease expired; only the holder releases it.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.sync_leases import MemoryLeases

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
TTL = timedelta(minutes=2)
MS = timedelta(milliseconds=1)
INVOICE = "inv_202611"


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def leases_and_org(request: Any) -> tuple[Any, str]:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        return MemoryLeases(), org
    request.getfixturevalue("local_aws")
    from chalicelib.storage.leases import LeaseTable

    return LeaseTable(), org


def test_a_held_lease_is_refused_to_others_until_it_expires(leases_and_org):
    leases, org = leases_and_org
    assert leases.acquire(org, INVOICE, "a", NOW, TTL)
    assert not leases.acquire(org, INVOICE, "b", NOW + TTL - MS, TTL)
    assert not leases.acquire(org, INVOICE, "b", NOW + TTL, TTL)  # expired means strictly past its end
    assert leases.acquire(org, INVOICE, "b", NOW + TTL + MS, TTL)
    assert not leases.acquire(org, INVOICE, "a", NOW + TTL + MS, TTL)  # the old holder lost it


def test_the_holder_may_take_its_lease_again_and_extends_it(leases_and_org):
    leases, org = leases_and_org
    assert leases.acquire(org, INVOICE, "a", NOW, TTL)
    assert leases.acquire(org, INVOICE, "a", NOW + TTL - MS, TTL)  # a redelivery to the same worker
    assert not leases.acquire(org, INVOICE, "b", NOW + TTL + MS, TTL)
    assert leases.acquire(org, "inv_202612", "b", NOW, TTL)  # leases are per invoice


def test_only_the_holder_releases_a_lease(leases_and_org):
    leases, org = leases_and_org
    leases.release(org, INVOICE, "nobody")  # releasing a free lease is harmless
    assert leases.acquire(org, INVOICE, "a", NOW, TTL)
    leases.release(org, INVOICE, "b")
    assert not leases.acquire(org, INVOICE, "b", NOW, TTL)
    leases.release(org, INVOICE, "a")
    assert leases.acquire(org, INVOICE, "b", NOW, TTL)


def test_of_racing_acquirers_exactly_one_holds_the_lease(leases_and_org):
    leases, org = leases_and_org
    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(lambda owner: leases.acquire(org, INVOICE, f"w{owner}", NOW, TTL), range(8)))
    assert won.count(True) == 1
