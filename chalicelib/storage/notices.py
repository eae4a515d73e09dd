"""Customer events, each stored once under its derived id; storing one is what publishes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

from pynamodb.exceptions import PutError

from ..domain.notifications import CustomerEvent, EventType
from ..failures import condition_failed
from . import keys
from .items import get_or_none
from .notice_models import NoticeItem

# Long enough for every retry of every delivery (about 3 days) and a DLQ replay after a fortnight.
NOTICE_RETENTION = timedelta(days=35)


def notice_item(event: CustomerEvent) -> NoticeItem:
    expires = event.created + NOTICE_RETENTION
    return NoticeItem(keys.org_pk(event.org), keys.notice_sk(event.id), org=event.org, event_id=event.id,
                      event_type=event.type.value, created=event.created, data=json.dumps(event.data, sort_keys=True),
                      expires_at=int(expires.timestamp()))


def event_from_item(item: NoticeItem) -> CustomerEvent:
    return CustomerEvent(item.event_id, EventType(item.event_type), item.org, item.created, json.loads(item.data))


class NoticeRepository:
    def publish(self, event: CustomerEvent) -> bool:
        """Store the event unless it exists; True when this call stored it. The stream delivers it."""
        try:
            notice_item(event).save(condition=NoticeItem.pk.does_not_exist())
            return True
        except PutError as error:
            if condition_failed(error):
                return False
            raise

    def get(self, org: str, event_id: str) -> CustomerEvent | None:
        item = get_or_none(NoticeItem, keys.org_pk(org), keys.notice_sk(event_id))
        return event_from_item(item) if item is not None else None

    def of_org(self, org: str) -> Iterator[CustomerEvent]:
        """Every stored event of the org (a few a month, kept 35 days), in no particular order."""
        for item in NoticeItem.query(keys.org_pk(org), NoticeItem.sk.startswith(keys.NOTICE_SK_PREFIX)):
            yield event_from_item(item)
