"""API tokens, stored only as a peppered SHA-256 hash with their scopes."""

from __future__ import annotations

from datetime import datetime

from . import keys
from .models import TokenItem


class TokenRepository:
    def __init__(self, pepper: str) -> None:
        self._pepper = pepper

    def scopes(self, token: str) -> frozenset[str] | None:
        try:
            item = TokenItem.get(keys.token_pk(token, self._pepper), keys.TOKEN_SK)
        except TokenItem.DoesNotExist:
            return None
        return frozenset(item.scopes)

    def put(self, token: str, name: str, scopes: set[str], now: datetime) -> None:
        TokenItem(keys.token_pk(token, self._pepper), keys.TOKEN_SK, name=name, scopes=scopes, created_at=now).save()
