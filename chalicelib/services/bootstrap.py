"""Process-wide wiring: bind the table once, seed development tokens where asked."""

from __future__ import annotations

import os

from ..clock import now
from ..config import Settings, require_pepper, settings
from ..domain.tokens import TokenLookup
from ..storage.models import bind
from ..storage.tokens import TokenRepository

DEV_ADMIN_TOKEN_DEFAULT = "dev-admin-token"
DEV_USAGE_TOKEN_DEFAULT = "dev-usage-token"


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


def seed_dev_tokens(settings: Settings) -> None:
    """Local stack only: store the admin and usage tokens named by DEV_ADMIN_TOKEN / DEV_USAGE_TOKEN."""
    tokens = TokenRepository(settings.token_pepper)
    admin = os.environ.get("DEV_ADMIN_TOKEN", DEV_ADMIN_TOKEN_DEFAULT)
    usage = os.environ.get("DEV_USAGE_TOKEN", DEV_USAGE_TOKEN_DEFAULT)
    tokens.put(admin, "development admin", {"admin"}, now())
    tokens.put(usage, "development usage writer", {"usage:write"}, now())
