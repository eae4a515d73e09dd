"""Customers' webhook endpoints, what may be one, and the log of deliveries to them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from .errors import ValidationFailed
from .notifications import EventType

MAX_URL_LENGTH = 2048
MAX_ENDPOINTS_PER_ORG = 16


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"  # failed every delivery for days; nothing is sent until it is re-enabled
    DELETED = "deleted"  # kept (without its secret) until its TTL, so deliveries in flight find it gone


class DeliveryStatus(StrEnum):
    RETRYING = "retrying"  # the last attempt failed; the queue brings it back after the backoff
    DELIVERED = "delivered"  # a 2xx answer
    DEAD = "dead"  # the retry schedule is spent: in the dead-letter queue, replayable by on-call
    SKIPPED = "skipped"  # the endpoint was deleted or disabled before it could be delivered


@dataclass(frozen=True)
class WebhookEndpoint:
    org: str
    id: str
    url: str
    event_types: frozenset[EventType]
    status: EndpointStatus
    created_at: datetime
    failing_since: datetime | None = None
    last_success_at: datetime | None = None
    disabled_reason: str | None = None

    def wants(self, event_type: EventType) -> bool:
        return self.status is EndpointStatus.ENABLED and event_type in self.event_types


@dataclass(frozen=True)
class Delivery:
    org: str
    endpoint_id: str
    event_id: str
    event_type: str
    event_created: datetime
    status: DeliveryStatus
    attempts: int
    first_attempt_at: datetime
    last_attempt_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None
    last_latency_ms: int | None = None
    delivered_at: datetime | None = None


def check_url_shape(url: str, allow_plain_http: bool) -> tuple[str, int]:
    """The host and port of an acceptable endpoint URL; refuses what no resolution can make safe."""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValidationFailed("the URL is not valid", {"url": url[:200]}) from error
    schemes = ("https", "http") if allow_plain_http else ("https",)
    if parts.scheme not in schemes:
        raise ValidationFailed("webhook endpoints must use https", {"scheme": parts.scheme})
    if not parts.hostname:
        raise ValidationFailed("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed("the URL must not carry credentials; verify our signature instead")
    if parts.fragment:
        raise ValidationFailed("the URL must not have a fragment")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def public_address(address: str) -> bool:
    """True for an address on the public internet: not private, loopback, link-local (cloud metadata
    at 169.254.169.254), multicast, reserved or unspecified, including IPv4 mapped into IPv6."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
