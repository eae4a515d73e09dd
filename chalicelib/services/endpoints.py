"""Customers' webhook endpoints: registering one (where it may point), listing, deleting, re-enabling."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterable
from datetime import datetime

from ..domain.endpoints import (
    MAX_ENDPOINTS_PER_ORG,
    Delivery,
    EndpointStatus,
    WebhookEndpoint,
    check_url_shape,
    public_address,
)
from ..domain.errors import Conflict, NotFound, ValidationFailed
from ..domain.notifications import SECRET_PREFIX, EventType
from ..storage.endpoints import DeliveryRepository, EndpointRepository


class UnsafeUrl(ValidationFailed, code="unsafe_url"):
    """An endpoint URL we will not post to: refused by its shape, or resolving to an address that is not public."""


def check_url(url: str, local_stage: bool) -> None:
    """Refuse what could reach inside our network (SSRF): outside the local stage, only https to hosts
    whose every address is public. Checked at registration and again before each delivery, since
    a name can be re-pointed after it was accepted."""
    try:
        host, port = check_url_shape(url, allow_plain_http=local_stage)
    except ValidationFailed as error:
        raise UnsafeUrl(error.message, error.details) from error
    if local_stage:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError) as error:
        raise UnsafeUrl(f"the host {host!r} does not resolve") from error
    private = sorted(address for address in addresses if not public_address(str(address)))
    if not addresses or private:
        raise UnsafeUrl("the URL resolves to an address that is not public (private, loopback or link-local)",
                        {"host": host, "addresses": private})


def register_endpoint(org: str, url: str, event_types: Iterable[EventType], now: datetime,
                      local_stage: bool) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret; the secret is shown in this answer and never again."""
    check_url(url, local_stage)
    repo = EndpointRepository()
    if len(repo.of_org(org)) >= MAX_ENDPOINTS_PER_ORG:
        raise Conflict(f"an organisation may have at most {MAX_ENDPOINTS_PER_ORG} webhook endpoints")
    wanted = frozenset(event_types)
    if not wanted:
        raise ValidationFailed("subscribe the endpoint to at least one event type")
    endpoint = WebhookEndpoint(org=org, id=f"we_{secrets.token_hex(12)}", url=url, event_types=wanted,
                               status=EndpointStatus.ENABLED, created_at=now)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    repo.create(endpoint, secret)
    return endpoint, secret


def require_endpoint(org: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = EndpointRepository().get(org, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found for {org}")
    return endpoint


def delete_endpoint(org: str, endpoint_id: str, now: datetime) -> None:
    if not EndpointRepository().delete(org, endpoint_id, now):
        raise NotFound(f"webhook endpoint {endpoint_id} not found for {org}")


def enable_endpoint(org: str, endpoint_id: str) -> WebhookEndpoint:
    """Turn a disabled endpoint back on; events from then on reach it (on-call can replay the gap)."""
    require_endpoint(org, endpoint_id)
    return EndpointRepository().enable(org, endpoint_id)


def list_endpoints(org: str) -> list[WebhookEndpoint]:
    return EndpointRepository().of_org(org)


def delivery_log(org: str, endpoint_id: str, limit: int) -> list[Delivery]:
    """The endpoint's most recent deliveries, newest first; 404 for an endpoint the org does not have."""
    endpoint = require_endpoint(org, endpoint_id)
    return DeliveryRepository().log(org, endpoint.id, limit)
