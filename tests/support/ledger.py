"""The credit ledger's identity, checked on a statement from any store (the table or the in-memory fakes)."""

from __future__ import annotations

from chalicelib.domain.credits import Statement


def assert_ledger_identity_of(found: Statement) -> Statement:
    """balance = granted - applied - expired + restored = what the grants have left, and never negative; the
    ledger's entries add up to the same four totals."""
    b = found.balance
    assert b.balance_cents == b.granted_cents - b.applied_cents - b.expired_cents + b.restored_cents
    assert b.balance_cents == sum(g.remaining_cents for g in found.grants) >= 0
    assert all(0 <= g.remaining_cents <= g.amount_cents for g in found.grants)
    by_movement = {m: sum(e.amount_cents for e in found.entries if e.movement.value == m)
                   for m in ("grant", "apply", "expire", "restore")}
    assert by_movement == {"grant": b.granted_cents, "apply": b.applied_cents, "expire": b.expired_cents,
                           "restore": b.restored_cents}
    return found
