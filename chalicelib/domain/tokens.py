"""What a stored API token says about its holder (the token itself is never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    label: str
    scopes: frozenset[str]
    created_at: datetime
    valid_until: datetime | None
    last_used_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.valid_until is not None and now >= self.valid_until


class TokenLookup(Protocol):
    """Where tokens are checked: the token table, or a fake in tests."""

    def find(self, token: str) -> TokenInfo | None: ...

    def note_use(self, token: str, info: TokenInfo, now: datetime) -> None: ...
