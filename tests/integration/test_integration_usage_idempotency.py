"""Producers retry: a batch sent twice, repeated ids, and batches with some bad events."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from acceptance_support import bearer, post_usage, stored_buckets, usage_event

from chalicelib.domain.periods import parse_utc

D = Decimal
NOV = "inv_202611"


def test_posting_the_same_batch_twice_changes_nothing_and_answers_duplicate_per_event(api, org, tokens, pinned_clock,
                                                                                      store):
    events = [usage_event(org, f"dup-{i}", quantity=f"1.{i}", region="iad" if i % 2 else "nrt") for i in range(6)]
    first = post_usage(api, tokens["usage"], events)
    assert first.status_code == 200, first.body
    assert first.json_body["counts"] == {"accepted": 6, "duplicate": 0, "conflict": 0, "rejected": 0}
    stored_before = store.lines(org, NOV)
    upcoming_before = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=bearer(tokens["admin"])).json_body

    second = post_usage(api, tokens["usage"], events)

    assert second.status_code == 200, second.body
    assert second.json_body["counts"] == {"accepted": 0, "duplicate": 6, "conflict": 0, "rejected": 0}
    for was, now in zip(first.json_body["results"], second.json_body["results"], strict=True):
        assert now["status"] == "duplicate"
        assert (now["id"], now["invoice_id"], now["line_id"]) == (was["id"], NOV, was["line_id"])
    assert store.lines(org, NOV) == stored_before
    assert sum(line.quantity for line in stored_before.values()) == D("7.5")
    assert sum(line.event_count for line in stored_before.values()) == 6
    upcoming_after = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=bearer(tokens["admin"])).json_body
    assert upcoming_after["lines"] == upcoming_before["lines"]
    assert upcoming_after["total"] == upcoming_before["total"]


def test_a_batch_with_some_invalid_events_applies_the_valid_ones_and_rejects_each_other_with_a_reason(
        api, org, tokens, pinned_clock, store):
    events = [
        usage_event(org, "ok-1", quantity="2"),
        usage_event(org, "bad-meter", meter="teleportation"),
        usage_event(org, "bad-qty", quantity="-1"),
        usage_event(org, "bad-region", region="mars"),
        usage_event(org, "bad-future", timestamp="2026-11-15T12:05:01Z"),
        usage_event(org, "bad-old", timestamp="2026-10-11T11:59:59Z"),
        usage_event("org-that-does-not-exist", "bad-org"),
        {"id": "bad-shape", "org": org},
        usage_event(org, "ok-2", quantity="3"),
    ]
    response = post_usage(api, tokens["usage"], events)

    assert response.status_code == 200, response.body
    assert response.json_body["counts"] == {"accepted": 2, "duplicate": 0, "conflict": 0, "rejected": 7}
    results = response.json_body["results"]
    assert [r["index"] for r in results] == list(range(len(events)))
    assert [r["id"] for r in results] == [e["id"] for e in events]
    codes = {r["id"]: (r["status"], (r["error"] or {}).get("code")) for r in results}
    assert codes == {
        "ok-1": ("accepted", None),
        "bad-meter": ("rejected", "unknown_meter"),
        "bad-qty": ("rejected", "invalid_event"),
        "bad-region": ("rejected", "unknown_region"),
        "bad-future": ("rejected", "timestamp_in_future"),
        "bad-old": ("rejected", "timestamp_too_old"),
        "bad-org": ("rejected", "unknown_org"),
        "bad-shape": ("rejected", "invalid_event"),
        "ok-2": ("accepted", None),
    }
    assert all(r["error"]["message"] for r in results if r["status"] == "rejected")
    lines = store.lines(org, NOV)
    assert [(line.quantity, line.event_count) for line in lines.values()] == [(D(5), 2)]
    for rejected in ("bad-meter", "bad-qty", "bad-region", "bad-future", "bad-old", "bad-shape"):
        assert not store.dedup_exists(org, rejected)


def test_an_id_repeated_inside_one_batch_counts_once_and_the_repeats_answer_duplicate(api, org, tokens,
                                                                                     pinned_clock, store):
    events = [usage_event(org, "same", quantity="2"), usage_event(org, "other", quantity="3"),
              usage_event(org, "same", quantity="2"), usage_event(org, "same", quantity="2")]
    response = post_usage(api, tokens["usage"], events)

    assert response.status_code == 200, response.body
    results = response.json_body["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted", "duplicate", "duplicate"]
    assert {r["invoice_id"] for r in results} == {NOV}
    assert results[2]["line_id"] == results[3]["line_id"] == results[0]["line_id"]
    assert response.json_body["counts"] == {"accepted": 2, "duplicate": 2, "conflict": 0, "rejected": 0}
    [line] = store.lines(org, NOV).values()
    assert (line.quantity, line.event_count) == (D(5), 2)


def test_the_same_event_id_in_two_orgs_is_two_events(api, org, make_org, tokens, pinned_clock, store):
    other = make_org()
    response = post_usage(api, tokens["usage"], [usage_event(org, "shared-id", quantity="4"),
                                                 usage_event(other, "shared-id", quantity="6")])

    assert response.json_body["counts"] == {"accepted": 2, "duplicate": 0, "conflict": 0, "rejected": 0}
    assert [line.quantity for line in store.lines(org, NOV).values()] == [D(4)]
    assert [line.quantity for line in store.lines(other, NOV).values()] == [D(6)]


def test_resending_a_partly_rejected_batch_counts_only_what_was_not_counted(api, org, tokens, pinned_clock, store):
    batch = [usage_event(org, "a", quantity="1"), usage_event(org, "b", meter="nope"),
             usage_event(org, "c", quantity="2")]
    post_usage(api, tokens["usage"], batch)
    batch[1] = usage_event(org, "b", quantity="4")  # the producer fixed the bad event and retries everything

    response = post_usage(api, tokens["usage"], batch)

    assert [r["status"] for r in response.json_body["results"]] == ["duplicate", "accepted", "duplicate"]
    [line] = store.lines(org, NOV).values()
    assert (line.quantity, line.event_count) == (D(7), 3)


def test_an_id_resent_with_other_content_is_answered_conflict_with_what_differs_and_changes_nothing(
        api, org, tokens, pinned_clock, store):
    first = post_usage(api, tokens["usage"], [usage_event(org, "resent", quantity="5")])
    assert first.json_body["results"][0]["status"] == "accepted"

    second = post_usage(api, tokens["usage"], [usage_event(org, "resent", quantity="500")])

    assert second.status_code == 200, second.body
    [result] = second.json_body["results"]
    assert result["status"] == "conflict"
    assert result["error"]["code"] == "conflict"
    assert result["error"]["message"]
    assert result["error"]["details"] == {"differs": ["quantity"]}
    assert (result["invoice_id"], result["line_id"]) == (NOV, first.json_body["results"][0]["line_id"])
    assert second.json_body["counts"] == {"accepted": 0, "duplicate": 0, "conflict": 1, "rejected": 0}
    [line] = store.lines(org, NOV).values()
    assert (line.quantity, line.event_count) == (D(5), 1)


def test_a_resend_names_every_field_that_differs(api, org, tokens, pinned_clock):
    post_usage(api, tokens["usage"], [usage_event(org, "moved", app="web", region="iad",
                                                  timestamp="2026-11-15T11:00:00Z")])

    response = post_usage(api, tokens["usage"], [usage_event(org, "moved", app="api", region="fra",
                                                             timestamp="2026-11-15T11:00:01Z")])

    [result] = response.json_body["results"]
    assert result["status"] == "conflict"
    assert result["error"]["details"]["differs"] == ["app", "region", "timestamp"]


def test_a_resend_written_differently_but_meaning_the_same_is_a_duplicate(api, org, tokens, pinned_clock):
    post_usage(api, tokens["usage"], [usage_event(org, "same-meaning", quantity="5", timestamp="2026-11-15T11:00:00Z",
                                                  meter="machine_runtime",
                                                  attributes={"preset": "shared-cpu-1x", "memory_mb": "512"})])

    response = post_usage(api, tokens["usage"], [
        usage_event(org, "same-meaning", quantity="5.000", timestamp="2026-11-15T12:00:00+01:00",
                    meter="machine_runtime", attributes={"memory_mb": "512", "preset": "shared-cpu-1x"})])

    [result] = response.json_body["results"]
    assert result["status"] == "duplicate", result


def test_an_id_repeated_inside_one_batch_with_other_content_is_answered_conflict(api, org, tokens, pinned_clock,
                                                                               store):
    events = [usage_event(org, "twice", quantity="2"), usage_event(org, "twice", quantity="2"),
              usage_event(org, "twice", quantity="3")]

    response = post_usage(api, tokens["usage"], events)

    results = response.json_body["results"]
    assert [r["status"] for r in results] == ["accepted", "duplicate", "conflict"]
    assert results[2]["error"]["details"] == {"differs": ["quantity"]}
    assert response.json_body["counts"] == {"accepted": 1, "duplicate": 1, "conflict": 1, "rejected": 0}
    [line] = store.lines(org, NOV).values()
    assert (line.quantity, line.event_count) == (D(2), 1)


def test_a_dedup_record_written_before_digests_were_kept_matches_any_resend(api, org, tokens, pinned_clock, store):
    from chalicelib.storage import keys
    from chalicelib.storage.models import EventRecord

    first = post_usage(api, tokens["usage"], [usage_event(org, "old-record", quantity="5")])
    line_id = first.json_body["results"][0]["line_id"]
    # As the table held it before content digests: the landing place only.
    EventRecord(keys.event_pk(org, "old-record"), keys.EVENT_SK, invoice_id=NOV, line_id=line_id,
                expires_at=4102444800).save()

    response = post_usage(api, tokens["usage"], [usage_event(org, "old-record", quantity="500")])

    [result] = response.json_body["results"]
    assert (result["status"], result["invoice_id"], result["line_id"]) == ("duplicate", NOV, line_id)


def test_the_largest_batch_over_many_lines_days_and_one_busy_line_counts_each_event_once(api, org, tokens,
                                                                                        pinned_clock, store):
    """500 events: 300 on one line over two weeks (more than one transaction holds, so its transactions run one
    after the other) and 200 on lines of their own (their transactions run at the same time). Each event also
    adds to its line's bucket for its day, one more action in the transaction: chunks shrink so that none
    passes DynamoDB's 100."""
    regions = ("iad", "sjc", "fra", "nrt", "gru", "syd", "jnb", "bom")
    busy = [usage_event(org, f"busy-{i}", quantity="1.5", timestamp=f"2026-11-{1 + i % 14:02d}T{i % 12:02d}:00:00Z")
            for i in range(300)]
    spread = [usage_event(org, f"spread-{i}", app=f"app{i // 8:02d}", region=regions[i % 8], quantity="2")
              for i in range(200)]

    first = post_usage(api, tokens["usage"], busy + spread)
    again = post_usage(api, tokens["usage"], spread[:100] + busy[:200] + spread[100:] + busy[200:])

    assert first.json_body["counts"] == {"accepted": 500, "duplicate": 0, "conflict": 0, "rejected": 0}
    assert again.json_body["counts"] == {"accepted": 0, "duplicate": 500, "conflict": 0, "rejected": 0}
    lines = store.lines(org, NOV)
    assert len(lines) == 201
    busy_line = lines[first.json_body["results"][0]["line_id"]]
    assert (busy_line.quantity, busy_line.event_count) == (D(450), 300)
    assert sum(line.quantity for line in lines.values()) == D(450) + D(400)
    assert all(line.event_count == 1 for line in lines.values() if line is not busy_line)
    view = api.http.get(f"/v1/orgs/{org}/invoices/{NOV}", headers=bearer(tokens["admin"])).json_body
    [busy_view] = [line for line in view["lines"] if line["id"] == busy_line.id]
    moments = sorted(event["timestamp"] for event in busy)
    assert (busy_view["first_usage_at"], busy_view["last_usage_at"]) == (
        moments[0].replace("Z", ".000000Z"), moments[-1].replace("Z", ".000000Z"))

    # The buckets hold each event once: the busy line's by day and hour, every other line's in its one hour.
    expected: dict[tuple[str, str, datetime], Decimal] = defaultdict(Decimal)
    for event, result in zip(busy + spread, first.json_body["results"], strict=True):
        expected[(NOV, result["line_id"], parse_utc(event["timestamp"]))] += D(event["quantity"])
    assert stored_buckets(org, "2026-11") == expected
    assert len({hour.date() for (_, line_id, hour) in expected if line_id == busy_line.id}) == 14
