"""Counts of the requests the emulator received.

Every API request is counted, whatever its outcome (401, 429, injected
failures and replays included), because that is what a client's request
budget against Stripe is spent on. Counts are kept in total, by endpoint
pattern, by HTTP status and by the invoice a request concerned, so that a
benchmark can report "Stripe requests per invoice".
"""

from __future__ import annotations

import collections
import threading
from typing import Any

LOG_SIZE = 2000


class RequestMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._total = 0
            self._by_endpoint: dict[str, int] = collections.Counter()
            self._by_status: dict[str, int] = collections.Counter()
            self._by_invoice: dict[str, int] = collections.Counter()
            self._by_invoice_endpoint: dict[str, dict[str, int]] = collections.defaultdict(
                collections.Counter)
            self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=LOG_SIZE)

    def record(self, entry: dict[str, Any]) -> None:
        """Count one finished request described by a request-log entry."""
        endpoint: str = entry["endpoint"]
        invoice: str | None = entry.get("invoice")
        status = "lost" if entry.get("lost") else str(entry["status"])
        with self._lock:
            self._total += 1
            self._by_endpoint[endpoint] += 1
            self._by_status[status] += 1
            if invoice:
                self._by_invoice[invoice] += 1
                self._by_invoice_endpoint[invoice][endpoint] += 1
            self._log.append(entry)

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._total,
                "by_endpoint": dict(self._by_endpoint),
                "by_status": dict(self._by_status),
                "by_invoice": dict(self._by_invoice),
                "by_invoice_endpoint": {k: dict(v) for k, v in self._by_invoice_endpoint.items()},
            }

    def log(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._log)
        return entries[-limit:] if limit else entries
