"""An organisation's billing profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .collection import DEFAULT_COLLECTION, Collection


@dataclass(frozen=True)
class OrgProfile:
    org: str
    name: str
    email: str
    currency: str
    created_at: datetime
    updated_at: datetime
    version: int
    stripe_customer_id: str | None = None
    collection: Collection = DEFAULT_COLLECTION
