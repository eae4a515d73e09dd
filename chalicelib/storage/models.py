"""PynamoDB models of the single table. Keys come from keys.py only.

Every model points at the same table; `bind()` sets its name and endpoint once per
process (Lambda cold start, local stack, or a test's DynamoDB Local).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    Attribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import TableConnection
from pynamodb.constants import NUMBER
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number read and written as Decimal: PynamoDB's NumberAttribute goes through float."""

    attr_type = NUMBER

    def serialize(self, value: Any) -> str:
        if not isinstance(value, (Decimal, int)) or isinstance(value, bool):
            raise TypeError(f"DecimalAttribute takes Decimal or int, not {type(value).__name__}")
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class IntAttribute(Attribute[int]):
    """A DynamoDB number that is a whole number (cents, counts, versions)."""

    attr_type = NUMBER

    def serialize(self, value: Any) -> str:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"IntAttribute takes int, not {type(value).__name__}")
        return str(value)

    def deserialize(self, value: str) -> int:
        return int(Decimal(value))


class _Meta:
    table_name = "usage-invoicing-dev"
    region = "us-east-1"
    host: str | None = None
    max_retry_attempts = 3
    # The models share one client (BaseItem._get_connection), so its pool serves every thread of the process:
    # usage lanes, and the tests' concurrent writers. Connections beyond the pool are opened and dropped.
    max_pool_connections = 64


# One botocore client per (endpoint, region), shared by every model: see BaseItem._get_connection.
_clients: dict[tuple[str | None, str], Any] = {}
_clients_lock = threading.Lock()


class BaseItem(Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    @classmethod
    def _get_connection(cls) -> TableConnection:
        """PynamoDB's connection, with the client every model shares.

        PynamoDB gives each model class a botocore session and client of its own, and building one reads
        botocore's service description from disk: a cold process paid for it once per model it touched
        (`python -m bench.cold_start`). Every model here is one table behind one endpoint, so the first
        client built, with PynamoDB's own retry, timeout and validation settings, serves them all. botocore
        clients are safe to share between threads once built; building is what the lock serialises."""
        table = super()._get_connection()
        connection = table.connection
        if connection._client is None:
            key = (connection.host, connection.region)
            with _clients_lock:
                if key not in _clients:
                    _clients[key] = connection.client
                connection._client = _clients[key]
        return table


class StateIndex(GlobalSecondaryIndex["InvoiceItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class OrgItem(BaseItem):
    class Meta(_Meta):
        pass

    org = UnicodeAttribute()
    name = UnicodeAttribute()
    email = UnicodeAttribute()
    currency = UnicodeAttribute(default="usd")
    invoice_seq = IntAttribute(default=0)
    stripe_customer_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = IntAttribute(default=1)
    collection_method = UnicodeAttribute(null=True)  # unset: the default collection
    days_until_due = IntAttribute(null=True)


class InvoiceItem(BaseItem):
    class Meta(_Meta):
        pass

    org = UnicodeAttribute()
    invoice_id = UnicodeAttribute()
    number = UnicodeAttribute()
    period = UnicodeAttribute()
    status = UnicodeAttribute()
    currency = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = IntAttribute(default=1)
    subtotal_cents = IntAttribute(default=0)
    credits_cents = IntAttribute(default=0)
    total_cents = IntAttribute(default=0)
    line_count = IntAttribute(default=0)
    finalized_at = UTCDateTimeAttribute(null=True)
    due_at = UTCDateTimeAttribute(null=True)
    voided_at = UTCDateTimeAttribute(null=True)
    payment_status = UnicodeAttribute(default="none")
    sync_state = UnicodeAttribute(default="not_required")
    stripe_invoice_id = UnicodeAttribute(null=True)
    stripe_invoice_number = UnicodeAttribute(null=True)
    sync_attempts = IntAttribute(default=0)
    sync_last_error = UnicodeAttribute(null=True)
    sync_last_error_at = UTCDateTimeAttribute(null=True)
    sync_requested_at = UTCDateTimeAttribute(null=True)
    synced_at = UTCDateTimeAttribute(null=True)
    hosted_invoice_url = UnicodeAttribute(null=True)
    invoice_pdf = UnicodeAttribute(null=True)
    payment_attempts = IntAttribute(default=0)
    payment_event_id = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    state_index = StateIndex()


class LineItemRecord(BaseItem):
    class Meta(_Meta):
        pass

    org = UnicodeAttribute()
    invoice_id = UnicodeAttribute()
    line_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    category = UnicodeAttribute()
    product = UnicodeAttribute()
    description = UnicodeAttribute()
    app = UnicodeAttribute(null=True)
    region = UnicodeAttribute(null=True)
    resource = UnicodeAttribute(null=True)
    meter = UnicodeAttribute(null=True)
    quantity = DecimalAttribute(default=Decimal)
    unit = UnicodeAttribute()
    display_unit = UnicodeAttribute()
    display_divisor = DecimalAttribute()
    unit_price = DecimalAttribute()
    price_per = DecimalAttribute()
    price_unit = UnicodeAttribute()
    tiers = UnicodeAttribute(default="[]")  # JSON [[up_to|null, "unit_price"], ...]
    free_pool = UnicodeAttribute(null=True)
    free_allowance = DecimalAttribute(default=Decimal)
    price_version = UnicodeAttribute(null=True)
    usage_period = UnicodeAttribute()
    event_count = IntAttribute(default=0)
    first_usage_at = UnicodeAttribute(null=True)
    last_usage_at = UnicodeAttribute(null=True)
    free_quantity = DecimalAttribute(null=True)  # frozen at finalize
    amount_cents = IntAttribute(null=True)  # fixed for one-off/credit lines; frozen at finalize for metered
    client_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)


class EventRecord(BaseItem):
    """Dedup record of one accepted usage event; expires by TTL after the late-usage window."""

    class Meta(_Meta):
        pass

    invoice_id = UnicodeAttribute()
    line_id = UnicodeAttribute()
    expires_at = NumberAttribute()  # epoch seconds, the table's TTL attribute
    digest = UnicodeAttribute(null=True)  # the event's content fingerprint; absent on records written before it


class TokenIndex(GlobalSecondaryIndex["TokenItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class TokenItem(BaseItem):
    """An API token: its HMAC (the key), never the token itself."""

    class Meta(_Meta):
        pass

    name = UnicodeAttribute()  # the label people know it by
    scopes = UnicodeSetAttribute()
    created_at = UTCDateTimeAttribute()
    valid_until = UTCDateTimeAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    token_index = TokenIndex()


class RollupItem(BaseItem):
    class Meta(_Meta):
        pass

    period = UnicodeAttribute()
    currency = UnicodeAttribute(default="usd")
    subtotal_cents = IntAttribute(default=0)
    credits_cents = IntAttribute(default=0)
    total_cents = IntAttribute(default=0)
    invoice_count = IntAttribute(default=0)


class WebhookEventItem(BaseItem):
    class Meta(_Meta):
        pass

    event_type = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute()


class LeaseItem(BaseItem):
    class Meta(_Meta):
        pass

    owner = UnicodeAttribute()
    expires_at_ms = NumberAttribute()
    expires_at = NumberAttribute()


class UsageDayRecord(BaseItem):
    """One line's usage on one UTC day. Its hours are top-level number attributes h00..h23 (ADD works on
    top-level attributes only), written and read by storage/buckets.py; the item stays under 1 KB."""

    class Meta(_Meta):
        pass

    invoice_id = UnicodeAttribute()
    line_id = UnicodeAttribute()
    day = UnicodeAttribute()
    quantity = DecimalAttribute(default=Decimal)


class SubscribedIndex(GlobalSecondaryIndex["SubscriptionsItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class SubscriptionsItem(BaseItem):
    """An org's plan changes (JSON), guarded by `version`; `materialized` names the version and period
    whose recurring lines are known to be written."""

    class Meta(_Meta):
        pass

    org = UnicodeAttribute()
    changes = UnicodeAttribute(default="[]")
    version = IntAttribute(default=0)
    materialized = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    subscribed_index = SubscribedIndex()


class CreditBalanceItem(BaseItem):
    class Meta(_Meta):
        pass

    org = UnicodeAttribute()
    granted_cents = IntAttribute(default=0)
    applied_cents = IntAttribute(default=0)
    expired_cents = IntAttribute(default=0)
    restored_cents = IntAttribute(default=0)
    balance_cents = IntAttribute(default=0)


class CreditExpiryIndex(GlobalSecondaryIndex["CreditGrantItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class CreditGrantItem(BaseItem):
    class Meta(_Meta):
        pass

    org = UnicodeAttribute()
    grant_id = UnicodeAttribute()
    amount_cents = IntAttribute()
    remaining_cents = IntAttribute()
    reason = UnicodeAttribute()
    description = UnicodeAttribute()
    granted_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute(null=True)
    client_id = UnicodeAttribute(null=True)
    version = IntAttribute(default=1)
    gsi1pk = UnicodeAttribute(null=True)  # set only while an expiring grant has something left (sparse index)
    gsi1sk = UnicodeAttribute(null=True)
    expiry_index = CreditExpiryIndex()


class CreditEntryItem(BaseItem):
    class Meta(_Meta):
        pass

    org = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    movement = UnicodeAttribute()
    grant_id = UnicodeAttribute()
    amount_cents = IntAttribute()
    at = UTCDateTimeAttribute()
    invoice_id = UnicodeAttribute(null=True)


MODELS: tuple[type[BaseItem], ...] = (
    BaseItem, OrgItem, InvoiceItem, LineItemRecord, EventRecord, TokenItem, RollupItem, WebhookEventItem, LeaseItem,
    UsageDayRecord, SubscriptionsItem, CreditBalanceItem, CreditGrantItem, CreditEntryItem,
)


def every_model() -> tuple[type[BaseItem], ...]:
    """Every model of the table, with those declared in other modules (notice_models.py), even later."""
    return (*MODELS, *(m for m in BaseItem.__subclasses__() if m not in MODELS))


def bind(table_name: str, host: str | None, region: str) -> None:
    """Point every model at one table and endpoint, dropping cached connections."""
    # Models declared in other modules (notice_models.py) inherit from _Meta, even those imported later.
    _Meta.table_name, _Meta.host, _Meta.region = table_name, host, region
    with _clients_lock:
        _clients.clear()
    for model in every_model():
        model.Meta.table_name = table_name
        model.Meta.host = host
        model.Meta.region = region
        model._connection = None
