"""The benchmark's capacity counting follows DynamoDB's published size and unit rules."""

from __future__ import annotations

import pytest

from bench.capacity import (
    index_write_units,
    item_size,
    number_size,
    read_units,
    touched_items,
    value_size,
    write_units,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 2), ("7", 2), ("12", 2), ("123", 3), ("1000", 2), ("0.0012", 2), ("-123.4500", 4), ("1790000000", 3),
     ("12345678901234567890", 11)],
)
def test_numbers_take_a_byte_per_two_significant_digits_plus_one(text: str, size: int) -> None:
    assert number_size(text) == size


def test_an_item_is_its_attribute_names_plus_values() -> None:
    item = {"pk": {"S": "EVT#acme#e1"}, "sk": {"S": "EVT"}, "n": {"N": "60"}, "flag": {"BOOL": True},
            "é": {"S": "é"}}
    assert item_size(item) == (2 + 11) + (2 + 3) + (1 + 2) + (4 + 1) + (2 + 2)


def test_lists_and_maps_cost_three_bytes_plus_one_per_element() -> None:
    assert value_size({"L": []}) == 3
    assert value_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (2 + 1) + (2 + 1)
    assert value_size({"M": {"k": {"S": "v"}}}) == 3 + (1 + 1 + 1)
    assert value_size({"SS": ["a", "bc"]}) == 3


def test_write_units_round_up_per_kb_and_double_in_transactions() -> None:
    assert write_units(0, False) == 1
    assert write_units(1024, False) == 1
    assert write_units(1025, False) == 2
    assert write_units(200, True) == 2
    assert write_units(1500, True) == 4


def test_read_units_round_up_per_4_kb() -> None:
    assert read_units(100, "strong") == 1
    assert read_units(100, "eventual") == 0.5
    assert read_units(4097, "transactional") == 4


def test_index_writes_follow_the_item_in_and_out_of_the_index() -> None:
    plain = {"pk": {"S": "a"}, "sk": {"S": "b"}}
    indexed = {**plain, "gsi1pk": {"S": "STATE#draft"}, "gsi1sk": {"S": "2026-11#acme"}}
    moved = {**indexed, "gsi1pk": {"S": "STATE#finalized"}}
    assert index_write_units(plain, plain) == 0
    assert index_write_units(None, indexed) == 1
    assert index_write_units(indexed, indexed) == 1
    assert index_write_units(indexed, moved) == 2


def test_a_transaction_touches_each_action_item() -> None:
    key = {"pk": {"S": "ORG#a"}, "sk": {"S": "INV#inv_202611"}}
    params = {"TransactItems": [
        {"ConditionCheck": {"Key": key}},
        {"Put": {"Item": {"pk": {"S": "EVT#a#1"}, "sk": {"S": "EVT"}}}},
        {"Update": {"Key": {"pk": {"S": "ORG#a#INV#inv_202611"}, "sk": {"S": "LINE#x"}}}},
    ]}
    touches = touched_items("TransactWriteItems", params)
    assert [(t.action, t.transactional) for t in touches] == [
        ("ConditionCheck", True), ("Put", True), ("Update", True)]
    assert touches[0].key == ("ORG#a", "INV#inv_202611")
