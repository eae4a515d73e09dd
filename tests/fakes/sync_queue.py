"""A `SyncQueue` that keeps what it is sent, in order, repeats included."""

from __future__ import annotations

from chalicelib.domain.sync_message import SyncMessage


class RecordingSyncQueue:
    def __init__(self) -> None:
        self.sent: list[SyncMessage] = []

    def enqueue_sync(self, messages: list[SyncMessage]) -> None:
        self.sent += messages
