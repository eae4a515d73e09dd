"""`GET /v1/orgs/{org}/usage`: reading its query, and its JSON answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..domain.errors import ValidationFailed
from ..domain.periods import utc_iso
from ..domain.usage_series import Granularity, GroupBy, Point, Series, TimeRange, UsageSeries
from .errors import ApiError
from .schemas import money

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class UsageQuery:
    span: TimeRange
    group_by: GroupBy


def usage_query(params: Mapping[str, str] | None) -> UsageQuery:
    params = params or {}
    granularity = _choice(params, "granularity", Granularity, Granularity.DAY)
    group_by = _choice(params, "group_by", GroupBy, GroupBy.TOTAL)
    if "from" not in params or "to" not in params:
        raise ApiError(422, "validation_failed", "`from` and `to` are required (YYYY-MM-DD, or a UTC time for hours)")
    try:
        span = TimeRange(_moment(params["from"], "from"), _moment(params["to"], "to"), granularity)
    except ValidationFailed as error:
        raise ApiError(422, "validation_failed", error.message, error.details) from error
    return UsageQuery(span, group_by)


def _choice(params: Mapping[str, str], name: str, values: Any, default: Any) -> Any:
    raw = params.get(name)
    if raw is None:
        return default
    allowed = [member.value for member in values]
    if raw not in allowed:
        raise ApiError(422, "validation_failed", f"`{name}` must be one of {', '.join(allowed)}",
                       {"allowed": allowed})
    return values(raw)


def _moment(raw: str, name: str) -> datetime:
    try:
        if _DAY.match(raw):
            return datetime.fromisoformat(raw).replace(tzinfo=UTC)
        if _MOMENT.match(raw):
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):  # not a calendar date, or an offset that leaves the calendar
        pass
    raise ApiError(422, "validation_failed", f"`{name}` must be a date (YYYY-MM-DD) or a time with its offset "
                   "(YYYY-MM-DDTHH:MM:SSZ)", {"field": name})


def plain(quantity: Decimal) -> str:
    """A quantity without exponent or trailing zeros: 24, 0.5, 1234.000278."""
    text = format(quantity.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _quantities(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {unit: plain(quantity) for unit, quantity in sorted(values.items())}


def _point(point: Point) -> dict[str, Any]:
    return {"start": utc_iso(point.start), "cost_cents": point.cost_cents, "quantities": _quantities(point.quantities)}


def _series(series: Series, currency: str) -> dict[str, Any]:
    return {"group": series.group, "label": series.label, "cost": money(series.cost_cents, currency),
            "quantities": _quantities(series.quantities), "points": [_point(p) for p in series.points]}


def usage_json(org: str, usage: UsageSeries, currency: str, as_of: datetime) -> dict[str, Any]:
    span = usage.range
    return {
        "org": org,
        "from": utc_iso(span.start),
        "to": utc_iso(span.end),
        "granularity": span.granularity.value,
        "group_by": usage.group_by.value,
        "currency": currency,
        "as_of": utc_iso(as_of),
        "cost": money(usage.cost_cents, currency),
        "totals": [{"start": utc_iso(p.start), "cost_cents": p.cost_cents} for p in usage.totals],
        "series": [_series(s, currency) for s in usage.series],
    }
