"""Which grants pay an invoice: soonest expiry first, never more than the total or what a grant has left,
only grants whose expiry the invoice's period ends by, in an order that never depends on arrival."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.credits import CreditReason, Grant, allocate
from chalicelib.domain.periods import Period

NOV = Period(2026, 11)
GRANTED = datetime(2026, 10, 1, tzinfo=UTC)
EXPIRIES = [None, datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)]


def grant(grant_id: str, remaining: int, expires_at: datetime | None) -> Grant:
    return Grant(grant_id, "acme", remaining, remaining, CreditReason.PROMOTION, "promo", GRANTED, expires_at, None)


grants_strategy = st.lists(
    st.builds(grant, st.text("abcdef", min_size=1, max_size=4), st.integers(0, 5000), st.sampled_from(EXPIRIES)),
    max_size=8, unique_by=lambda g: g.id,
)


@given(grants_strategy, st.integers(0, 20000), st.randoms())
def test_credits_apply_soonest_expiry_first_up_to_the_total_whatever_order_they_are_listed_in(grants, total, rnd):
    shuffled = grants[:]
    rnd.shuffle(shuffled)
    used = allocate(grants, NOV, total)
    assert used == allocate(shuffled, NOV, total)
    usable = [g for g in grants if g.remaining_cents > 0 and (g.expires_at is None or g.expires_at >= NOV.end)]
    assert sum(a.amount_cents for a in used) == min(total, sum(g.remaining_cents for g in usable))
    assert all(0 < a.amount_cents <= a.grant.remaining_cents for a in used)
    assert all(a.grant in usable for a in used)
    # Soonest expiry first, never-expiring last: every grant before the last one used is used up.
    order = [(g.expires_at is None, g.expires_at or GRANTED, g.id) for g in (a.grant for a in used)]
    assert order == sorted(order)
    assert all(a.amount_cents == a.grant.remaining_cents for a in used[:-1])
    skipped = [g for g in usable if g not in [a.grant for a in used]]
    if skipped:
        assert sum(a.amount_cents for a in used) == total


def test_a_grant_serves_invoices_of_periods_that_end_by_its_expiry():
    ends_with_november = grant("a", 100, datetime(2026, 12, 1, tzinfo=UTC))
    mid_november = grant("b", 100, datetime(2026, 11, 15, tzinfo=UTC))
    assert ends_with_november.usable_for(NOV) and not ends_with_november.usable_for(NOV.next())
    assert not mid_november.usable_for(NOV) and mid_november.usable_for(NOV.previous())
    assert grant("c", 100, None).usable_for(Period(2040, 1))
    assert not grant("d", 0, None).usable_for(NOV)
