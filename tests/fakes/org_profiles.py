"""An in-memory `OrgProfiles` with the table's guarantees (tests/contract/ holds it to them)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from botocore.exceptions import ClientError
from pynamodb.exceptions import UpdateError

from chalicelib.domain.orgs import OrgProfile


def _condition_failed() -> UpdateError:
    """What the table raises when the stored customer id is another one (`failures.condition_failed` is True)."""
    answer = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}}
    return UpdateError("Failed to update item", cause=ClientError(answer, "UpdateItem"))


class MemoryOrgProfiles:
    def __init__(self) -> None:
        self._profiles: dict[str, OrgProfile] = {}
        self._lock = threading.Lock()

    def get(self, org: str) -> OrgProfile | None:
        return self._profiles.get(org)

    def get_many(self, orgs: set[str]) -> dict[str, OrgProfile]:
        return {org: self._profiles[org] for org in orgs if org in self._profiles}

    def set_stripe_customer(self, org: str, customer_id: str) -> None:
        with self._lock:
            profile = self._profiles[org]
            if profile.stripe_customer_id not in (None, customer_id):
                raise _condition_failed()
            self._profiles[org] = replace(profile, stripe_customer_id=customer_id)

    def add(self, org: str, email: str, now: datetime, name: str = "Test Org", currency: str = "usd") -> OrgProfile:
        """For tests: a profile as `OrgRepository.upsert` creates it."""
        self._profiles[org] = OrgProfile(org, name, email, currency, now, now, 1)
        return self._profiles[org]
