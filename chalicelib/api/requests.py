"""Reading requests: path ids, query parameters, and the usage batch."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..domain.identifiers import SAFE_PART
from ..services.usage import Rejection, UsageEvent
from .errors import ApiError, validation_details
from .schemas import UsageBatchIn, UsageEventIn

# fullmatch, never match: `$` also matches before a trailing newline, and "acme\n" is not "acme".
_ORG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII digits only: int() would also read "٣" and "１０"
MAX_CURSOR_LENGTH = 400  # cursors this API issues are far shorter; a longer one is not ours


def path_org(org: str) -> str:
    if not _ORG.fullmatch(org):
        raise ApiError(404, "not_found", "no such organisation")
    return org


def path_id(value: str) -> str:
    if not SAFE_PART.fullmatch(value):
        raise ApiError(404, "not_found", "no such invoice")
    return value


def query_int(params: Mapping[str, str] | None, name: str, default: int, low: int, high: int) -> int:
    raw = (params or {}).get(name)
    if raw is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(422, "validation_failed", f"`{name}` must be a whole number from {low} to {high}")
    return int(raw)


def query_cursor(params: Mapping[str, str] | None) -> str | None:
    cursor = (params or {}).get("cursor")
    if cursor is not None and len(cursor) > MAX_CURSOR_LENGTH:
        raise ApiError(422, "validation_failed", "cursor is not one this API issued")
    return cursor


def usage_batch(body: Any) -> list[UsageEvent | Rejection]:
    """Validate the envelope as a whole and each event on its own, so one bad event rejects only itself."""
    batch = UsageBatchIn.model_validate(body)
    items: list[UsageEvent | Rejection] = []
    for raw in batch.events:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        # Echoed only when it is a well-formed id; the index names the event otherwise.
        known_id = raw_id if isinstance(raw_id, str) and SAFE_PART.fullmatch(raw_id) else None
        try:
            event = UsageEventIn.model_validate(raw)
        except ValidationError as error:
            fields = validation_details(error)["fields"]
            problem = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
            items.append(Rejection("invalid_event", problem, known_id))
            continue
        items.append(
            UsageEvent(event.id, event.org, event.app, event.meter, event.quantity, event.region,
                       dict(event.attributes), event.timestamp)
        )
    return items
