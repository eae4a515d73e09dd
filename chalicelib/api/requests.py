"""Reading requests: path ids, query parameters, and the usage batch."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..services.usage import Rejection, UsageEvent
from .errors import ApiError, validation_details
from .schemas import UsageBatchIn, UsageEventIn

_ORG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def path_org(org: str) -> str:
    if not _ORG.match(org):
        raise ApiError(404, "not_found", "no such organisation")
    return org


def path_id(value: str) -> str:
    if not _ID.match(value):
        raise ApiError(404, "not_found", "no such invoice")
    return value


def query_int(params: Mapping[str, str] | None, name: str, default: int, low: int, high: int) -> int:
    raw = (params or {}).get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ApiError(422, "validation_failed", f"`{name}` must be a whole number from {low} to {high}")
    return int(raw)


def usage_batch(body: Any) -> list[UsageEvent | Rejection]:
    """Validate the envelope as a whole and each event on its own, so one bad event rejects only itself."""
    batch = UsageBatchIn.model_validate(body)
    items: list[UsageEvent | Rejection] = []
    for raw in batch.events:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            event = UsageEventIn.model_validate(raw)
        except ValidationError as error:
            fields = validation_details(error)["fields"]
            problem = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
            items.append(Rejection("invalid_event", problem, raw_id if isinstance(raw_id, str) else None))
            continue
        items.append(
            UsageEvent(event.id, event.org, event.app, event.meter, event.quantity, event.region,
                       dict(event.attributes), event.timestamp)
        )
    return items
