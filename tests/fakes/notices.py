"""An in-memory `Notices`: each customer event stored once under its id, read back as a copy (the table's
reads are copies too). tests/contract/test_contract_notices.py holds it to the table.

Storing an event can also be part of another fake's transaction (`storing`): a spend alert is stored with
its event, both or neither, as the table's transaction puts both items.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from chalicelib.domain.notifications import CustomerEvent

from .transaction import TABLE_LOCK, MemoryTransaction, TransactionCancelled, commit


class MemoryNotices:
    def __init__(self) -> None:
        self._events: dict[tuple[str, str], CustomerEvent] = {}

    # -- the port ----------------------------------------------------------------------------------
    def publish(self, event: CustomerEvent) -> bool:
        try:
            commit(self.storing(event))
        except TransactionCancelled:
            return False
        return True

    def get(self, org: str, event_id: str) -> CustomerEvent | None:
        return copy.deepcopy(self._events.get((org, event_id)))

    # -- for other fakes' transactions, and for tests ----------------------------------------------
    def storing(self, event: CustomerEvent) -> Callable[[MemoryTransaction], None]:
        """The event's put, conditioned on no event with its id: a part of a transaction."""
        key, stored = (event.org, event.id), copy.deepcopy(event)

        def part(tx: MemoryTransaction) -> None:
            def store() -> None:
                self._events[key] = stored

            tx.check(f"event {event.id}", lambda: key not in self._events)
            tx.write(store)
        return part

    def of_org(self, org: str) -> list[CustomerEvent]:
        """Every stored event of the org, as `NoticeRepository.of_org` (here in id order)."""
        with TABLE_LOCK:
            stored = sorted(self._events.items())
        return [copy.deepcopy(event) for (owner, _), event in stored if owner == org]
