"""A line's record is mapped in one place: every field of a line has an attribute, and a record read back
is the line that was written."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.catalog import Category
from chalicelib.domain.lines import LineItem, LineKind
from chalicelib.domain.pricebook import Tier
from chalicelib.storage import convert
from chalicelib.storage.models import LineItemRecord

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
# What a line's record holds besides the line's own fields: its keys and where and when it was written.
NOT_LINE_FIELDS = {"pk", "sk", "org", "invoice_id", "client_id", "created_at"}


def fixed_line(**changes: Any) -> LineItem:
    line = LineItem(
        id="li_1", kind=LineKind.ONE_OFF, category=Category.COMPUTE, product="Setup", description="Setup fee",
        app=None, region=None, resource=None, meter=None, quantity=Decimal(1), unit="item", display_unit="items",
        display_divisor=Decimal(1), unit_price=Decimal("2.50"), price_per=Decimal(1), price_unit="item",
        tiers=(), free_pool=None, free_allowance=Decimal(0), price_version=None, usage_period="2026-11",
        event_count=0, first_usage_at=None, last_usage_at=None, amount_cents=250,
    )
    return dataclasses.replace(line, **changes)


def test_every_line_field_has_exactly_one_attribute_and_every_attribute_is_mapped():
    names = [field.name for field in convert.LINE_FIELDS]
    attributes = [field.attribute.attr_name for field in convert.LINE_FIELDS]
    assert sorted(names) == sorted(field.name for field in dataclasses.fields(LineItem))
    assert len(set(attributes)) == len(attributes)
    assert set(attributes) | NOT_LINE_FIELDS == set(LineItemRecord.get_attributes())


def test_a_fixed_line_reads_back_as_written():
    for line in (fixed_line(), fixed_line(app="web", region="fra", resource="r", meter="m", free_pool="pool",
                                          price_version="2026-01", first_usage_at=NOW, last_usage_at=NOW,
                                          tiers=(Tier(Decimal(10), Decimal("0.1")), Tier(None, Decimal("0.05"))))):
        assert convert.line_from_record(convert.record_from_line("org", "inv_202611", line, NOW)) == line


def test_a_fixed_line_stores_no_free_quantity_and_leaves_out_what_it_does_not_have():
    stored = convert.record_from_line("org", "inv_202611", fixed_line(), NOW).serialize()
    assert "free_quantity" not in stored
    assert not {"app", "region", "resource", "meter", "free_pool", "first_usage_at", "client_id"} & set(stored)
    assert stored["amount_cents"] == {"N": "250"}
