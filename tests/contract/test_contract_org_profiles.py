"""One contract, two implementations of `OrgProfiles`: the DynamoDB org repository and the fake.

What the sync relies on (chalicelib/services/ports.py): an org's Stripe customer, once stored, stays;
storing it again is harmless and storing another fails on the table's condition.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.org_profiles import MemoryOrgProfiles
from pynamodb.exceptions import UpdateError

from chalicelib.failures import condition_failed

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def orgs_and_org(request: Any) -> tuple[Any, str]:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        orgs = MemoryOrgProfiles()
        orgs.add(org, "billing@example.com", NOW, name="Contract Org")
        return orgs, org
    request.getfixturevalue("local_aws")
    from chalicelib.storage.orgs import OrgRepository

    OrgRepository().upsert(org, "Contract Org", "billing@example.com", "usd", NOW)
    return OrgRepository(), org


def test_a_profile_reads_back_without_a_customer_until_one_is_stored(orgs_and_org):
    orgs, org = orgs_and_org
    profile = orgs.get(org)
    assert (profile.org, profile.name, profile.email, profile.currency, profile.stripe_customer_id) == (
        org, "Contract Org", "billing@example.com", "usd", None)
    assert orgs.get(f"{org}-missing") is None
    orgs.set_stripe_customer(org, "cus_1")
    assert orgs.get(org).stripe_customer_id == "cus_1"


def test_the_same_customer_may_be_stored_again_but_never_another(orgs_and_org):
    orgs, org = orgs_and_org
    orgs.set_stripe_customer(org, "cus_1")
    orgs.set_stripe_customer(org, "cus_1")
    with pytest.raises(UpdateError) as refused:
        orgs.set_stripe_customer(org, "cus_2")
    assert condition_failed(refused.value)
    assert orgs.get(org).stripe_customer_id == "cus_1"


def test_many_profiles_read_at_once_leave_out_the_orgs_without_one(orgs_and_org):
    orgs, org = orgs_and_org
    found = orgs.get_many({org, f"{org}-missing"})
    assert set(found) == {org}
    assert found[org] == orgs.get(org)
    assert orgs.get_many(set()) == {}
