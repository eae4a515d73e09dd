"""Invoice status transitions live in one table and are enforced."""

import pytest

from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.invoice import InvoiceStatus as S
from chalicelib.domain.invoice import check_transition, invoice_id_for, number_prefix
from chalicelib.domain.periods import Period


@pytest.mark.parametrize("current,target", [
    (S.DRAFT, S.FINALIZING), (S.FINALIZING, S.FINALIZED), (S.FINALIZED, S.PAID), (S.FINALIZED, S.VOID),
    (S.DRAFT, S.VOID), (S.FINALIZED, S.UNCOLLECTIBLE), (S.UNCOLLECTIBLE, S.PAID),
])
def test_allowed(current, target):
    check_transition(current, target)


@pytest.mark.parametrize("current,target", [
    (S.DRAFT, S.FINALIZED), (S.FINALIZED, S.DRAFT), (S.PAID, S.VOID), (S.VOID, S.FINALIZED), (S.DRAFT, S.PAID),
])
def test_refused(current, target):
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


def test_period_arithmetic():
    assert Period(2026, 12).next() == Period(2027, 1)
    assert Period(2027, 1).previous() == Period(2026, 12)
    assert Period.parse("2026-02").months_until(Period.parse("2027-02")) == 12
    with pytest.raises(ValueError):
        Period.parse("2026-13")


def test_ids():
    assert invoice_id_for(Period(2026, 11)) == "inv_202611"
    assert number_prefix("acme-corp") == "ACMECORP"
