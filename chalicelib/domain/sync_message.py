"""The one message the sync queue carries: which invoice to push to Stripe, and since when it waits.

Built and read only here, so the stream handler, the reconciler, the worker and the on-call replay
agree on what a sync message is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from .periods import parse_utc, utc_iso


class MalformedSyncMessage(ValueError):
    """A queue body that is not a sync message (it can never be synced: straight to the DLQ)."""


@dataclass(frozen=True)
class SyncMessage:
    org: str
    invoice_id: str
    requested_at: datetime | None = None  # when the sync was asked for; the finalize→synced lag starts here

    def body(self) -> str:
        requested = utc_iso(self.requested_at) if self.requested_at else None
        return json.dumps({"org": self.org, "invoice_id": self.invoice_id, "requested_at": requested},
                          sort_keys=True)

    @classmethod
    def parse(cls, body: str) -> SyncMessage:
        """Raises `MalformedSyncMessage` unless `body` is a JSON object with string `org` and `invoice_id`
        and, if present, an ISO 8601 `requested_at` with a time zone."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise MalformedSyncMessage("not JSON") from error
        if not isinstance(data, dict):
            raise MalformedSyncMessage("not a JSON object")
        org, invoice_id, requested = data.get("org"), data.get("invoice_id"), data.get("requested_at")
        if not (isinstance(org, str) and org and isinstance(invoice_id, str) and invoice_id):
            raise MalformedSyncMessage("no org and invoice id")
        if requested is None:
            return cls(org, invoice_id)
        try:
            if not isinstance(requested, str):
                raise ValueError("not a string")
            return cls(org, invoice_id, parse_utc(requested))
        except ValueError as error:
            raise MalformedSyncMessage(f"requested_at is not a timestamp: {requested!r}") from error
