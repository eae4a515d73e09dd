"""Bearer tokens with scopes: `admin`, `usage:write`, and `org:{org}:read` for one org."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..storage.tokens import TokenRepository
from .errors import forbidden, unauthorized

ADMIN = "admin"
USAGE_WRITE = "usage:write"
MAX_TOKEN_LENGTH = 200


def org_read(org: str) -> str:
    return f"org:{org}:read"


@dataclass(frozen=True)
class Principal:
    scopes: frozenset[str]

    def require(self, *any_of: str) -> None:
        """Admin may do anything; otherwise one of the listed scopes is needed."""
        if ADMIN in self.scopes or any(scope in self.scopes for scope in any_of):
            return
        raise forbidden()


def authenticate(headers: Mapping[str, str], tokens: TokenRepository) -> Principal:
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise unauthorized()
    scopes = tokens.scopes(token)
    if scopes is None:
        raise unauthorized("the bearer token is not valid")
    return Principal(scopes)
