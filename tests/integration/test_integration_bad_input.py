"""Bad input gets a clear 4xx in the one error envelope, and writes nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from acceptance_support import assert_error, bearer, post_usage, usage_event

NOV = "inv_202611"


def nothing_written(store: Any, org: str, *event_ids: str) -> None:
    assert store.invoices(org) == {}
    for event_id in event_ids:
        assert not store.dedup_exists(org, event_id)


# ---- usage events, one bad field at a time ----

BAD_EVENTS = [
    # (name, changes to a valid event, per-event reason code)
    ("quantity is a word", {"quantity": "lots"}, "invalid_event"),
    ("quantity is a boolean", {"quantity": True}, "invalid_event"),
    ("quantity is a list", {"quantity": [1]}, "invalid_event"),
    ("quantity is missing", {"quantity": None}, "invalid_event"),
    ("quantity is negative", {"quantity": -1}, "invalid_event"),
    ("quantity is zero", {"quantity": 0}, "invalid_event"),
    ("quantity is NaN", {"quantity": "NaN"}, "invalid_event"),
    ("quantity is Infinity", {"quantity": "Infinity"}, "invalid_event"),
    ("quantity is -Infinity", {"quantity": "-Infinity"}, "invalid_event"),
    ("quantity is absurdly large", {"quantity": "1e30"}, "invalid_event"),
    ("quantity is just over the limit", {"quantity": "1000000000.000000001"}, "invalid_event"),
    ("quantity has ten decimals", {"quantity": "0.0000000001"}, "invalid_event"),
    ("unknown meter", {"meter": "teleportation"}, "unknown_meter"),
    ("unknown region", {"region": "mars"}, "unknown_region"),
    ("egress without a region", {"region": None}, "invalid_request"),
    ("machine without a preset", {"meter": "machine_runtime", "region": "iad"}, "invalid_request"),
    ("machines in a region without machine prices", {"meter": "machine_runtime", "region": "syd",
                                                     "attributes": {"preset": "shared-cpu-1x"}}, "unknown_region"),
    ("timestamp 5 minutes and 1 second ahead", {"timestamp": "2026-11-15T12:05:01Z"}, "timestamp_in_future"),
    ("timestamp a year ahead", {"timestamp": "2027-11-15T12:00:00Z"}, "timestamp_in_future"),
    ("timestamp just outside the 35-day window", {"timestamp": "2026-10-11T11:59:59Z"}, "timestamp_too_old"),
    ("timestamp without a timezone", {"timestamp": "2026-11-15T11:00:00"}, "invalid_event"),
    ("timestamp is not a date", {"timestamp": "yesterday"}, "invalid_event"),
    ("id is over 100 characters", {"id": "e" * 101}, "invalid_event"),
    ("id contains #", {"id": "evt#EVT"}, "invalid_event"),
    ("id is a number", {"id": 12345}, "invalid_event"),
    ("app contains #", {"app": "web#LINE"}, "invalid_event"),
    ("org contains #", {"org": "acme#INV"}, "invalid_event"),
    ("meter is over 64 characters", {"meter": "m" * 65}, "invalid_event"),
    ("unknown field", {"colour": "blue"}, "invalid_event"),
    ("attribute value is not a string", {"attributes": {"preset": 1}}, "invalid_event"),
    ("too many attributes", {"attributes": {f"k{i}": "v" for i in range(11)}}, "invalid_event"),
]


@pytest.mark.parametrize("changes,code", [(c, code) for _, c, code in BAD_EVENTS],
                         ids=[name for name, _, _ in BAD_EVENTS])
def test_a_batch_whose_only_event_is_invalid_answers_422_with_the_reason_and_writes_nothing(
        api, org, tokens, pinned_clock, store, changes, code):
    event = usage_event(org, "the-event", quantity="1")
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value

    response = post_usage(api, tokens["usage"], [event])

    error = assert_error(response, 422, "all_events_rejected")
    [result] = error["details"]["results"]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == code, result
    assert result["error"]["message"]
    assert error["details"]["counts"] == {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 1}
    nothing_written(store, org, "the-event")


def test_a_batch_of_only_invalid_events_reports_each_one(api, org, tokens, pinned_clock, store):
    events = [usage_event(org, "a", meter="nope"), usage_event(org, "b", quantity="-2"),
              usage_event("no-such-org", "c")]

    error = assert_error(post_usage(api, tokens["usage"], events), 422, "all_events_rejected")

    assert [(r["index"], r["id"], r["error"]["code"]) for r in error["details"]["results"]] == [
        (0, "a", "unknown_meter"), (1, "b", "invalid_event"), (2, "c", "unknown_org")]
    nothing_written(store, org, "a", "b")
    nothing_written(store, "no-such-org", "c")


def test_usage_for_an_unknown_org_creates_no_org_and_no_invoice(api, tokens, pinned_clock, store):
    assert_error(post_usage(api, tokens["usage"], [usage_event("ghost-org", "g1")]), 422, "all_events_rejected")
    assert not store.org_exists("ghost-org")
    nothing_written(store, "ghost-org", "g1")


def test_timestamps_at_the_edges_of_the_window_are_accepted(api, org, tokens, pinned_clock):
    events = [usage_event(org, "edge-future", timestamp="2026-11-15T12:05:00Z"),
              usage_event(org, "edge-past", timestamp="2026-10-11T12:00:00Z")]
    response = post_usage(api, tokens["usage"], events)
    assert response.status_code == 200, response.body
    assert [r["status"] for r in response.json_body["results"]] == ["accepted", "accepted"]


# ---- the usage request as a whole ----

BAD_BODIES = [
    ("empty body", b"", 400, "invalid_json"),
    ("truncated JSON", b'{"events": [', 400, "invalid_json"),
    ("not JSON", b"events=1", 400, "invalid_json"),
    ("bare NaN", b'{"events": [{"quantity": NaN}]}', 400, "invalid_json"),
    ("bare Infinity", b'{"events": [{"quantity": Infinity}]}', 400, "invalid_json"),
    ("invalid UTF-8", b'{"events": ["\xff"]}', 400, "invalid_json"),
    ("a JSON array", b"[]", 422, "validation_failed"),
    ("a JSON string", b'"events"', 422, "validation_failed"),
    ("events missing", b"{}", 422, "validation_failed"),
    ("events not a list", b'{"events": {"id": "x"}}', 422, "validation_failed"),
    ("no events", b'{"events": []}', 422, "validation_failed"),
    ("unknown top-level field", b'{"events": [], "dry_run": true}', 422, "validation_failed"),
]


@pytest.mark.parametrize("body,status,code", [(b, s, c) for _, b, s, c in BAD_BODIES],
                         ids=[name for name, _, _, _ in BAD_BODIES])
def test_a_malformed_usage_request_is_refused_in_the_error_envelope(api, tokens, pinned_clock, body, status, code):
    assert_error(api.http.post("/v1/usage", headers=bearer(tokens["usage"]), body=body), status, code)


def test_a_bare_json_number_too_large_for_any_quantity_is_rejected(api, org, tokens, pinned_clock, store):
    body = json.dumps({"events": [usage_event(org, "huge", quantity="__Q__")]}).replace('"__Q__"', "1e400")
    error = assert_error(api.http.post("/v1/usage", headers=bearer(tokens["usage"]), body=body), 422,
                         "all_events_rejected")
    assert error["details"]["results"][0]["error"]["code"] == "invalid_event"
    nothing_written(store, org, "huge")


def test_a_batch_of_501_events_is_refused_whole_and_writes_nothing(api, org, tokens, pinned_clock, store):
    # (batches of exactly 500 are accepted: the upcoming-invoice tests send their 1,000 events that way)
    events = [usage_event(org, f"big-{i}") for i in range(501)]

    error = assert_error(post_usage(api, tokens["usage"], events), 422, "validation_failed")

    assert error["details"]["fields"]
    nothing_written(store, org, "big-0", "big-250", "big-500")


def test_a_body_over_one_megabyte_is_refused(api, org, tokens, pinned_clock, store):
    filler = usage_event(org, "f", attributes={"note": "x" * 100})
    body = json.dumps({"events": [filler] * 400, "pad": "x" * 1_000_000})
    assert_error(api.http.post("/v1/usage", headers=bearer(tokens["usage"]), body=body), 413, "too_large")
    nothing_written(store, org, "f")


def test_a_usage_post_that_is_not_json_is_refused_in_the_error_envelope(api, org, tokens, pinned_clock, store):
    headers = {**bearer(tokens["usage"]), "Content-Type": "text/plain"}
    response = api.http.post("/v1/usage", headers=headers, body=json.dumps({"events": [usage_event(org, "t")]}))
    assert_error(response, 415)
    nothing_written(store, org, "t")


# ---- billing profiles ----

BAD_ORGS = [
    ("name missing", {"email": "a@example.com"}),
    ("name blank", {"name": "   ", "email": "a@example.com"}),
    ("name too long", {"name": "n" * 201, "email": "a@example.com"}),
    ("email malformed", {"name": "Acme", "email": "not-an-email"}),
    ("email missing", {"name": "Acme"}),
    ("currency not offered", {"name": "Acme", "email": "a@example.com", "currency": "eur"}),
    ("unknown field", {"name": "Acme", "email": "a@example.com", "plan": "gold"}),
    ("name not a string", {"name": 7, "email": "a@example.com"}),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_ORGS], ids=[n for n, _ in BAD_ORGS])
def test_an_invalid_billing_profile_is_refused_and_not_created(api, tokens, store, body):
    name = "new-org-that-must-not-exist"
    response = api.http.put(f"/v1/orgs/{name}", headers=bearer(tokens["admin"]), body=json.dumps(body))
    assert_error(response, 422, "validation_failed")
    assert not store.org_exists(name)


@pytest.mark.parametrize("path_org", ["Upper-Case", "-leading-dash", "o" * 64, "has_underscore"])
def test_an_org_id_outside_the_safe_alphabet_is_refused(api, tokens, store, path_org):
    response = api.http.put(f"/v1/orgs/{path_org}", headers=bearer(tokens["admin"]),
                            body=json.dumps({"name": "Acme", "email": "a@example.com"}))
    assert_error(response, 404, "not_found")
    from chalicelib.storage.models import OrgItem

    assert OrgItem.count(f"ORG#{path_org}") == 0


def test_a_malformed_billing_profile_body_is_refused(api, tokens, store):
    response = api.http.put("/v1/orgs/never-created", headers=bearer(tokens["admin"]), body=b'{"name": ')
    assert_error(response, 400, "invalid_json")
    assert not store.org_exists("never-created")


# ---- one-off items ----

@pytest.fixture
def draft(api, org, tokens, pinned_clock) -> str:
    response = post_usage(api, tokens["usage"], [usage_event(org, "draft-1", quantity="100")])
    assert response.status_code == 200, response.body
    return org


BAD_ITEMS = [
    ("amount zero", {"amount_cents": 0}),
    ("amount negative", {"amount_cents": -500}),
    ("amount fractional", {"amount_cents": 1.5}),
    ("amount as a string", {"amount_cents": "500"}),
    ("amount as a boolean", {"amount_cents": True}),
    ("amount absurdly large", {"amount_cents": 100_000_001}),
    ("kind unknown", {"kind": "refund"}),
    ("client id contains #", {"client_id": "c#LINE"}),
    ("client id too long", {"client_id": "c" * 101}),
    ("description blank", {"description": "  "}),
    ("description too long", {"description": "d" * 201}),
    ("unknown field", {"tax": 1}),
    ("client id missing", {"client_id": None}),
]


@pytest.mark.parametrize("changes", [c for _, c in BAD_ITEMS], ids=[n for n, _ in BAD_ITEMS])
def test_an_invalid_invoice_item_is_refused_and_adds_nothing(api, draft, tokens, store, changes):
    body = {"client_id": "item-1", "kind": "charge", "amount_cents": 500, "description": "setup fee"}
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    before = store.invoices(draft)

    response = api.http.post(f"/v1/orgs/{draft}/invoices/{NOV}/items", headers=bearer(tokens["admin"]),
                             body=json.dumps(body))

    assert_error(response, 422, "validation_failed")
    assert store.invoices(draft) == before


def test_an_item_for_an_invoice_that_does_not_exist_is_404(api, org, tokens, store):
    body = {"client_id": "item-1", "kind": "charge", "amount_cents": 500, "description": "setup fee"}
    response = api.http.post(f"/v1/orgs/{org}/invoices/inv_209901/items", headers=bearer(tokens["admin"]),
                             body=json.dumps(body))
    assert_error(response, 404, "not_found")
    assert store.invoices(org) == {}


@pytest.mark.parametrize("action", ["finalize", "void"])
def test_lifecycle_actions_on_unknown_or_malformed_invoice_ids_are_404(api, draft, tokens, store, action):
    before = store.invoices(draft)
    for invoice_id in ("inv_209901", "inv%23202611", "-bad", "x" * 101):
        response = api.http.post(f"/v1/orgs/{draft}/invoices/{invoice_id}/{action}",
                                 headers=bearer(tokens["admin"]))
        assert_error(response, 404, "not_found")
    assert store.invoices(draft) == before


def test_reading_an_unknown_invoice_or_org_is_404(api, org, tokens):
    admin = bearer(tokens["admin"])
    assert_error(api.http.get(f"/v1/orgs/{org}/invoices/inv_209901", headers=admin), 404, "not_found")
    assert_error(api.http.get("/v1/orgs/no-such-org-here", headers=admin), 404, "not_found")
    assert_error(api.http.get("/v1/orgs/no-such-org-here/invoices/upcoming", headers=admin), 404, "not_found")


# ---- query parameters ----

def cursor_of(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize("cursor", [
    "not-a-cursor", "%%%", cursor_of(["after"]), cursor_of({"before": "inv_202611"}), cursor_of({"after": 5}),
    cursor_of({"after": "inv#202611"}), cursor_of({"after": ""}), base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_a_cursor_this_api_did_not_issue_is_refused(api, org, tokens, cursor):
    response = api.http.get(f"/v1/orgs/{org}/invoices?cursor={cursor}", headers=bearer(tokens["admin"]))
    assert_error(response, 422)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "", "%C2%B2", "1e2"])
def test_a_page_size_outside_1_to_100_is_refused(api, org, tokens, limit):
    response = api.http.get(f"/v1/orgs/{org}/invoices?limit={limit}", headers=bearer(tokens["admin"]))
    assert_error(response, 422, "validation_failed")


@pytest.mark.parametrize("query", [
    "from=2026-13&to=2026-12", "from=2026-00&to=2026-12", "from=2026-1&to=2026-12", "from=26-01&to=2026-12",
    "from=2026-01-01&to=2026-12", "from=2026-06&to=2026-01", "from=2016-01&to=2026-01", "from=2026-01",
    "to=2026-01", "", "from=&to=",
])
def test_a_report_with_bad_months_is_refused(api, tokens, query):
    response = api.http.get(f"/v1/reports/monthly-totals?{query}", headers=bearer(tokens["admin"]))
    assert_error(response, 422)


def test_a_report_for_a_malformed_org_is_refused(api, tokens):
    response = api.http.get("/v1/reports/monthly-totals?from=2026-01&to=2026-02&org=BAD%23ORG",
                            headers=bearer(tokens["admin"]))
    assert_error(response, 404, "not_found")
