"""Events we send to customers' webhook endpoints: their types, ids, payload and signature.

An event's id is derived from its cause (the invoice and what happened to it, the threshold
and period crossed), never drawn at random: whoever notices the cause, however many times,
names the same event, so storing it once is a conditional write and receivers dedup by id.

Signatures follow Stripe's scheme, so the same few lines verify both: the header is
`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

SIGNATURE_HEADER = "Invoicing-Signature"
EVENT_ID_HEADER = "Invoicing-Event-Id"
SECRET_PREFIX = "whsec_"
# Redelivery after each failed attempt: about three days in all, then the dead-letter queue.
RETRY_SCHEDULE: tuple[timedelta, ...] = tuple(timedelta(seconds=s) for s in (
    30, 120, 600, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 12 * 3600, 12 * 3600, 12 * 3600, 12 * 3600,
))
# An endpoint that has failed every delivery for this long is disabled; its owner re-enables it.
DISABLE_AFTER = timedelta(days=3)


class EventType(StrEnum):
    INVOICE_FINALIZED = "invoice.finalized"
    INVOICE_SYNCED = "invoice.synced"
    INVOICE_PAYMENT_SUCCEEDED = "invoice.payment_succeeded"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
    INVOICE_SYNC_DELAYED = "invoice.sync_delayed"
    BUDGET_THRESHOLD_CROSSED = "budget.threshold_crossed"


def event_id(*cause: str) -> str:
    return "evt_" + hashlib.sha256("\x1f".join(cause).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CustomerEvent:
    id: str
    type: EventType
    org: str
    created: datetime
    data: dict[str, Any]

    def payload(self) -> str:
        """The exact bytes signed and sent (compact, keys sorted: the same event always reads the same)."""
        body = {"id": self.id, "object": "event", "type": self.type.value, "org": self.org,
                "created": int(self.created.timestamp()), "data": self.data}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


def sign(payload: str, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_delay(attempt: int, schedule: tuple[timedelta, ...] = RETRY_SCHEDULE) -> timedelta | None:
    """How long to wait after failed attempt number `attempt` (1-based); None once the schedule is spent."""
    return schedule[attempt - 1] if 1 <= attempt <= len(schedule) else None
