"""Hostile usage input, in process on DynamoDB Local: whatever a producer sends, the answer is below 500, every
refusal is in the one envelope, a bad event rejects only itself (the rest of its batch is written), and
refused input leaves the table as it was. The accepted forms are the ones the OpenAPI document describes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hostile_support import (
    NOV,
    Hostile,
    no_5xx_and_enveloped,
    own_table,
    post_events,
    post_raw,
    refused,
    table_items,
    unchanged,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.hostile_values import BAD_FIELDS, Raw, dumps, event
from support.writes import Change, changes_to


@pytest.fixture(scope="module")
def hostile(local_aws: Any, tokens: dict[str, str]) -> Iterator[Hostile]:
    with own_table(local_aws, tokens) as context:
        from chalice.test import Client

        import app as application

        with Client(application.app) as client:
            seeded = post_events(client, tokens["usage"], [event(context.org, "seed")])
            assert seeded.status_code == 200, seeded.body
        yield context


def new_id(prefix: str = "e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def egress_quantity(hostile: Hostile, items: dict[tuple[str, str], dict[str, Any]] | None = None) -> Decimal:
    from chalicelib.storage import keys

    items = table_items(hostile.table_name) if items is None else items
    return sum((Decimal(item["quantity"]["N"]) for (pk, _), item in items.items()
                if pk == keys.lines_pk(hostile.org, NOV) and item["meter"]["S"] == "egress"), Decimal(0))


def egress_added(hostile: Hostile, changed: list[Change]) -> Decimal:
    """How much the changes added to the November egress lines, from the stream's before and after images."""
    from chalicelib.storage import keys

    def quantity(image: dict[str, Any] | None) -> Decimal:
        return Decimal(image["quantity"]["N"]) if image else Decimal(0)

    return sum((quantity(change.new) - quantity(change.old) for change in changed
                if change.key[0] == keys.lines_pk(hostile.org, NOV)
                and (change.new or change.old or {}).get("meter", {}).get("S") == "egress"), Decimal(0))


def test_bad_fields_reject_only_their_events_and_the_rest_of_the_batch_is_written(api, hostile):
    """Every bad value of every field (support/hostile_values.py; each is also read on its own through the
    parser in tests/unit/test_usage_bad_fields.py), one per event, each between two good events of one batch."""
    good = [new_id("good") for _ in range(len(BAD_FIELDS) + 1)]
    batch = [event(hostile.org, good[0], quantity="2")]
    for number, (field, value) in enumerate(BAD_FIELDS, start=1):
        batch += [event(hostile.org, new_id("bad"), **{field: value}), event(hostile.org, good[number], quantity="2")]

    with changes_to(hostile.table_name) as changed:
        response = post_raw(api, hostile.tokens["usage"], dumps({"events": batch}))

    assert response.status_code == 200, response.body[:500]
    results = response.json_body["results"]
    let_through = [(field, value, result) for (field, value), result in zip(BAD_FIELDS, results[1::2], strict=True)
                   if result["status"] != "rejected" or result["error"]["code"] != "invalid_event"
                   or not result["error"]["message"]]
    assert let_through == []
    assert [result["status"] for result in results[0::2]] == ["accepted"] * len(good)
    assert response.json_body["counts"] == {"accepted": len(good), "duplicate": 0, "conflict": 0,
                                            "rejected": len(BAD_FIELDS)}
    from chalicelib.storage import keys

    assert egress_added(hostile, changed) == 2 * len(good)
    assert {change.key for change in changed if change.event == "INSERT"} == {
        (keys.event_pk(hostile.org, event_id), keys.EVENT_SK) for event_id in good}
    assert not [change for change in changed if change.event == "REMOVE"]


MACHINE = {"meter": "machine_runtime", "quantity": "60", "attributes": {"preset": "shared-cpu-1x"}}


@pytest.mark.parametrize("memory_mb", [*["５１２", "٥١٢", "²", "５12", "𝟓𝟏𝟐"],
                                       "512\n", " 512", "+512", "512.0", "5e2", "0x200", "0512x", "", "1" * 5000,
                                       "-512", "512 MB"])
def test_memory_that_is_not_plain_ascii_digits_rejects_its_event_only(api, hostile, memory_mb):
    good, bad = new_id("mem-good"), new_id("mem-bad")
    batch = [event(hostile.org, good, **MACHINE),
             event(hostile.org, bad, **{**MACHINE, "attributes": {"preset": "shared-cpu-1x", "memory_mb": memory_mb}})]

    response = post_events(api, hostile.tokens["usage"], batch)

    assert response.status_code == 200, response.body[:500]
    assert [r["status"] for r in response.json_body["results"]] == ["accepted", "rejected"]


@pytest.mark.parametrize(("field", "value", "stored"), [
    ("quantity", "12.5", Decimal("12.5")), ("quantity", Raw("12.5"), Decimal("12.5")),
    ("quantity", Raw("3600"), Decimal(3600)), ("quantity", "3600", Decimal(3600)),
    ("quantity", "0.000000001", Decimal("0.000000001")), ("quantity", Raw("1e3"), Decimal(1000)),
    ("quantity", "1000000000", Decimal(1000000000)), ("quantity", "007", Decimal(7)),
    ("timestamp", "2026-11-15t11:00:00z", None), ("timestamp", "2026-11-15T11:00:00.123456789Z", None),
    ("timestamp", "2026-11-15T16:30:00+05:30", None), ("timestamp", "2026-11-15T06:00:00-05:00", None),
    ("timestamp", "2026-11-15T11:00:00-00:00", None), ("timestamp", "2026-11-15T11:00:00.5+00:00", None),
], ids=lambda v: repr(v.text if isinstance(v, Raw) else v)[:40])
def test_the_documented_forms_are_accepted_exactly(api, hostile, field, value, stored):
    before = egress_quantity(hostile)
    body = dumps({"events": [event(hostile.org, new_id(), **{field: value})]})
    response = post_raw(api, hostile.tokens["usage"], body)
    assert response.status_code == 200, response.body[:500]
    assert response.json_body["results"][0]["status"] == "accepted", response.json_body
    assert egress_quantity(hostile) - before == (stored if stored is not None else 1)


def test_memory_in_ascii_digits_is_priced_as_that_memory(api, hostile):
    machine = {**MACHINE, "attributes": {"preset": "shared-cpu-1x", "memory_mb": "512"}}
    response = post_events(api, hostile.tokens["usage"], [event(hostile.org, new_id(), **machine)])
    assert response.status_code == 200, response.body
    line_id = response.json_body["results"][0]["line_id"]
    invoice = api.http.get(f"/v1/orgs/{hostile.org}/invoices/{NOV}",
                           headers={"Authorization": f"Bearer {hostile.tokens['admin']}"}).json_body
    [line] = [line for line in invoice["lines"] if line["id"] == line_id]
    assert line["resource"] == "shared-cpu-1x 512 MB"


@pytest.mark.parametrize("element", [[], "evt", 5, None, True, [event("x", "y")], Raw("1" + "0" * 5000)],
                         ids=repr)
def test_an_event_that_is_not_an_object_rejects_only_itself(api, hostile, element):
    good = new_id()
    response = post_raw(api, hostile.tokens["usage"], dumps({"events": [event(hostile.org, good), element]}))
    assert response.status_code == 200, response.body[:500]
    assert [r["status"] for r in response.json_body["results"]] == ["accepted", "rejected"]
    assert response.json_body["results"][1]["id"] is None


def deep(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


WHOLE_BODY_REFUSALS = [
    ("nested 1,000 deep", '{"events": [{"attributes": ' + deep(1000) + "}]}", 400, "invalid_json"),
    ("nested 100,000 deep", deep(100_000), 400, "invalid_json"),
    ("objects nested 1,000 deep", '{"a": ' * 1000 + "1" + "}" * 1000, 400, "invalid_json"),
    ("nested 33 deep", '{"events": ' + deep(32) + "}", 400, "invalid_json"),
    ("duplicate top-level key", '{"events": [], "events": [{"id": "x"}]}', 400, "invalid_json"),
    ("duplicate key in an event", '{"events": [{"quantity": 1, "quantity": 1000000}]}', 400, "invalid_json"),
    ("a UTF-8 byte order mark", "\ufeff" + '{"events": []}', 400, "invalid_json"),
    ("two documents", '{"events": []} {"events": []}', 400, "invalid_json"),
    ("trailing garbage", '{"events": []}x', 400, "invalid_json"),
    ("a bare NaN in an event", '{"events": [{"quantity": NaN}]}', 400, "invalid_json"),
    ("-Infinity", '{"events": [{"quantity": -Infinity}]}', 400, "invalid_json"),
    ("a comment", '{"events": [] /* x */}', 400, "invalid_json"),
    ("single quotes", "{'events': []}", 400, "invalid_json"),
    ("null", "null", 422, "validation_failed"),
    ("true", "true", 422, "validation_failed"),
    ("a number", "5", 422, "validation_failed"),
    ("a huge number", "1" + "0" * 5000, 422, "validation_failed"),
    ("events null", '{"events": null}', 422, "validation_failed"),
    ("events a string", '{"events": "[]"}', 422, "validation_failed"),
]


@pytest.mark.parametrize(("body", "status", "code"), [(b, s, c) for _, b, s, c in WHOLE_BODY_REFUSALS],
                         ids=[name for name, *_ in WHOLE_BODY_REFUSALS])
def test_a_body_that_is_not_one_plain_json_document_is_refused_whole(api, hostile, body, status, code):
    with unchanged(hostile):
        refused(post_raw(api, hostile.tokens["usage"], body), status, code)


@pytest.mark.parametrize("body", [
    b"\xff\xfe" + '{"events": []}'.encode("utf-16-le"), '{"events": []}'.encode("utf-16"),
    '{"events": []}'.encode("utf-32"), b'{"events": ["\xed\xa0\x80"]}', b'{"events": ["\xc0\xaf"]}',
    b'{"events": ["\x80"]}'], ids=["utf-16-le", "utf-16", "utf-32", "encoded surrogate", "overlong", "lone byte"])
def test_a_body_that_is_not_utf8_is_refused(api, hostile, body):
    with unchanged(hostile):
        refused(post_raw(api, hostile.tokens["usage"], body), 400, "invalid_json")


def test_nesting_up_to_the_limit_is_read_and_answered_per_event(api, hostile):
    body = '{"events": [{"colour": ' + deep(29) + "}]}"  # 32 levels in all
    with unchanged(hostile):
        error = refused(post_raw(api, hostile.tokens["usage"], body), 422, "all_events_rejected")
    assert error["details"]["results"][0]["error"]["code"] == "invalid_event"


@pytest.mark.parametrize("content_type", [
    None, "", "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data",
    "application/json-patch+json", "application/jsonx", "text/json", "application/octet-stream", "*/*",
    "application/json\x00", "json"])
def test_a_usage_body_in_another_media_type_is_refused(api, hostile, content_type):
    body = json.dumps({"events": [event(hostile.org, new_id())]})
    with unchanged(hostile):
        refused(post_raw(api, hostile.tokens["usage"], body, content_type), 415, "unsupported_media_type")


@pytest.mark.parametrize("content_type", ["application/json", "APPLICATION/JSON", "application/json; charset=utf-8",
                                          "Application/Json ; charset=UTF-8"])
def test_json_is_read_whatever_the_case_and_parameters_of_its_media_type(api, hostile, content_type):
    body = json.dumps({"events": [event(hostile.org, new_id())]})
    response = post_raw(api, hostile.tokens["usage"], body, content_type)
    assert response.status_code == 200, response.body


def test_a_body_of_a_million_and_one_bytes_is_refused_before_it_is_read(api, hostile):
    body = '{"events": [], "pad": "' + "x" * (1_000_001 - 25) + '"}'
    assert len(body) == 1_000_001
    with unchanged(hostile):
        refused(post_raw(api, hostile.tokens["usage"], body), 413, "too_large")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
FIELDS = ("id", "org", "app", "meter", "quantity", "region", "attributes", "timestamp")


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, min_size=1, max_size=3))
def test_any_json_in_any_field_is_answered_per_event_below_500(api, hostile, changes):
    good, other = new_id("prop-good"), new_id("prop")
    from chalicelib.storage import keys

    with changes_to(hostile.table_name) as changed:
        response = post_raw(api, hostile.tokens["usage"], dumps({"events": [
            event(hostile.org, good), event(hostile.org, other, **changes)]}))

    no_5xx_and_enveloped(response)
    assert response.status_code == 200, response.body[:500]
    first, second = response.json_body["results"]
    assert first["status"] == "accepted"
    added = {change.key for change in changed if change.event == "INSERT"}
    written = {(keys.event_pk(hostile.org, good), keys.EVENT_SK)}
    if second["status"] == "accepted":  # the changes happened to be valid: then they were plain ASCII
        written.add((keys.event_pk(hostile.org, str(changes.get("id", other))), keys.EVENT_SK))
        assert all(str(v).isascii() for k, v in changes.items() if k != "attributes"), changes
    assert added <= written | {k for k in added if not k[0].startswith("EVT#")}, added
