"""A day's usage item, with all 24 hours counted, stays under 1 KB: counting the hour costs no more write
units than counting the day (DynamoDB bills an update by the item's size in whole KB)."""

from __future__ import annotations

from bench.capacity import item_size
from chalicelib.storage import buckets, keys

LONGEST_ORG = "o" * 63  # the API's org id pattern allows at most 63 characters
LINE_ID = "li_" + "f" * 24  # line ids are a fixed-length digest
# 10^15 base units to nine decimals in every hour: a million events of the largest quantity one event can carry.
BIG = "999999999999999.999999999"


def test_a_full_day_item_with_the_longest_ids_and_largest_sums_fits_in_one_kb():
    day = "2026-11-30"
    item = {
        "pk": {"S": keys.usage_pk(LONGEST_ORG, day[:7])},
        "sk": {"S": keys.usage_day_sk(day, "inv_202611", LINE_ID)},
        "invoice_id": {"S": "inv_202611"}, "line_id": {"S": LINE_ID}, "day": {"S": day},
        "quantity": {"N": BIG + "9"},
        **{name: {"N": BIG} for name in buckets.HOUR_ATTRIBUTES},
    }
    assert item_size(item) < 1024, item_size(item)
