"""PynamoDB models of the single table. Keys come from keys.py only.

Every model points at the same table; `bind()` sets its name and endpoint once per
process (Lambda cold start, local stack, or a test's DynamoDB Local).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any, TypeVar

from botocore.session import get_session
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
# The one botocore session the clients are built from. A session's loader keeps the service descriptions it
# has read: a client built from a fresh session (what PynamoDB does) reads them from disk again, about 200 ms,
# and a process that is bound again (a local stack, a test with another table) would pay that each time.
_session: list[Any] = []


class BaseItem(Model):
    """What every item has: the table's keys, and the settings of the one table (its Meta, which every
    model shares: they declare none of their own)."""

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
                    if not _session:
                        _session.append(get_session())
                    connection._local.session = _session[0]  # PynamoDB's per-thread slot, read by `client`
                    _clients[key] = connection.client
                connection._client = _clients[key]
        return table


_Item = TypeVar("_Item", bound=Model)


class Gsi1Index(GlobalSecondaryIndex[_Item]):
    """The table's one index: each model that sits in it reads it as its own (keys.py: who does, and why)."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class InGsi1:
    """An item that always sits in gsi1: its index keys (an item lists the index itself, typed as its own)."""

    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()


class SparseInGsi1:
    """An item that sits in gsi1 only while it has its index keys (a sparse index)."""

    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)


# Attributes that several kinds of item carry, with one meaning. PynamoDB takes a model's attributes from
# its bases too, so an item lists these as bases, and only its own attributes in its body.

class OfOrg:
    """An item that belongs to one org names it (the keys hold it too, but are not parsed back)."""

    org = UnicodeAttribute()


class Versioned:
    """Created once, then changed by guarded updates that each move the version on."""

    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = IntAttribute(default=1)


class MonthTotals:
    """What a month's invoices come to: an invoice's own, or the sum a rollup keeps."""

    subtotal_cents = IntAttribute(default=0)
    credits_cents = IntAttribute(default=0)
    total_cents = IntAttribute(default=0)


class OfLine:
    """An item about one line of an invoice."""

    invoice_id = UnicodeAttribute()
    line_id = UnicodeAttribute()


class OfEvent:
    """An item about one customer event."""

    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()


class Expiring:
    """An item DynamoDB deletes after `expires_at`, epoch seconds: the table's TTL attribute."""

    expires_at = NumberAttribute()


class OrgItem(OfOrg, Versioned, BaseItem):
    name = UnicodeAttribute()
    email = UnicodeAttribute()
    currency = UnicodeAttribute(default="usd")
    invoice_seq = IntAttribute(default=0)
    stripe_customer_id = UnicodeAttribute(null=True)
    collection_method = UnicodeAttribute(null=True)  # unset: the default collection
    days_until_due = IntAttribute(null=True)


class InvoiceItem(OfOrg, Versioned, MonthTotals, InGsi1, BaseItem):
    invoice_id = UnicodeAttribute()
    number = UnicodeAttribute()
    period = UnicodeAttribute()
    status = UnicodeAttribute()
    currency = UnicodeAttribute()
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
    state_index: Gsi1Index[InvoiceItem] = Gsi1Index()


class LineItemRecord(OfOrg, OfLine, BaseItem):
    """One line of an invoice. `storage/convert.py` maps its fields once, in three groups: the snapshot (what is
    charged for and the price in force, set by the write that creates the line), the tally (added to by every
    write) and the priced fields (frozen at finalize; fixed from the start on one-off and credit lines)."""

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


class EventRecord(OfLine, Expiring, BaseItem):
    """Dedup record of one accepted usage event; expires by TTL after the late-usage window."""

    digest = UnicodeAttribute(null=True)  # the event's content fingerprint; absent on records written before it


class TokenItem(SparseInGsi1, BaseItem):
    """An API token: its HMAC (the key), never the token itself."""

    name = UnicodeAttribute()  # the label people know it by
    scopes = UnicodeSetAttribute()
    created_at = UTCDateTimeAttribute()
    valid_until = UTCDateTimeAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)
    token_index: Gsi1Index[TokenItem] = Gsi1Index()


class RollupItem(MonthTotals, BaseItem):
    period = UnicodeAttribute()
    currency = UnicodeAttribute(default="usd")
    invoice_count = IntAttribute(default=0)


class WebhookEventItem(Expiring, BaseItem):
    event_type = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()


class LeaseItem(Expiring, BaseItem):
    owner = UnicodeAttribute()
    expires_at_ms = NumberAttribute()


class UsageDayRecord(OfLine, BaseItem):
    """One line's usage on one UTC day. Its hours are top-level number attributes h00..h23 (ADD works on
    top-level attributes only), written and read by storage/buckets.py; the item stays under 1 KB."""

    day = UnicodeAttribute()
    quantity = DecimalAttribute(default=Decimal)


class SubscriptionsItem(OfOrg, InGsi1, BaseItem):
    """An org's plan changes (JSON), guarded by `version`; `materialized` names the version and period
    whose recurring lines are known to be written."""

    changes = UnicodeAttribute(default="[]")
    version = IntAttribute(default=0)
    materialized = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()
    subscribed_index: Gsi1Index[SubscriptionsItem] = Gsi1Index()


class CreditBalanceItem(OfOrg, BaseItem):
    granted_cents = IntAttribute(default=0)
    applied_cents = IntAttribute(default=0)
    expired_cents = IntAttribute(default=0)
    restored_cents = IntAttribute(default=0)
    balance_cents = IntAttribute(default=0)


class CreditGrantItem(OfOrg, SparseInGsi1, BaseItem):
    """One grant of credit; in gsi1 only while it expires and has something left."""

    grant_id = UnicodeAttribute()
    amount_cents = IntAttribute()
    remaining_cents = IntAttribute()
    reason = UnicodeAttribute()
    description = UnicodeAttribute()
    granted_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute(null=True)
    client_id = UnicodeAttribute(null=True)
    version = IntAttribute(default=1)
    expiry_index: Gsi1Index[CreditGrantItem] = Gsi1Index()


class CreditEntryItem(OfOrg, BaseItem):
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
    # Every model shares BaseItem's Meta (none declares its own), so models declared in other modules
    # (notice_models.py), even those imported later, are bound with it.
    _Meta.table_name, _Meta.host, _Meta.region = table_name, host, region
    with _clients_lock:
        _clients.clear()
    for model in every_model():
        model.Meta.table_name = table_name
        model.Meta.host = host
        model.Meta.region = region
        model._connection = None
