"""Process-wide wiring: bind the table once; the token lookup the edge authenticates with."""

from __future__ import annotations

from ..config import Settings, require_pepper, settings
from ..domain.tokens import TokenLookup
from ..storage.models import bind
from ..storage.tokens import TokenRepository

_bound: list[Settings] = []


def bind_storage(settings: Settings) -> None:
    bind(settings.table_name, settings.dynamodb_endpoint, settings.region)


def ready() -> Settings:
    """The settings, with the table bound to them once per process (Lambda cold start, local server)."""
    current = settings()
    if not _bound or _bound[0] is not current:  # settings were re-read (local stack, tests): bind again
        bind_storage(current)
        _bound[:] = [current]
    return current


def token_lookup(settings: Settings) -> TokenLookup:
    """The token table, keyed by the pepper (refused when it is missing outside the local stage)."""
    return TokenRepository(require_pepper(settings))
