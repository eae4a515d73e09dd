"""Stripe webhooks that are signed correctly but are not what we expect, or signed from the future: 400 in the
envelope (Stripe would retry a 5xx for days), logged, and nothing written. Bodies over the cap: 413."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hostile_support import NOV, NOW, Hostile, own_table, refused, table_items, unchanged

PATH = "/v1/stripe/webhook"
TOLERANCE = 300


@pytest.fixture(scope="module")
def hostile(local_aws: Any, tokens: dict[str, str]) -> Iterator[Hostile]:
    with own_table(local_aws, tokens) as context:
        yield context


@pytest.fixture
def secret(hostile: Hostile) -> str:
    from chalicelib.config import settings

    return settings().stripe_webhook_secret


def sign(payload: str | bytes, secret: str, at: int) -> str:
    raw = payload.encode() if isinstance(payload, str) else payload
    digest = hmac.new(secret.encode(), str(at).encode() + b"." + raw, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def now_s(offset: int = 0) -> int:
    return int((NOW + timedelta(seconds=offset)).timestamp())


def deliver(api: Any, payload: str | bytes, signature: str) -> Any:
    return api.http.post(PATH, headers={"Content-Type": "application/json", "Stripe-Signature": signature},
                         body=payload)


def paid(org: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "evt_hostile0001", "object": "event", "type": "invoice.paid", "created": now_s(),
        "data": {"object": {"id": "in_1", "object": "invoice", "number": "ACME-0001",
                            "metadata": {"org": org, "invoice_id": NOV}}},
    }
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


def with_object(org: str, **fields: Any) -> dict[str, Any]:
    event = paid(org)
    event["data"]["object"].update(fields)
    return event


SHAPES: list[tuple[str, Any]] = [
    ("no data", lambda org: paid(org, data=...)),
    ("data null", lambda org: paid(org, data=None)),
    ("data a list", lambda org: paid(org, data=[])),
    ("no data.object", lambda org: paid(org, data={})),
    ("data.object a string", lambda org: paid(org, data={"object": "in_1"})),
    ("data.object a number", lambda org: paid(org, data={"object": 5})),
    ("metadata a list", lambda org: with_object(org, metadata=[org, NOV])),
    ("metadata a string", lambda org: with_object(org, metadata="org")),
    ("metadata values not strings", lambda org: with_object(org, metadata={"org": [org], "invoice_id": {"x": 1}})),
    ("number a list", lambda org: paid(org, type="invoice.finalized", data={"object": {
        "metadata": {"org": org, "invoice_id": NOV}, "number": ["A"]}})),
    ("number with a NUL", lambda org: paid(org, type="invoice.finalized", data={"object": {
        "metadata": {"org": org, "invoice_id": NOV}, "number": "A\x00"}})),
    ("id a list", lambda org: paid(org, id=["evt_1"])),
    ("id a number", lambda org: paid(org, id=5)),
    ("id missing", lambda org: paid(org, id=...)),
    ("id with a newline", lambda org: paid(org, id="evt_1\n")),
    ("id with a hash", lambda org: paid(org, id="evt#1")),
    ("type a list", lambda org: paid(org, type=["invoice.paid"])),
    ("type missing", lambda org: paid(org, type=...)),
    ("an array", lambda org: [paid(org)]),
    ("a string", lambda org: "invoice.paid"),
    ("null", lambda org: None),
]


@pytest.mark.parametrize("shape", [s for _, s in SHAPES], ids=[name for name, _ in SHAPES])
def test_a_signed_webhook_of_an_unexpected_shape_is_400_and_logged(api, hostile, secret, shape, caplog):
    payload = json.dumps(shape(hostile.org))
    with unchanged(hostile), caplog.at_level(logging.WARNING):
        refused(deliver(api, payload, sign(payload, secret, now_s())), 400, "invalid_webhook")
    assert any("webhook" in record.getMessage() for record in caplog.records), caplog.text


RAW_BODIES = [
    ("nested 1,000 deep", '{"id": "evt_1", "type": "invoice.paid", "data": {"object": ' + "[" * 1000 + "]" * 1000
     + "}}"),
    ("nested 100,000 deep", "[" * 100_000),
    ("a bare NaN", '{"id": "evt_1", "type": "invoice.paid", "data": {"object": {"total": NaN}}}'),
    ("duplicate keys", '{"id": "evt_1", "id": "evt_2", "type": "invoice.paid", "data": {"object": {}}}'),
    ("not JSON", "id=evt_1&type=invoice.paid"),
    ("empty", ""),
]


@pytest.mark.parametrize("payload", [p for _, p in RAW_BODIES], ids=[name for name, _ in RAW_BODIES])
def test_a_signed_webhook_that_is_not_plain_json_is_400(api, hostile, secret, payload):
    with unchanged(hostile):
        refused(deliver(api, payload, sign(payload, secret, now_s())), 400, "invalid_webhook")


def test_a_signed_webhook_of_invalid_utf8_is_400(api, hostile, secret):
    payload = b'{"id": "evt_1", "type": "\xff"}'
    with unchanged(hostile):
        refused(deliver(api, payload, sign(payload, secret, now_s())), 400, "invalid_webhook")


@pytest.mark.parametrize("offset", [TOLERANCE + 1, 3600, 86400 * 365])
def test_a_signature_dated_in_the_future_beyond_the_tolerance_is_refused(api, hostile, secret, offset):
    payload = json.dumps(paid(hostile.org))
    with unchanged(hostile):
        refused(deliver(api, payload, sign(payload, secret, now_s(offset))), 400, "invalid_webhook")


@pytest.mark.parametrize("offset", [-(TOLERANCE + 1), -86400])
def test_a_signature_older_than_the_tolerance_is_refused(api, hostile, secret, offset):
    payload = json.dumps(paid(hostile.org))
    with unchanged(hostile):
        refused(deliver(api, payload, sign(payload, secret, now_s(offset))), 400, "invalid_webhook")


@pytest.mark.parametrize("stamp", ["١٧٦٣٢٠٤٤٠٠", " {t}", "+{t}", "{t}.0", "{t}\n", "{t}_0", "1" * 5000, ""])
def test_a_signature_time_in_anything_but_ascii_digits_is_refused(api, hostile, secret, stamp):
    payload = json.dumps(paid(hostile.org))
    at = stamp.format(t=now_s())
    digest = hmac.new(secret.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()
    with unchanged(hostile):
        refused(deliver(api, payload, f"t={at},v1={digest}"), 400, "invalid_webhook")


def test_a_body_over_the_cap_is_refused_before_its_signature_is_checked(api, hostile, secret):
    payload = json.dumps({**paid(hostile.org), "pad": "x" * 1_000_000})
    with unchanged(hostile):
        refused(deliver(api, payload, sign(payload, secret, now_s())), 413, "too_large")


@pytest.mark.parametrize("offset", [0, TOLERANCE - 1, -(TOLERANCE - 1)])
def test_a_signature_within_the_tolerance_either_way_is_accepted(api, hostile, secret, offset):
    event = paid("no-such-org", id=f"evt_ok{offset + 1000}")
    payload = json.dumps(event)
    response = deliver(api, payload, sign(payload, secret, now_s(offset)))
    assert response.status_code == 200, response.body
    assert response.json_body == {"received": True, "outcome": "not_ours"}


def test_an_event_of_a_type_we_do_not_handle_is_accepted_whatever_its_object(api, hostile, secret):
    payload = json.dumps({"id": "evt_other0001", "type": "customer.created",
                          "data": {"object": {"id": "cus_1", "metadata": [], "odd": {"deep": [1, 2]}}}})
    response = deliver(api, payload, sign(payload, secret, now_s()))
    assert response.status_code == 200, response.body
    assert response.json_body["outcome"] == "ignored"
    assert any(pk.startswith("WEBHOOK#evt_other0001") for pk, _ in table_items(hostile.table_name))
