"""One transaction over the in-memory fakes, as DynamoDB's TransactWriteItems gives over the table.

A port's adapter hands the parts of a write another port commits (`services.ports.TransactionPart`): on
DynamoDB a function that adds its operations to a pynamodb `TransactWrite`, here a function that adds its
conditions and writes to a `MemoryTransaction`. `commit` checks every condition against the state as it is,
then applies every write, or none: under one lock that every fake taking part in transactions shares, so no
other write comes between the checks and the writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

TABLE_LOCK = threading.RLock()  # the fakes' one "table": writes that join a transaction hold it


class TransactionCancelled(Exception):
    """A condition failed: nothing was written. `failed` names the parts whose condition failed, so the port
    that commits can say which (the invoice moved, or only something joined to it)."""

    def __init__(self, failed: list[str]) -> None:
        super().__init__(f"transaction cancelled: {', '.join(failed)} changed")
        self.failed = failed


class MemoryTransaction:
    def __init__(self) -> None:
        self._checks: list[tuple[str, Callable[[], bool]]] = []
        self._writes: list[Callable[[], None]] = []

    def check(self, what: str, holds: Callable[[], bool]) -> None:
        """A condition read at commit, before any write: `what` names it in the cancellation."""
        self._checks.append((what, holds))

    def write(self, apply: Callable[[], None]) -> None:
        self._writes.append(apply)

    def commit(self) -> None:
        with TABLE_LOCK:
            failed = [what for what, holds in self._checks if not holds()]
            if failed:
                raise TransactionCancelled(failed)
            for apply in self._writes:
                apply()


def commit(*parts: Callable[[MemoryTransaction], None] | None) -> None:
    """Commit the given parts (None: none) in one transaction, as a port that owns no write of its own would."""
    tx = MemoryTransaction()
    for part in parts:
        if part is not None:
            part(tx)
    tx.commit()
