"""PynamoDB models of budgets, alerts, customer events, webhook endpoints and their deliveries.

They share the table and its binding with `models.py` (every model subclasses `BaseItem`).
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute

from .models import BaseItem, Expiring, IntAttribute, OfEvent, OfOrg


class BudgetItem(OfOrg, BaseItem):
    amount_cents = IntAttribute()
    currency = UnicodeAttribute()
    thresholds = UnicodeAttribute()  # JSON [{"percent": 80} | {"amount_cents": 50000}, ...]
    updated_at = UTCDateTimeAttribute()


class AlertItem(OfOrg, BaseItem):
    period = UnicodeAttribute()
    kind = UnicodeAttribute()
    threshold = UnicodeAttribute()  # the threshold's key: pct-80, amt-50000
    threshold_cents = IntAttribute()
    budget_cents = IntAttribute()
    spend_cents = IntAttribute()
    currency = UnicodeAttribute()
    invoice_id = UnicodeAttribute()
    crossed_at = UTCDateTimeAttribute()
    event_id = UnicodeAttribute()


class NoticeItem(OfOrg, OfEvent, Expiring, BaseItem):
    """A customer event, stored once; its INSERT on the stream fans it out to the org's endpoints."""

    created = UTCDateTimeAttribute()
    data = UnicodeAttribute()  # JSON


class EndpointItem(OfOrg, BaseItem):
    endpoint_id = UnicodeAttribute()
    url = UnicodeAttribute()
    event_types = UnicodeSetAttribute()
    secret = UnicodeAttribute(null=True)  # removed when the endpoint is deleted
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    failing_since = UTCDateTimeAttribute(null=True)
    last_success_at = UTCDateTimeAttribute(null=True)
    disabled_at = UTCDateTimeAttribute(null=True)  # for whoever reads the table; the API shows the reason
    disabled_reason = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # set when deleted


class DeliveryItem(OfOrg, OfEvent, Expiring, BaseItem):
    endpoint_id = UnicodeAttribute()
    event_created = UTCDateTimeAttribute()
    status = UnicodeAttribute()
    attempts = IntAttribute(default=0)
    first_attempt_at = UTCDateTimeAttribute()
    last_attempt_at = UTCDateTimeAttribute()
    last_status_code = IntAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    last_latency_ms = IntAttribute(null=True)
    delivered_at = UTCDateTimeAttribute(null=True)
