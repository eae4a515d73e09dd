"""A lease per invoice, taken with a conditional write, so one worker syncs an invoice at a time."""

from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.exceptions import DeleteError, PutError

from ..failures import condition_failed
from . import keys
from .models import LeaseItem


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def acquire(org: str, invoice_id: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    expires = now + ttl
    item = LeaseItem(keys.lease_pk(org, invoice_id), keys.LEASE_SK, owner=owner,
                     expires_at_ms=_ms(expires), expires_at=int(expires.timestamp()) + 86400)
    try:
        # Free, expired (its holder died), or already ours (redelivery to the same worker).
        item.save(condition=LeaseItem.pk.does_not_exist() | (LeaseItem.expires_at_ms < _ms(now))
                  | (LeaseItem.owner == owner))
        return True
    except PutError as error:
        if condition_failed(error):
            return False
        raise


def release(org: str, invoice_id: str, owner: str) -> None:
    try:
        LeaseItem(keys.lease_pk(org, invoice_id), keys.LEASE_SK).delete(condition=LeaseItem.owner == owner)
    except DeleteError as error:
        if not condition_failed(error):
            raise


class LeaseTable:
    """The lease functions as an object, for code that takes its leases as a port (`services/ports.py`).
    It calls the module's functions at call time, so what replaces them (a test's killed process) applies."""

    def acquire(self, org: str, invoice_id: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        return acquire(org, invoice_id, owner, now, ttl)

    def release(self, org: str, invoice_id: str, owner: str) -> None:
        release(org, invoice_id, owner)
