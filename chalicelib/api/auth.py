"""Bearer tokens with scopes.

  admin                  everything
  usage:write            POST /v1/usage for every org: the platform's own collectors
  usage:write:{org}      POST /v1/usage for that org only (one scope per org a producer may write)
  org:{org}:read         read one org's profile, invoices and totals
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..domain.tokens import TokenLookup
from ..services.usage import Rejection, UsageEvent
from .errors import ApiError, forbidden, unauthorized

ADMIN = "admin"
USAGE_WRITE = "usage:write"
USAGE_WRITE_ORG_PREFIX = "usage:write:"
MAX_TOKEN_LENGTH = 200
_ORG = r"[a-z0-9][a-z0-9-]{0,62}"  # the API's organisation ids
SCOPE = re.compile(rf"^(admin|usage:write|usage:write:{_ORG}|org:{_ORG}:read)$")


def org_read(org: str) -> str:
    return f"org:{org}:read"


def usage_write(org: str) -> str:
    return f"{USAGE_WRITE_ORG_PREFIX}{org}"


def invalid_scopes(scopes: set[str]) -> list[str]:
    """The scopes that are not one of the shapes above (checked when a token is issued)."""
    return sorted(scope for scope in scopes if not SCOPE.match(scope))


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class Principal:
    scopes: frozenset[str]
    # Called once the request is authorized: a refused request writes nothing, not even the token's last use.
    record_use: Callable[[], None] = field(default=_nothing, compare=False)

    def require(self, *any_of: str) -> None:
        """Admin may do anything; otherwise one of the listed scopes is needed."""
        if ADMIN in self.scopes or any(scope in self.scopes for scope in any_of):
            self.record_use()
            return
        raise forbidden()

    def may_write_usage(self, org: str) -> bool:
        return bool({ADMIN, USAGE_WRITE, usage_write(org)} & self.scopes)

    def require_usage_writer(self) -> None:
        """May write usage for some org; `only_writable` then decides per event and records the use."""
        if ADMIN in self.scopes or any(s == USAGE_WRITE or s.startswith(USAGE_WRITE_ORG_PREFIX) for s in self.scopes):
            return
        raise forbidden()


def authenticate(headers: Mapping[str, str], tokens: TokenLookup, now: datetime) -> Principal:
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise unauthorized()
    info = tokens.find(token)
    if info is None:
        raise unauthorized("the bearer token is not valid")
    if info.expired(now):
        raise unauthorized("the bearer token has expired")
    return Principal(info.scopes, lambda: tokens.note_use(token, info, now))


def only_writable(principal: Principal, items: list[UsageEvent | Rejection]) -> list[UsageEvent | Rejection]:
    """Events for orgs this token may not write become `forbidden` rejections, before anything is written
    (so no one can claim another org's event ids). A batch with nothing this token may write is a 403."""
    checked: list[UsageEvent | Rejection] = []
    refused: set[str] = set()
    for item in items:
        if isinstance(item, UsageEvent) and not principal.may_write_usage(item.org):
            refused.add(item.org)
            checked.append(Rejection("forbidden", f"this token may not write usage for {item.org!r}", item.id))
        else:
            checked.append(item)
    if refused and not any(isinstance(item, UsageEvent) for item in checked):
        raise ApiError(403, "forbidden", "this token may not write usage for any org in the batch",
                       {"orgs": sorted(refused)})
    principal.record_use()
    return checked
