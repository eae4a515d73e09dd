"""Prepaid credits: grants, the ledger of their movements, and which grants an invoice uses.

The ledger only ever moves money between four running totals, so an org's balance is always
granted - applied - expired + restored, and every grant's remaining amount stays between zero
and what was granted. At finalize, credits apply in order of expiry, soonest first (credits
that never expire last; ties by grant id so the order never depends on arrival), up to the
invoice's total; the rest carries over. A grant is usable by invoices of periods that end on
or before its expiry, so which grants an invoice uses depends on its period, not on when the
month-end job happens to run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .lines import line_id
from .periods import Period

MAX_GRANTS_PER_INVOICE = 25  # each costs 3 actions of the finalize transaction (DynamoDB: 100 at most)


class CreditReason(StrEnum):
    PROMOTION = "promotion"
    PREPAYMENT = "prepayment"
    GOODWILL = "goodwill"
    CARRYOVER = "carryover"  # a negative invoice total, carried to the balance at finalize


class Movement(StrEnum):
    GRANT = "grant"
    APPLY = "apply"
    EXPIRE = "expire"
    RESTORE = "restore"


@dataclass(frozen=True)
class Grant:
    id: str
    org: str
    amount_cents: int
    remaining_cents: int
    reason: CreditReason
    description: str
    granted_at: datetime
    expires_at: datetime | None
    client_id: str | None
    version: int = 1

    def usable_for(self, period: Period) -> bool:
        return self.remaining_cents > 0 and (self.expires_at is None or period.end <= self.expires_at)

    @property
    def order(self) -> tuple[bool, datetime, str]:
        return self.expires_at is None, self.expires_at or self.granted_at, self.id


@dataclass(frozen=True)
class Entry:
    """One ledger movement. Its id is derived from what caused it, so a retry cannot repeat it."""

    id: str
    movement: Movement
    grant_id: str
    amount_cents: int
    at: datetime
    invoice_id: str | None = None


@dataclass(frozen=True)
class Balance:
    granted_cents: int = 0
    applied_cents: int = 0
    expired_cents: int = 0
    restored_cents: int = 0

    @property
    def balance_cents(self) -> int:
        return self.granted_cents - self.applied_cents - self.expired_cents + self.restored_cents


@dataclass(frozen=True)
class Application:
    grant: Grant
    amount_cents: int


def _grant_id(*parts: str) -> str:
    return "gr_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def grant_id_for(client_id: str) -> str:
    """Grants through the API are idempotent by the caller's id."""
    return _grant_id("api", client_id)


def carryover_grant_id(invoice_id: str) -> str:
    return _grant_id("carryover", invoice_id)


def applied_line_id(grant_id: str) -> str:
    return line_id("credit-applied", grant_id)


def carryover_line_id(invoice_id: str) -> str:
    return line_id("carryover", invoice_id)


def entry_id(movement: Movement, grant_id: str, cause: str) -> str:
    """apply/restore: the invoice; grant: the grant; expire: the grant's version that expired."""
    return f"{movement.value}:{grant_id}:{cause}"


def allocate(grants: Iterable[Grant], period: Period, total_cents: int) -> list[Application]:
    """Which grants pay how much of an invoice of `period` totalling `total_cents`: soonest expiry first."""
    left = total_cents
    used: list[Application] = []
    for grant in sorted((g for g in grants if g.usable_for(period)), key=lambda g: g.order):
        if left <= 0 or len(used) == MAX_GRANTS_PER_INVOICE:
            break
        amount = min(left, grant.remaining_cents)
        used.append(Application(grant, amount))
        left -= amount
    return used


def check_one_way(invoice_id: str, restores: list[Application], revoked: Grant | None) -> None:
    """A void gives back what its invoice used, or takes back what it carried over, never both: a total above
    zero used credit and one below carried some over (and a transaction may write the balance only once)."""
    if restores and revoked is not None:
        raise ValueError(f"invoice {invoice_id} both used and carried over credit")


@dataclass(frozen=True)
class Statement:
    """An org's credit: its balance, its grants and the ledger of movements."""

    balance: Balance
    grants: list[Grant]
    entries: list[Entry]
