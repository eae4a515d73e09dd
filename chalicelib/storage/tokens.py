"""API tokens, stored only as an HMAC of the token keyed by the pepper, with scopes and a label.

A token is shown once, when it is issued; afterwards only its public id (the HMAC's first
hex digits), label, scopes, dates and last use can be read back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta

from pynamodb.exceptions import PutError, UpdateError

from ..domain.tokens import TokenInfo
from ..failures import condition_failed
from . import keys
from .models import TokenItem

TOKEN_PREFIX = "ivk_"  # lets secret scanners and people recognise one
# Recording every use would cost a write per request; this resolution is enough to tell
# a token in use from a forgotten one.
LAST_USE_RESOLUTION = timedelta(minutes=15)


def _info(item: TokenItem) -> TokenInfo:
    return TokenInfo(
        token_id=keys.token_id(item.pk.removeprefix("TOKEN#")), label=item.name, scopes=frozenset(item.scopes),
        created_at=item.created_at, valid_until=item.valid_until, last_used_at=item.last_used_at,
    )


def _item(pk: str, label: str, scopes: set[str], now: datetime, valid_until: datetime | None) -> TokenItem:
    return TokenItem(pk, keys.TOKEN_SK, name=label, scopes=scopes, created_at=now, valid_until=valid_until,
                     gsi1pk=keys.TOKENS_GSI_PK, gsi1sk=keys.token_id(pk.removeprefix("TOKEN#")))


class TokenRepository:
    def __init__(self, pepper: str) -> None:
        self._pepper = pepper

    def _pk(self, token: str) -> str:
        return keys.token_pk(keys.token_digest(token, self._pepper))

    def find(self, token: str) -> TokenInfo | None:
        try:
            return _info(TokenItem.get(self._pk(token), keys.TOKEN_SK))
        except TokenItem.DoesNotExist:
            return None

    def scopes(self, token: str) -> frozenset[str] | None:
        found = self.find(token)
        return found.scopes if found else None

    def put(self, token: str, name: str, scopes: set[str], now: datetime,
            valid_until: datetime | None = None) -> TokenInfo:
        """Store a token the caller chose (the local stack's and tests' fixed ones); replaces the same value."""
        item = _item(self._pk(token), name, scopes, now, valid_until)
        item.save()
        return _info(item)

    def issue(self, label: str, scopes: set[str], now: datetime,
              valid_until: datetime | None = None) -> tuple[str, TokenInfo]:
        """A new random token: returned once, here; only its HMAC is stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        item = _item(self._pk(token), label, scopes, now, valid_until)
        try:
            item.save(condition=TokenItem.pk.does_not_exist())  # 256 random bits never collide; never overwrite
        except PutError as error:
            if condition_failed(error):
                raise RuntimeError("a freshly drawn token already exists; draw again") from error
            raise
        return token, _info(item)

    def all(self) -> Iterator[TokenInfo]:
        for item in TokenItem.token_index.query(keys.TOKENS_GSI_PK):
            yield _info(item)

    def matching(self, id_prefix: str) -> list[TokenInfo]:
        """Tokens whose public id starts with `id_prefix` (people paste a prefix)."""
        if not id_prefix:
            return []
        query = TokenItem.token_index.query(keys.TOKENS_GSI_PK, TokenItem.gsi1sk.startswith(id_prefix))
        return [_info(item) for item in query]

    def revoke(self, token_id: str) -> bool:
        """Delete the token whose public id is `token_id`; False when there is none."""
        for item in TokenItem.token_index.query(keys.TOKENS_GSI_PK, TokenItem.gsi1sk == token_id):
            TokenItem(item.pk, item.sk).delete()
            return True
        return False

    def note_use(self, token: str, info: TokenInfo, now: datetime) -> None:
        """Record the use at LAST_USE_RESOLUTION: at most one write per token and period, never recreating
        a token revoked meanwhile."""
        if info.last_used_at is not None and now - info.last_used_at < LAST_USE_RESOLUTION:
            return
        condition = TokenItem.pk.exists() & (
            TokenItem.last_used_at.does_not_exist() | (TokenItem.last_used_at < now - LAST_USE_RESOLUTION))
        try:
            TokenItem(self._pk(token), keys.TOKEN_SK).update(actions=[TokenItem.last_used_at.set(now)],
                                                              condition=condition)
        except UpdateError as error:
            if not condition_failed(error):
                raise
