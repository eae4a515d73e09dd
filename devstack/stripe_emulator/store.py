"""In-memory account state: objects, ids, list pagination and metadata rules.

One re-entrant lock guards all objects; API handlers hold it for the whole
mutation so each request is applied atomically, which is what Stripe's
per-object locking looks like from a single client's point of view.
"""

from __future__ import annotations

import contextvars
import decimal
import secrets
import string
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import StripeError, invalid_request, no_such, param_error

_ID_ALPHABET = string.ascii_letters + string.digits

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 10

# The request being served (id and idempotency key), copied into events the
# way Stripe fills ``event.request``.
current_request: contextvars.ContextVar[dict[str, Any] | None] = (
    contextvars.ContextVar("current_request", default=None)
)

EventSink = Callable[[dict[str, Any]], None]


def public(value: Any) -> Any:
    """A deep copy of an object as the API shows it: internal ``_`` fields
    left out and decimals as strings, as Stripe encodes ``*_decimal``."""
    if isinstance(value, dict):
        # Metadata is user data: its keys may start with "_" too.
        return {k: dict(v) if k == "metadata" and isinstance(v, dict) else public(v)
                for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [public(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def new_id(prefix: str) -> str:
    """An id shaped like Stripe's: ``in_`` followed by 24 alphanumerics."""
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


class Store:
    def __init__(self, *, max_invoice_lines: int = 250,
                 clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.max_invoice_lines = max_invoice_lines
        self.clock = clock
        self.api_version: str | None = None
        self.event_sink: EventSink | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.customers: dict[str, dict[str, Any]] = {}
            self.invoices: dict[str, dict[str, Any]] = {}
            self.invoice_items: dict[str, dict[str, Any]] = {}
            # Invoice id -> ids of its invoice items, in the order added; the
            # invoice's lines are these items as ``line_item`` objects.
            self.invoice_lines: dict[str, list[str]] = {}
            self.events: list[dict[str, Any]] = []
            # Collection (payments.py): outcome of a charge by customer id or email.
            self.payment_outcomes: dict[str, str] = {}
            self.default_payment_outcome = "succeeds"
            self._seq = 0

    def now(self) -> int:
        return int(self.clock())

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- events --------------------------------------------------------------
    def emit(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        request = current_request.get() or {"id": None, "idempotency_key": None}
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.now(),
            "data": {"object": public(obj)},
            "livemode": False,
            "pending_webhooks": 0,
            "request": dict(request),
            "type": event_type,
        }
        self.events.append(event)
        if self.event_sink is not None:
            self.event_sink(event)
        return event


def page(items: list[dict[str, Any]], params: dict[str, Any], url: str,
         kind: str) -> dict[str, Any]:
    """Cursor pagination as Stripe lists do it.

    ``items`` is already in list order (newest first for most resources).
    ``starting_after`` returns the page after the cursor, ``ending_before``
    the ``limit`` items right before it; ``has_more`` tells whether more
    exist in the direction of travel.
    """
    limit = params.get("limit", DEFAULT_LIST_LIMIT)
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise param_error(
            f"Invalid limit: must be between 1 and {MAX_LIST_LIMIT}",
            code="parameter_invalid_integer", param="limit",
        )
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise param_error(
            "You may only specify one of these parameters: ending_before, "
            "starting_after.", code="parameters_exclusive", param="ending_before",
        )
    ids = [item["id"] for item in items]
    if after or before:
        cursor = after or before
        if cursor not in ids:
            raise invalid_request(
                f"No such {kind}: '{cursor}'", code="resource_missing",
                param="starting_after" if after else "ending_before",
            )
        index = ids.index(cursor)
        if after:
            window = items[index + 1:]
            data, has_more = window[:limit], len(window) > limit
        else:
            window = items[:index]
            data, has_more = window[-limit:], len(window) > limit
    else:
        data, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def created_matches(created: int, flt: Any) -> bool:
    """Stripe's ``created`` list filter: an exact int or gt/gte/lt/lte."""
    if flt is None:
        return True
    if isinstance(flt, int):
        return created == flt
    checks = {"gt": created.__gt__, "gte": created.__ge__,
              "lt": created.__lt__, "lte": created.__le__}
    return all(checks[op](value) for op, value in flt.items())


def merge_metadata(current: dict[str, str], update: Any,
                   param: str = "metadata") -> dict[str, str]:
    """Apply a metadata update and enforce Stripe's limits on the result.

    An empty string for a key removes it; ``metadata=""`` removes all keys.
    At most 50 keys, keys up to 40 characters, values up to 500.
    """
    if update is None:
        return current
    merged: dict[str, str] = {} if update == "" else dict(current)
    if isinstance(update, dict):
        for key, value in update.items():
            if len(key) > MAX_METADATA_KEY_LENGTH:
                raise param_error(
                    f"Metadata keys can have at most {MAX_METADATA_KEY_LENGTH} "
                    f"characters. The key '{key}' has {len(key)}.",
                    code=None, param=f"{param}[{key}]",
                )
            if len(value) > MAX_METADATA_VALUE_LENGTH:
                raise param_error(
                    f"Metadata values can have at most {MAX_METADATA_VALUE_LENGTH}"
                    f" characters. The value of '{key}' has {len(value)}.",
                    code=None, param=f"{param}[{key}]",
                )
            if value == "":
                merged.pop(key, None)
            else:
                merged[key] = value
    if len(merged) > MAX_METADATA_KEYS:
        raise param_error(
            f"Invalid metadata: metadata can have at most {MAX_METADATA_KEYS} "
            f"keys, but would have {len(merged)}.", code=None, param=param,
        )
    return merged


def live(objects: dict[str, dict[str, Any]], kind: str, object_id: str, *, param: str = "id",
         status: int = 404) -> dict[str, Any]:
    """The object unless it is missing or deleted; else Stripe's "No such <kind>" error."""
    found = objects.get(object_id)
    if found is None or found.get("deleted"):
        raise no_such(kind, object_id, param=param, status=status)
    return found


def require(obj: dict[str, Any] | None, error: StripeError) -> dict[str, Any]:
    if obj is None:
        raise error
    return obj
