"""Process-wide wiring: bind the table once, seed development tokens where asked."""

from __future__ import annotations

import os

from ..clock import now
from ..config import Settings, require_pepper
from ..domain.tokens import TokenLookup
from ..storage.models import bind
from ..storage.tokens import TokenRepository

DEV_ADMIN_TOKEN_DEFAULT = "dev-admin-token"
DEV_USAGE_TOKEN_DEFAULT = "dev-usage-token"


def bind_storage(settings: Settings) -> None:
    bind(settings.table_name, settings.dynamodb_endpoint, settings.region)


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
