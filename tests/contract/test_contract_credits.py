"""One contract, two implementations of `Credits`: the DynamoDB credit repository and the fake.

What the credit rules rely on (chalicelib/services/ports.py): a grant is written once per id and read back as
written; the statement's balance and ledger follow every movement; the expiry listing holds the grants with
something left whose expiry has come; an expiry takes what is left once, and never from a grant that moved
since it was read. (Spending, carrying over and restoring are parts of finalize's and void's transactions;
their contract comes with those ports.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.credits import MemoryCredits

from chalicelib.domain.credits import Balance, CreditReason, Grant, Movement
from chalicelib.domain.periods import utc_iso

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def credits_and_org(request: Any) -> tuple[Any, str]:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        return MemoryCredits(), org
    request.getfixturevalue("local_aws")
    from chalicelib.storage.credits import CreditRepository

    return CreditRepository(), org


def _grant(org: str, grant_id: str, cents: int, expires_at: datetime | None = None) -> Grant:
    return Grant(grant_id, org, cents, cents, CreditReason.PROMOTION, "welcome", NOW, expires_at, f"client-{grant_id}")


def test_a_grant_is_written_once_and_read_back_as_written(credits_and_org):
    credits, org = credits_and_org
    grant = _grant(org, "gr_a", 5000, NOW + timedelta(days=30))
    assert credits.add_grant(grant, NOW)
    assert not credits.add_grant(_grant(org, "gr_a", 7000), NOW)  # the id is taken: nothing changes
    assert credits.grant(org, "gr_a") == grant
    assert credits.grant(org, "gr_missing") is None
    assert credits.grant(f"{org}-other", "gr_a") is None
    assert [g.id for g in credits.grants(org)] == ["gr_a"]


def test_the_statement_follows_grants_and_expiries(credits_and_org):
    credits, org = credits_and_org
    assert credits.statement(org).balance == Balance()
    credits.add_grant(_grant(org, "gr_a", 5000), NOW)
    credits.add_grant(_grant(org, "gr_b", 1200, NOW + timedelta(days=1)), NOW + timedelta(seconds=1))
    assert credits.expire(credits.grant(org, "gr_b"), NOW + timedelta(days=2))
    statement = credits.statement(org)
    assert statement.balance == Balance(granted_cents=6200, expired_cents=1200)
    assert statement.balance.balance_cents == 5000
    assert [(e.movement, e.grant_id, e.amount_cents) for e in statement.entries] == [
        (Movement.GRANT, "gr_a", 5000), (Movement.GRANT, "gr_b", 1200), (Movement.EXPIRE, "gr_b", 1200)]
    assert {g.id: g.remaining_cents for g in statement.grants} == {"gr_a": 5000, "gr_b": 0}


def test_the_expiry_listing_holds_grants_with_something_left_whose_expiry_has_come(credits_and_org):
    credits, org = credits_and_org
    soon, later = NOW + timedelta(days=1), NOW + timedelta(days=10)
    credits.add_grant(_grant(org, "gr_soon", 100, soon), NOW)
    credits.add_grant(_grant(org, "gr_later", 100, later), NOW)
    credits.add_grant(_grant(org, "gr_never", 100), NOW)

    def listed(before: datetime) -> list[str]:
        return sorted(grant_id for owner, grant_id in credits.expiring(utc_iso(before)) if owner == org)

    assert listed(soon - timedelta(seconds=1)) == []
    assert listed(soon) == ["gr_soon"]  # at its expiry, inclusive
    assert listed(later + timedelta(days=1)) == ["gr_later", "gr_soon"]
    assert credits.expire(credits.grant(org, "gr_soon"), soon)
    assert listed(later + timedelta(days=1)) == ["gr_later"]  # nothing left: no longer listed


def test_an_expiry_takes_what_is_left_once_and_never_from_a_grant_that_moved(credits_and_org):
    credits, org = credits_and_org
    credits.add_grant(_grant(org, "gr_a", 900, NOW + timedelta(days=1)), NOW)
    read = credits.grant(org, "gr_a")
    assert credits.expire(read, NOW + timedelta(days=2))
    assert not credits.expire(read, NOW + timedelta(days=2))  # the same read again: the grant moved
    after = credits.grant(org, "gr_a")
    assert (after.remaining_cents, after.version) == (0, read.version + 1)
    assert credits.statement(org).balance.expired_cents == 900
