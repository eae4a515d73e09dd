"""Usage events as a hostile or careless producer writes them: a valid event to spoil one field of, the bad
values of each field (other scripts' digits, invisible and control characters, numbers JSON parsers read
differently, every timestamp form that is not RFC 3339), and JSON literals json.dumps cannot write. The unit
tests read each through the request parser; the integration tests send them to the service."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def event(org: str, event_id: str, /, **changes: Any) -> dict[str, Any]:
    """A valid egress event at NOW - 1 h; `changes` replace fields, a value of `...` removes one."""
    body: dict[str, Any] = {"id": event_id, "org": org, "app": "web", "meter": "egress", "quantity": "1",
                            "region": "iad", "timestamp": "2026-11-15T11:00:00Z"}
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


class Raw:
    """A JSON literal written as is (json.dumps cannot write 1e400, -0 or a 5,000-digit number)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:  # test ids must be the same in every process (pytest-xdist compares them)
        return f"Raw({self.text[:12]}{'...' if len(self.text) > 12 else ''}, {len(self.text)} characters)"


def dumps(value: Any) -> str:
    raws: dict[str, str] = {}

    def placeholder(item: Any) -> str:
        key = f"__raw_{len(raws)}__"
        raws[key] = str(item) if isinstance(item, Decimal) else item.text
        return key

    text = json.dumps(value, default=placeholder)
    for key, literal in raws.items():
        text = text.replace(f'"{key}"', literal)
    return text


EPOCH = int(datetime(2026, 11, 15, 11, tzinfo=UTC).timestamp())  # the valid event's own time, as a number
OTHER_DIGITS = ["５", "٣", "²", "१२", "𝟓", "٥٠٠", "⑤", "½", "Ⅻ"]

BAD_FIELDS: list[tuple[str, Any]] = [
    *[("quantity", digits) for digits in OTHER_DIGITS],
    *[("quantity", value) for value in [
        "5\n", " 5", "5 ", "+5", "1_000", "0x10", "1e3", "1E3", ".5", "5.", "", "NaN", "nan", "sNaN", "-sNaN",
        "Infinity", "-Infinity", "inf", "0", "-0", "-0.0", "-1", "1" + "0" * 5000, "0." + "0" * 5000 + "1",
        "1,5", "1.5.5", "\u00a05", "5\x00", True, False, None, [], {}, [5], {"value": 5}]],
    *[("quantity", Raw(literal)) for literal in [
        "1e400", "-0", "-0.0", "1e-400", "1" + "0" * 5000, "0.0000000001", "-5", "0", "1E10", "1000000000.5",
        "100000000000000000000000000000000000000000000000000000000"]],
    *[("timestamp", value) for value in [
        EPOCH, EPOCH * 1000, str(EPOCH), str(EPOCH * 1000), "2026-11-15 11:00:00Z", "2026-11-15T11:00:00",
        "2026-11-15T11:00:00+0000", "2026-11-15T11:00Z", "2026-11-15", "2026-W46-7T11:00:00Z",
        "2026-319T11:00:00Z", "２０２６-11-15T11:00:00Z", "2026-11-15T11:00:00Z\n", " 2026-11-15T11:00:00Z",
        "2026-11-15T11:00:00.Z", "2026-11-15T11:00:00,5Z", "2026-11-15T11:00:60Z", "2026-11-15T24:00:00Z",
        "2026-02-30T11:00:00Z", "0000-11-15T11:00:00Z", "2026-11-15T11:00:00+24:00", "2026-11-15T11:00:00+05",
        "2026-11-15T11:00:00.1234567890Z", "2026-11-15T11:00:00 UTC", "Sun, 15 Nov 2026 11:00:00 GMT",
        "2026-11-15T11:00:00\u200bZ", "2026-11-15T11:00:00Z\x00", "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00", True, None, [], {}]],
    *[("timestamp", Raw(literal)) for literal in [str(EPOCH), f"{EPOCH}.5", str(EPOCH * 1000), "1e400"]],
    *[(field, value) for field in ("id", "app") for value in [
        "evt\n", "evt\x00", "e\u202evt", "e\u200bvt", "\u200bevt", "еvt", "evt\r", "e v t", "evt#EVT", "",
        "e\ud800", "x" * 101, "evt\u0301", "٣", 5, None, [], {}]],
    *[("org", value) for value in ["acme\n", "acme\x00", "ac\u202eme", "acme\u200b", "ACME", "аcme", 5, []]],
    *[("meter", value) for value in ["egress\n", "egress\x00", "egr\u200bess", "égress", 5, None, []]],
    *[("region", value) for value in ["iad\n", "iad\x00", "i\u200bad", "ｉａｄ", 5, [], {}]],
    *[("attributes", value) for value in [
        [], "preset", 5, {"note": "\x00"}, {"note": "a\x1b[31mb"}, {"note": "a\u202eb"}, {"note": "a\u200bb"},
        {"note": "\ufeff"}, {"note": "\ud800"}, {"note": "a\u2028b"}, {"note": ["x"]}, {"note": {"x": "y"}},
        {"note": 5}, {"no\u200bte": "x"}, {"note\n": "x"}, {"": "x"}, {"note": "x" * 101}]],
    ("colour", "blue"),
]
