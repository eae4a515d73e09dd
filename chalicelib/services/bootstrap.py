"""Process-wide wiring: bind the table once."""

from __future__ import annotations

from ..config import Settings
from ..storage.models import bind


def bind_storage(settings: Settings) -> None:
    bind(settings.table_name, settings.dynamodb_endpoint, settings.region)
