"""The local stack's development tokens: an admin token and a usage writer's, stored hashed like any
other, from DEV_ADMIN_TOKEN / DEV_USAGE_TOKEN (defaults below). Production never seeds tokens."""

from __future__ import annotations

import os

DEFAULT_ADMIN_TOKEN = "dev-admin-token"
DEFAULT_USAGE_TOKEN = "dev-usage-token"


def prepare_app() -> None:
    """Bind the app's models to the table the environment names, and store the development tokens in it."""
    from chalicelib.clock import now
    from chalicelib.config import reload_settings
    from chalicelib.services.bootstrap import bind_storage
    from chalicelib.storage.tokens import TokenRepository

    settings = reload_settings()
    bind_storage(settings)
    tokens = TokenRepository(settings.token_pepper)
    tokens.put(os.environ.get("DEV_ADMIN_TOKEN", DEFAULT_ADMIN_TOKEN), "development admin", {"admin"}, now())
    tokens.put(os.environ.get("DEV_USAGE_TOKEN", DEFAULT_USAGE_TOKEN), "development usage writer",
               {"usage:write"}, now())
