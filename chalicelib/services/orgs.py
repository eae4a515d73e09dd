"""Organisations' billing profiles, as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime

from ..domain.collection import Collection
from ..domain.errors import NotFound
from ..domain.orgs import OrgProfile
from ..storage.orgs import OrgRepository


def require_profile(org: str) -> OrgProfile:
    profile = OrgRepository().get(org)
    if profile is None:
        raise NotFound(f"organisation {org!r} has no billing profile")
    return profile


def save_profile(org: str, name: str, email: str, currency: str, now: datetime,
                 collection: Collection | None) -> tuple[OrgProfile, bool]:
    """Create or update the profile; True when it was created."""
    return OrgRepository().upsert(org, name, email, currency, now, collection)
