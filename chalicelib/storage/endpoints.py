"""Webhook endpoints of an org, and each endpoint's delivery log."""

from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.exceptions import PutError
from pynamodb.expressions.update import Action

from ..domain.endpoints import Delivery, DeliveryStatus, EndpointStatus, WebhookEndpoint
from ..domain.errors import Conflict
from ..domain.notifications import EventType
from ..failures import condition_failed
from . import keys
from .items import get_or_none, update_if
from .notice_models import DeliveryItem, EndpointItem

DELIVERY_LOG_RETENTION = timedelta(days=35)



def _endpoint(item: EndpointItem) -> WebhookEndpoint:
    return WebhookEndpoint(
        org=item.org, id=item.endpoint_id, url=item.url,
        event_types=frozenset(EventType(t) for t in item.event_types), status=EndpointStatus(item.status),
        created_at=item.created_at, failing_since=item.failing_since, last_success_at=item.last_success_at,
        disabled_reason=item.disabled_reason,
    )


def _delivery(item: DeliveryItem) -> Delivery:
    return Delivery(
        org=item.org, endpoint_id=item.endpoint_id, event_id=item.event_id, event_type=item.event_type,
        event_created=item.event_created, status=DeliveryStatus(item.status), attempts=item.attempts,
        first_attempt_at=item.first_attempt_at, last_attempt_at=item.last_attempt_at,
        last_status_code=item.last_status_code, last_error=item.last_error, last_latency_ms=item.last_latency_ms,
        delivered_at=item.delivered_at,
    )


def created_key(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


class EndpointRepository:
    def create(self, endpoint: WebhookEndpoint, secret: str) -> None:
        item = EndpointItem(
            keys.org_pk(endpoint.org), keys.endpoint_sk(endpoint.id), org=endpoint.org, endpoint_id=endpoint.id,
            url=endpoint.url, event_types={t.value for t in endpoint.event_types}, secret=secret,
            status=endpoint.status.value, created_at=endpoint.created_at,
        )
        try:
            item.save(condition=EndpointItem.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                raise Conflict("an endpoint with this id exists") from error
            raise

    def of_org(self, org: str) -> list[WebhookEndpoint]:
        query = EndpointItem.query(keys.org_pk(org), EndpointItem.sk.startswith(keys.ENDPOINT_SK_PREFIX),
                                   consistent_read=True)
        found = [_endpoint(item) for item in query if item.status != EndpointStatus.DELETED.value]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def get(self, org: str, endpoint_id: str) -> WebhookEndpoint | None:
        found = self.get_with_secret(org, endpoint_id)
        return found[0] if found else None

    def get_with_secret(self, org: str, endpoint_id: str) -> tuple[WebhookEndpoint, str] | None:
        """The endpoint and its signing secret: for the delivery worker only, never for a response."""
        item = get_or_none(EndpointItem, keys.org_pk(org), keys.endpoint_sk(endpoint_id))
        if item is None or item.status == EndpointStatus.DELETED.value or item.secret is None:
            return None
        return _endpoint(item), item.secret

    def delete(self, org: str, endpoint_id: str, now: datetime) -> bool:
        """Mark it deleted and drop its secret (the API deletes no items); TTL removes it later."""
        return update_if(
            EndpointItem(keys.org_pk(org), keys.endpoint_sk(endpoint_id)),
            actions=[EndpointItem.status.set(EndpointStatus.DELETED.value), EndpointItem.secret.remove(),
                     EndpointItem.expires_at.set(int((now + DELIVERY_LOG_RETENTION).timestamp()))],
            condition=EndpointItem.pk.exists() & (EndpointItem.status != EndpointStatus.DELETED.value),
        )

    def mark_success(self, org: str, endpoint_id: str, now: datetime) -> None:
        self._update(org, endpoint_id, [EndpointItem.last_success_at.set(now), EndpointItem.failing_since.remove()])

    def mark_failure(self, org: str, endpoint_id: str, now: datetime) -> datetime | None:
        """Start the failing streak (if none runs); returns when it started."""
        item = self._update(org, endpoint_id, [EndpointItem.failing_since.set(EndpointItem.failing_since | now)])
        return item.failing_since if item else None

    def disable(self, org: str, endpoint_id: str, now: datetime, reason: str, failing_before: datetime) -> bool:
        """Disable an endpoint still enabled and failing since before `failing_before`; True if this call did."""
        return update_if(
            EndpointItem(keys.org_pk(org), keys.endpoint_sk(endpoint_id)),
            actions=[EndpointItem.status.set(EndpointStatus.DISABLED.value), EndpointItem.disabled_at.set(now),
                     EndpointItem.disabled_reason.set(reason[:500])],
            condition=(EndpointItem.status == EndpointStatus.ENABLED.value)
            & (EndpointItem.failing_since <= failing_before),
        )

    def enable(self, org: str, endpoint_id: str) -> WebhookEndpoint:
        item = self._update(org, endpoint_id, [
            EndpointItem.status.set(EndpointStatus.ENABLED.value), EndpointItem.disabled_at.remove(),
            EndpointItem.disabled_reason.remove(), EndpointItem.failing_since.remove(),
        ])
        if item is None:
            raise Conflict(f"endpoint {endpoint_id} does not exist")
        return _endpoint(item)

    @staticmethod
    def _update(org: str, endpoint_id: str, actions: list[Action]) -> EndpointItem | None:
        record = EndpointItem(keys.org_pk(org), keys.endpoint_sk(endpoint_id))
        updated = update_if(record, actions, condition=EndpointItem.pk.exists()
                            & (EndpointItem.status != EndpointStatus.DELETED.value))
        return record if updated else None  # None: deleted meanwhile


class DeliveryRepository:
    def get(self, org: str, endpoint_id: str, event_created: datetime, event_id: str) -> Delivery | None:
        item = get_or_none(DeliveryItem, keys.deliveries_pk(org, endpoint_id),
                           keys.delivery_sk(created_key(event_created), event_id))
        return _delivery(item) if item is not None else None

    def record(self, org: str, endpoint_id: str, event_id: str, event_type: str, event_created: datetime,
               status: DeliveryStatus, now: datetime, *, attempted: bool, status_code: int | None = None,
               error: str | None = None, latency_ms: int | None = None) -> Delivery:
        """Log one attempt (or a skip) of delivering the event to the endpoint."""
        record = DeliveryItem(keys.deliveries_pk(org, endpoint_id), keys.delivery_sk(created_key(event_created),
                                                                                     event_id))
        actions: list[Action] = [
            DeliveryItem.org.set(org), DeliveryItem.endpoint_id.set(endpoint_id), DeliveryItem.event_id.set(event_id),
            DeliveryItem.event_type.set(event_type), DeliveryItem.event_created.set(event_created),
            DeliveryItem.status.set(status.value), DeliveryItem.last_attempt_at.set(now),
            DeliveryItem.first_attempt_at.set(DeliveryItem.first_attempt_at | now),
            DeliveryItem.attempts.add(1 if attempted else 0),
            DeliveryItem.expires_at.set(int((now + DELIVERY_LOG_RETENTION).timestamp())),
            DeliveryItem.last_status_code.set(status_code) if status_code is not None
            else DeliveryItem.last_status_code.remove(),
            DeliveryItem.last_error.set(error[:500]) if error else DeliveryItem.last_error.remove(),
        ]
        if latency_ms is not None:
            actions.append(DeliveryItem.last_latency_ms.set(latency_ms))
        if status is DeliveryStatus.DELIVERED:
            actions.append(DeliveryItem.delivered_at.set(now))
        record.update(actions=actions)
        return _delivery(record)

    def log(self, org: str, endpoint_id: str, limit: int = 50) -> list[Delivery]:
        """The endpoint's most recent deliveries, newest first."""
        query = DeliveryItem.query(keys.deliveries_pk(org, endpoint_id), scan_index_forward=False, limit=limit)
        return [_delivery(item) for item in query]
