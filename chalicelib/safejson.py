"""JSON from outside (API bodies, Stripe webhooks): one plain UTF-8 document, read exactly.

- Numbers are exact: fractions become Decimal, and integers too long for `int()` (Python refuses more than
  4,300 digits) become Decimal, so one absurd number is that field's problem, not the document's.
- NaN, Infinity, duplicate keys and byte order marks are refused: other parsers read them differently,
  and a document two parsers disagree on is not one we can bill from.
- Depth is checked before parsing: the standard parser recurses, and about a thousand levels of
  brackets would end in RecursionError (a 500) instead of a clear refusal.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

MAX_DEPTH = 32
_LONG_INT_DIGITS = 100
# A JSON string (escapes included), so brackets inside strings are not counted as nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class UnreadableJson(ValueError):
    """The text is not one plain JSON document we read; the message says why, for the client."""


def _refuse_constant(name: str) -> Any:
    raise UnreadableJson(f"{name} is not a JSON number")


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= _LONG_INT_DIGITS else Decimal(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise UnreadableJson("an object has the same key twice")
    return document


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest more than `limit` levels (strings are skipped, not parsed)."""
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def loads(raw: bytes | str) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        raise UnreadableJson("the body is not UTF-8") from error
    if too_deep(text):
        raise UnreadableJson(f"the JSON is nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_float=Decimal, parse_int=_integer, parse_constant=_refuse_constant,
                          object_pairs_hook=_unique_keys)
    except UnreadableJson:
        raise
    except ValueError as error:  # json.JSONDecodeError, and a BOM ("Unexpected UTF-8 BOM")
        raise UnreadableJson("the body is not valid JSON") from error
