"""The forms input is read in, without a server: ASCII digits only, whole-text matches, exact JSON numbers,
bounded depth, RFC 3339 timestamps, printable text; and decimals written plainly in the API's output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from chalicelib.api.errors import ApiError
from chalicelib.api.requests import path_id, path_org, query_cursor, query_int
from chalicelib.api.schemas import OrgIn, UsageEventIn, decimal_text
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.identifiers import UnsafeKeyPart
from chalicelib.domain.periods import Period, parse_rfc3339
from chalicelib.domain.pricebook import quote
from chalicelib.safejson import MAX_DEPTH, UnreadableJson, loads, too_deep
from chalicelib.storage import keys

NOV = Period(2026, 11)


@pytest.mark.parametrize("memory_mb", ["²", "５１２", "٥١٢", "𝟓𝟏𝟐", "512\n", " 512", "+512", "5_12", "1" * 5000])
def test_machine_memory_in_anything_but_ascii_digits_is_a_validation_failure(memory_mb):
    with pytest.raises(ValidationFailed):
        quote("machine_runtime", "iad", {"preset": "shared-cpu-1x", "memory_mb": memory_mb}, NOV)


def test_machine_memory_in_ascii_digits_prices_that_memory():
    assert quote("machine_runtime", "iad", {"preset": "shared-cpu-1x", "memory_mb": "512"}, NOV).resource == \
        "shared-cpu-1x 512 MB"


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", "\u200b"])
def test_a_path_or_key_part_with_a_trailing_character_is_refused(suffix):
    with pytest.raises(ApiError):
        path_org("acme" + suffix)
    with pytest.raises(ApiError):
        path_id("inv_202611" + suffix)
    with pytest.raises(UnsafeKeyPart):
        keys.safe("evt-1" + suffix)


@pytest.mark.parametrize("text", ["2026-11\n", "２０２６-11", "2026-١١", " 2026-11", "2026-11 ", "+2026-11"])
def test_a_period_in_anything_but_ascii_digits_is_refused(text):
    with pytest.raises(ValueError):
        Period.parse(text)


@pytest.mark.parametrize("raw", ["1" * 5000, "١", "１０", "²", "1\n", "+1", " 1", "0x1", ""])
def test_a_query_number_in_anything_but_ascii_digits_is_refused(raw):
    with pytest.raises(ApiError) as refused:
        query_int({"limit": raw}, "limit", 20, 1, 100)
    assert refused.value.status == 422


def test_a_cursor_longer_than_any_this_api_issues_is_refused():
    assert query_cursor({"cursor": "c" * 400}) == "c" * 400
    with pytest.raises(ApiError):
        query_cursor({"cursor": "c" * 401})


# ---- timestamps ----

@pytest.mark.parametrize(("text", "moment"), [
    ("2026-11-15T11:00:00Z", datetime(2026, 11, 15, 11, tzinfo=UTC)),
    ("2026-11-15t11:00:00z", datetime(2026, 11, 15, 11, tzinfo=UTC)),
    ("2026-11-15T11:00:00.123456789Z", datetime(2026, 11, 15, 11, 0, 0, 123456, tzinfo=UTC)),
    ("2026-11-30T23:59:59.9999999Z", datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)),  # never rounded up
    ("2026-11-15T16:30:00+05:30", datetime(2026, 11, 15, 16, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
    ("2026-11-15T11:00:00-00:00", datetime(2026, 11, 15, 11, tzinfo=UTC)),
])
def test_rfc3339_timestamps_are_read_exactly(text, moment):
    assert parse_rfc3339(text) == moment


@pytest.mark.parametrize("text", [
    "2026-11-15 11:00:00Z", "2026-11-15T11:00:00", "2026-11-15T11:00:00+0000", "2026-11-15T11:00Z", "2026-11-15",
    "1794740400", "２０２６-11-15T11:00:00Z", "2026-11-15T11:00:00Z\n", "2026-11-15T11:00:60Z", "2026-02-30T00:00:00Z",
    "0000-01-01T00:00:00Z", "2026-11-15T11:00:00+24:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
    "2026-11-15T11:00:00.1234567890Z", "2026-11-15T11:00:00,5Z"])
def test_other_timestamp_forms_are_refused(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)


EVENT = {"id": "e-1", "org": "acme", "app": "web", "meter": "egress", "quantity": "1", "region": "iad",
         "timestamp": "2026-11-15T11:00:00Z"}


@pytest.mark.parametrize("timestamp", [1794740400, 1794740400000, Decimal("1794740400.5"), True, None])
def test_an_event_timestamp_that_is_a_number_is_refused(timestamp):
    with pytest.raises(ValidationError):
        UsageEventIn.model_validate({**EVENT, "timestamp": timestamp})


@pytest.mark.parametrize(("quantity", "read"), [("12.5", Decimal("12.5")), (Decimal("12.5"), Decimal("12.5")),
                                                (3600, Decimal(3600)), ("0.000000001", Decimal("0.000000001"))])
def test_quantities_are_json_numbers_or_plain_decimal_strings(quantity, read):
    assert UsageEventIn.model_validate({**EVENT, "quantity": quantity}).quantity == read


@pytest.mark.parametrize("quantity", ["５", "1e3", "+5", " 5", "5.", ".5", "1_000", "NaN", "sNaN", "Infinity", "-1",
                                      "0x10", "12345678901", True, Decimal("NaN"), Decimal("sNaN"), Decimal("-0")])
def test_other_quantity_forms_are_refused(quantity):
    with pytest.raises(ValidationError):
        UsageEventIn.model_validate({**EVENT, "quantity": quantity})


@pytest.mark.parametrize("name", ["Acme\x00", "Ac\u202eme", "Ac\u200bme", "Acme\ufeff", "Ac\ud800me", "Ac\u2028me"])
def test_a_name_with_control_or_invisible_characters_is_refused(name):
    with pytest.raises(ValidationError):
        OrgIn.model_validate({"name": name, "email": "billing@acme.example"})


# ---- JSON ----

def test_nesting_is_counted_outside_strings_only():
    assert not too_deep('{"a": "' + "[" * 100 + '"}')
    assert not too_deep('{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert too_deep("[{" * 20)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": 1, "a": 2}', "NaN", "[Infinity]", "\ufeff{}", "{} {}"])
def test_json_that_parsers_read_differently_is_refused(text):
    with pytest.raises(UnreadableJson):
        loads(text)


def test_json_numbers_are_exact_and_an_absurdly_long_integer_is_a_decimal_not_an_error():
    assert loads('{"q": 0.1, "n": 3, "big": 1' + "0" * 5000 + "}") == {
        "q": Decimal("0.1"), "n": 3, "big": Decimal("1" + "0" * 5000)}


def test_json_must_be_utf8():
    with pytest.raises(UnreadableJson):
        loads('{"a": 1}'.encode("utf-16"))


# ---- output ----

@pytest.mark.parametrize(("value", "text"), [
    (Decimal("7.5E-7"), "0.00000075"), (Decimal("0.00000075"), "0.00000075"), (Decimal("3.6E+3"), "3600"),
    (Decimal("3600.000000000"), "3600"), (Decimal("12.50"), "12.5"), (Decimal("0E-9"), "0"), (Decimal("-0"), "0"),
    (Decimal("-2.500"), "-2.5"), (Decimal("123456789.123456789"), "123456789.123456789"), (Decimal(720), "720")])
def test_decimals_are_written_plainly_without_trailing_zeros(value, text):
    assert decimal_text(value) == text
