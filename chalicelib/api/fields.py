"""The forms a client may write a field in, checked before pydantic's lax coercions can guess.

Digits are ASCII digits: Python's `int`, `Decimal`, `\\d` and `str.isdigit` also take other scripts'
digits ("５", "٣", "²"), which a producer's bug could send and we would silently bill. Timestamps are
RFC 3339 strings only: a number could be seconds or milliseconds, and a local time has no zone.
Text a person reads (names, descriptions) may be in any script, but not hold control characters,
invisible formatting (bidirectional overrides, zero-width spaces) or unassigned code points, which
make an invoice read differently from what is stored.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from ..domain.periods import RFC3339_PATTERN, parse_rfc3339

MAX_QUANTITY = Decimal("1000000000")
QUANTITY_PLACES = 9
# The one string form, as documented: a whole part of up to 10 digits, a fraction of up to 9.
DECIMAL_STRING = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,9})?")

# Cf (format) minus the two joiners that Persian, Indic scripts and emoji sequences need.
_JOINERS = frozenset({"\u200c", "\u200d"})
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _quantity(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise ValueError("quantity must be a JSON number or a decimal string")
    if isinstance(value, str):
        if not DECIMAL_STRING.fullmatch(value):
            raise ValueError("a quantity string is up to 10 ASCII digits, optionally '.' and up to 9 more")
        return Decimal(value)
    return value


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("timestamp must be an RFC 3339 string such as 2026-11-15T11:00:00Z")
    return parse_rfc3339(value)


def _printable(value: str) -> str:
    for char in value:
        if unicodedata.category(char) in _UNPRINTABLE and char not in _JOINERS:
            raise ValueError(f"U+{ord(char):04X} is a control, invisible or unassigned character")
    return value


Quantity = Annotated[
    Decimal,
    BeforeValidator(_quantity),
    Field(gt=0, le=MAX_QUANTITY, allow_inf_nan=False, decimal_places=QUANTITY_PLACES),
    WithJsonSchema({
        "description": "Greater than 0, at most 1,000,000,000, at most 9 decimal places: a JSON number, or a"
                       " string of ASCII digits with an optional fraction (\"12.5\"). No exponent, sign, spaces"
                       " or other scripts' digits in strings; NaN and Infinity are refused.",
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": int(MAX_QUANTITY)},
            {"type": "string", "pattern": f"^{DECIMAL_STRING.pattern}$"},
        ],
    }),
]

Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema({
        "type": "string", "format": "date-time", "pattern": RFC3339_PATTERN,
        "description": "RFC 3339 with ASCII digits and an explicit offset: 2026-11-15T11:00:00Z,"
                       " 2026-11-15T12:00:00.250+01:00. Up to 9 fraction digits (kept to the microsecond)."
                       " Epoch numbers, local times without an offset and a space instead of T are refused.",
    }),
]


_PRINTABLE = AfterValidator(_printable)
_PRINTABLE_RULE = ("Any script; no control characters, bidirectional or zero-width formatting (ZWJ and ZWNJ"
                   " excepted), line separators, private-use or unassigned code points.")
# Names and descriptions: what a person reads on the invoice, in any script.
DisplayText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), _PRINTABLE,
                        Field(description=f"1 to 200 characters, surrounding spaces removed. {_PRINTABLE_RULE}")]
AttributeValue = Annotated[str, StringConstraints(max_length=100), _PRINTABLE,
                           Field(description=f"Up to 100 characters. {_PRINTABLE_RULE} attributes.memory_mb is"
                                             " ASCII digits only (\"512\").")]

# Plain ASCII so Stripe, mail servers and people read it alike (the HTML form rule, with a dot in the domain).
EMAIL_PATTERN = (r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                 r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN),
                  Field(description="An ASCII address with a dotted domain: billing+acme@example.com.")]
