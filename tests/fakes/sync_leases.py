"""In-memory `SyncLeases` with the table's guarantees (tests/contract/ holds it to them): one holder at a
time, expiry compared in whole milliseconds as the table stores it, release by the owner only."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class MemoryLeases:
    def __init__(self) -> None:
        self._held: dict[tuple[str, str], tuple[str, int]] = {}  # (org, invoice) → (owner, expires at ms)
        self._lock = threading.Lock()

    def acquire(self, org: str, invoice_id: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        with self._lock:
            held = self._held.get((org, invoice_id))
            if held is not None and held[1] >= _ms(now) and held[0] != owner:
                return False
            self._held[(org, invoice_id)] = (owner, _ms(now + ttl))
            return True

    def release(self, org: str, invoice_id: str, owner: str) -> None:
        with self._lock:
            held = self._held.get((org, invoice_id))
            if held is not None and held[0] == owner:
                del self._held[(org, invoice_id)]

    def holder(self, org: str, invoice_id: str) -> str | None:
        """For tests: who holds the lease, expired or not."""
        held = self._held.get((org, invoice_id))
        return held[0] if held else None
