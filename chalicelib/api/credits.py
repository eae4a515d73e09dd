"""Credit grant requests and the JSON of an org's balance and ledger."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from ..domain.credits import Grant, Statement
from ..domain.periods import utc_iso
from .schemas import Identifier, _Strict, money


class CreditGrantIn(_Strict):
    client_id: Identifier  # grants are idempotent by it
    amount_cents: Annotated[int, Field(strict=True, gt=0, le=100_000_000)]
    reason: Literal["promotion", "prepayment", "goodwill"]
    description: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    expires_at: AwareDatetime | None = None  # usable by invoices of periods that end by then


def grant_json(grant: Grant, currency: str) -> dict[str, Any]:
    return {
        "id": grant.id, "client_id": grant.client_id, "reason": grant.reason.value, "description": grant.description,
        "amount": money(grant.amount_cents, currency), "remaining": money(grant.remaining_cents, currency),
        "granted_at": utc_iso(grant.granted_at),
        "expires_at": utc_iso(grant.expires_at) if grant.expires_at else None,
    }


def statement_json(org: str, statement: Statement, currency: str) -> dict[str, Any]:
    b = statement.balance
    return {
        "org": org,
        "balance": money(b.balance_cents, currency),
        "granted": money(b.granted_cents, currency),
        "applied": money(b.applied_cents, currency),
        "expired": money(b.expired_cents, currency),
        "restored": money(b.restored_cents, currency),
        "grants": [grant_json(g, currency) for g in statement.grants],
        "ledger": [{"id": e.id, "movement": e.movement.value, "grant_id": e.grant_id,
                    "amount": money(e.amount_cents, currency), "at": utc_iso(e.at), "invoice_id": e.invoice_id}
                   for e in statement.entries],
    }
