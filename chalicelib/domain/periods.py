"""Billing periods are calendar months in UTC, written YYYY-MM; and the one form timestamps are read in.

Digits are ASCII digits ([0-9], not \\d, which matches other scripts' digits) and patterns match the whole
text (fullmatch: `$` would also match before a trailing newline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
# RFC 3339 date-time (its "T" and "Z" may be lower case); up to 9 fraction digits, as Go and Java write them.
RFC3339_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                   r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
_RFC3339 = re.compile(r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
                      r"(?:\.(?P<fraction>[0-9]{1,9}))?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})")


@dataclass(frozen=True, order=True)
class Period:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.fullmatch(text)
        if not match:
            raise ValueError(f"period must be YYYY-MM, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> Period:
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def compact(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive end: the first instant of the next period."""
        return self.next().start

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def months_until(self, other: Period) -> int:
        return (other.year - self.year) * 12 + other.month - self.month


def utc_iso(moment: datetime) -> str:
    """One timestamp format everywhere: ISO 8601, UTC, microseconds, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp must carry a timezone")
    return moment.astimezone(UTC)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp with an explicit offset; fractions beyond microseconds are dropped (never rounded
    up, which could carry an event into the next second, day or billing period)."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError("timestamp must be RFC 3339 with an offset, such as 2026-11-15T11:00:00Z")
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{offset}")
        moment.astimezone(UTC)  # 9999-12-31T23:00:00-05:00 is a valid text but no UTC time
    except (ValueError, OverflowError) as error:  # 2026-02-30, 24:00:00, a leap second, year 0, offset ≥ 24 h
        raise ValueError("timestamp is not a real date and time") from error
    return moment
