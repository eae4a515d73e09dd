"""Finance reports from the month rollups."""

from __future__ import annotations

from ..domain.errors import ValidationFailed
from ..domain.periods import Period
from ..storage.rollups import RollupRead, monthly_totals

MAX_MONTHS = 120


def monthly_report(first: str, last: str, org: str | None) -> RollupRead:
    try:
        start, end = Period.parse(first), Period.parse(last)
    except ValueError as error:
        raise ValidationFailed(str(error)) from error
    if end < start:
        raise ValidationFailed("`to` is before `from`")
    if start.months_until(end) >= MAX_MONTHS:
        raise ValidationFailed(f"at most {MAX_MONTHS} months per report")
    return monthly_totals(start, end, org)
