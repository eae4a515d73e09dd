"""The prepaid-credit rules (`services/credits.CreditService`) on the in-memory `Credits`, in milliseconds:
idempotent grants, the preview of the open invoice, what a finalize applies or carries over, what a void gives
back or refuses, and the expiry after the grace. The fake is held to the table by
`tests/contract/test_contract_credits.py`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fakes.credits import MemoryCredits
from fakes.transaction import commit

from chalicelib.domain.credits import CreditReason, carryover_grant_id, grant_id_for
from chalicelib.domain.errors import Conflict
from chalicelib.domain.invoice import Invoice, InvoiceStatus
from chalicelib.domain.lines import LineItem, LineKind
from chalicelib.domain.periods import Period
from chalicelib.services.credits import CreditService, applied_line

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
PERIOD = Period(2026, 11)
ORG = "acme"
GRACE = timedelta(hours=72)


@pytest.fixture
def credits() -> MemoryCredits:
    return MemoryCredits()


@pytest.fixture
def service(credits: MemoryCredits) -> CreditService:
    return CreditService(credits)


def _give(service: CreditService, client_id: str, cents: int, expires_at: datetime | None = None) -> str:
    grant, created = service.grant(ORG, client_id, cents, CreditReason.PROMOTION, "welcome", expires_at, NOW)
    assert created
    return grant.id


def _invoice() -> Invoice:
    return Invoice(org=ORG, id="inv_202611", number="ACME-0001", period=PERIOD, status=InvoiceStatus.FINALIZING,
                   currency="usd", created_at=NOW, updated_at=NOW)


def _charge(cents: int) -> LineItem:
    """A fixed line of `cents` (a credit line's shape, as a one-off charge)."""
    from chalicelib.domain.credits import Grant

    shape = applied_line(Grant("gr_x", ORG, 1, 1, CreditReason.GOODWILL, "x", NOW, None, None), 1, PERIOD)
    return replace(shape, id=f"charge-{cents}", kind=LineKind.ONE_OFF if cents >= 0 else LineKind.CREDIT,
                   resource=None, amount_cents=cents)


def test_a_grant_is_idempotent_by_the_client_id_and_a_different_one_is_a_conflict(service, credits):
    grant_id = _give(service, "promo-1", 5000)
    again, created = service.grant(ORG, "promo-1", 5000, CreditReason.PROMOTION, "welcome", None, NOW)
    assert (again.id, created) == (grant_id, False)
    with pytest.raises(Conflict):
        service.grant(ORG, "promo-1", 6000, CreditReason.PROMOTION, "welcome", None, NOW)
    assert credits.statement(ORG).balance.granted_cents == 5000


def test_the_preview_applies_only_grants_usable_for_the_period(service):
    _give(service, "ends-before-the-period-ends", 1000, PERIOD.end - timedelta(seconds=1))
    _give(service, "open-ended", 3000)
    preview = service.preview(ORG, PERIOD, 2500)
    assert (preview.balance_cents, preview.would_apply_cents) == (4000, 2500)
    assert (preview.balance_after_cents, preview.amount_due_after_cents) == (1500, 0)


def test_finalize_applies_credit_soonest_expiry_first_up_to_the_total(service, credits):
    later = _give(service, "later", 3000, NOW + timedelta(days=90))
    sooner = _give(service, "sooner", 1000, NOW + timedelta(days=40))
    settlement = service.settle(_invoice(), [_charge(2500)], NOW)
    assert [(line.resource, line.amount_cents) for line in settlement.lines] == [(sooner, -1000), (later, -1500)]
    assert settlement.write is not None and [kind for kind, _ in credits.parts] == ["apply"]
    commit(settlement.write)  # as the invoice's transition commits it
    assert {g.id: g.remaining_cents for g in credits.grants(ORG)} == {sooner: 0, later: 1500}


def test_finalize_without_usable_credit_writes_nothing(service, credits):
    settlement = service.settle(_invoice(), [_charge(2500)], NOW)
    assert (settlement.lines, settlement.write, credits.parts) == ([], None, [])


def test_a_negative_total_is_carried_over_to_the_balance(service, credits):
    settlement = service.settle(_invoice(), [_charge(300), _charge(-1000)], NOW)
    [line] = settlement.lines
    assert (line.kind, line.amount_cents) == (LineKind.CARRYOVER, 700)
    commit(settlement.write)
    carried = credits.grant(ORG, carryover_grant_id("inv_202611"))
    assert carried is not None and (carried.amount_cents, carried.reason) == (700, CreditReason.CARRYOVER)


def test_a_void_gives_back_what_the_invoice_used(service, credits):
    grant_id = _give(service, "promo", 1000)
    finalized = service.settle(_invoice(), [_charge(600)], NOW)
    commit(finalized.write)
    release = service.release(_invoice(), [_charge(600), *finalized.lines], NOW)
    assert release is not None
    commit(release)
    assert credits.grant(ORG, grant_id).remaining_cents == 1000
    assert credits.statement(ORG).balance.balance_cents == 1000


def test_a_void_is_refused_once_its_carried_over_credit_was_spent_elsewhere(service, credits):
    carried = service.settle(_invoice(), [_charge(-500)], NOW)
    commit(carried.write)
    later = replace(_invoice(), id="inv_202612", period=PERIOD.next())
    commit(service.settle(later, [_charge(200)], NOW).write)  # the next invoice spends part of it
    with pytest.raises(Conflict):
        service.release(_invoice(), carried.lines, NOW)


def test_a_void_of_an_invoice_without_credit_lines_writes_nothing(service):
    assert service.release(_invoice(), [_charge(600)], NOW) is None


def test_grants_expire_only_after_their_expiry_and_the_grace(service, credits):
    ends = NOW + timedelta(days=10)
    expiring = _give(service, "expiring", 800, ends)
    _give(service, "open-ended", 500)
    assert service.expire_due(ends + GRACE - timedelta(seconds=1), GRACE) == []
    assert service.expire_due(ends + GRACE, GRACE) == [f"{ORG}/{expiring}"]
    assert service.expire_due(ends + GRACE, GRACE) == []  # nothing left to expire
    assert credits.statement(ORG).balance.balance_cents == 500
    assert grant_id_for("expiring") == expiring
