"""Organisations' billing profiles."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from ..domain.collection import DEFAULT_COLLECTION, Collection, CollectionMethod
from ..domain.errors import Conflict
from ..domain.orgs import OrgProfile
from . import keys
from .items import get_or_none
from .models import OrgItem


def _collection(item: OrgItem) -> Collection:
    if item.collection_method is None:
        return DEFAULT_COLLECTION
    return Collection(CollectionMethod(item.collection_method), item.days_until_due)


def _profile(item: OrgItem) -> OrgProfile:
    return OrgProfile(
        org=item.org, name=item.name, email=item.email, currency=item.currency,
        created_at=item.created_at, updated_at=item.updated_at, version=item.version,
        stripe_customer_id=item.stripe_customer_id, collection=_collection(item),
    )


class OrgRepository:
    def get(self, org: str) -> OrgProfile | None:
        item = get_or_none(OrgItem, keys.org_pk(org), keys.PROFILE_SK)
        return _profile(item) if item is not None else None

    def get_many(self, orgs: set[str]) -> dict[str, OrgProfile]:
        items = OrgItem.batch_get([(keys.org_pk(org), keys.PROFILE_SK) for org in orgs], consistent_read=True)
        return {item.org: _profile(item) for item in items}

    def upsert(self, org: str, name: str, email: str, currency: str, now: datetime,
               collection: Collection | None = None) -> tuple[OrgProfile, bool]:
        """Create the profile, or update name and email (and the collection, when given).
        The currency is fixed once invoices exist."""
        existing = self.get(org)
        if existing is None:
            item = OrgItem(
                keys.org_pk(org), keys.PROFILE_SK, org=org, name=name, email=email,
                currency=currency, created_at=now, updated_at=now,
            )
            if collection is not None:
                item.collection_method, item.days_until_due = collection.method.value, collection.days_until_due
            try:
                item.save(condition=OrgItem.pk.does_not_exist())
                return _profile(item), True
            except PutError as error:
                raise Conflict("organisation was created concurrently; retry") from error
        if currency != existing.currency:
            raise Conflict("an organisation's currency cannot change", {"currency": existing.currency})
        item = OrgItem(keys.org_pk(org), keys.PROFILE_SK)
        actions: list[Action] = [OrgItem.name.set(name), OrgItem.email.set(email), OrgItem.updated_at.set(now),
                   OrgItem.version.add(1)]
        if collection is not None:
            actions.append(OrgItem.collection_method.set(collection.method.value))
            actions.append(OrgItem.days_until_due.set(collection.days_until_due) if collection.days_until_due
                           else OrgItem.days_until_due.remove())
        try:
            item.update(actions=actions, condition=OrgItem.version == existing.version)
        except UpdateError as error:
            raise Conflict("organisation changed concurrently; retry") from error
        return _profile(item), False

    def set_stripe_customer(self, org: str, customer_id: str) -> None:
        item = OrgItem(keys.org_pk(org), keys.PROFILE_SK)
        item.update(
            actions=[OrgItem.stripe_customer_id.set(customer_id)],
            condition=OrgItem.stripe_customer_id.does_not_exist() | (OrgItem.stripe_customer_id == customer_id),
        )
