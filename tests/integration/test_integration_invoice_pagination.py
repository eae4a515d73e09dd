"""Listing an org's invoices: newest first, a page at a time, no duplicates or gaps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from acceptance_support import assert_error, bearer, post_usage, usage_event


def with_invoices(org: str, count: int) -> list[str]:
    """`count` monthly invoices from January 2401 on (far from any period the month-end job closes in
    these tests); returns their ids newest first."""
    from chalicelib.domain.periods import Period
    from chalicelib.storage.invoices import InvoiceRepository

    period, ids = Period(2401, 1), []
    for _ in range(count):
        ids.append(InvoiceRepository().create_draft(org, period, datetime(2025, 1, 1, tzinfo=UTC)).id)
        period = period.next()
    return ids[::-1]


def all_pages(api: Any, token: str, org: str, limit: int) -> list[dict[str, Any]]:
    pages, cursor = [], None
    for _ in range(100):
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = api.http.get(f"/v1/orgs/{org}/invoices?{query}", headers=bearer(token))
        assert response.status_code == 200, response.body
        pages.append(response.json_body)
        cursor = response.json_body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the cursor never ran out")


@pytest.mark.parametrize("count,limit,sizes", [(7, 3, [3, 3, 1]), (5, 2, [2, 2, 1]), (14, 100, [14])])
def test_pages_walk_every_invoice_once_newest_first(api, org, tokens, count, limit, sizes):
    ids = with_invoices(org, count)

    pages = all_pages(api, tokens["admin"], org, limit)

    assert [len(page["invoices"]) for page in pages] == sizes
    listed = [invoice["id"] for page in pages for invoice in page["invoices"]]
    assert listed == ids
    periods = [invoice["period"] for page in pages for invoice in page["invoices"]]
    assert periods == sorted(periods, reverse=True)


@pytest.mark.parametrize("count,limit", [(6, 3), (3, 1)])
def test_the_last_full_page_says_there_is_no_next_page(api, org, tokens, count, limit):
    ids = with_invoices(org, count)

    pages = all_pages(api, tokens["admin"], org, limit)

    assert [[invoice["id"] for invoice in page["invoices"]] for page in pages] == [
        ids[start:start + limit] for start in range(0, count, limit)]


def test_a_cursor_round_trip_continues_exactly_after_the_last_invoice_seen(api, org, tokens):
    ids = with_invoices(org, 5)
    first = api.http.get(f"/v1/orgs/{org}/invoices?limit=2", headers=bearer(tokens["admin"])).json_body
    cursor = first["next_cursor"]

    again = api.http.get(f"/v1/orgs/{org}/invoices?limit=2&cursor={cursor}", headers=bearer(tokens["admin"]))
    twice = api.http.get(f"/v1/orgs/{org}/invoices?limit=2&cursor={cursor}", headers=bearer(tokens["admin"]))

    assert [i["id"] for i in first["invoices"]] == ids[:2]
    assert [i["id"] for i in again.json_body["invoices"]] == ids[2:4]
    assert again.json_body == twice.json_body


def test_the_default_page_is_twenty_invoices(api, org, tokens):
    ids = with_invoices(org, 21)
    body = api.http.get(f"/v1/orgs/{org}/invoices", headers=bearer(tokens["admin"])).json_body
    assert [i["id"] for i in body["invoices"]] == ids[:20]
    assert body["next_cursor"] is not None


def test_a_page_never_holds_another_orgs_invoices(api, org, make_org, tokens, reader_token):
    with_invoices(make_org(), 3)
    ids = with_invoices(org, 2)
    body = api.http.get(f"/v1/orgs/{org}/invoices?limit=100", headers=bearer(reader_token)).json_body
    assert [i["id"] for i in body["invoices"]] == ids
    assert {i["org"] for i in body["invoices"]} == {org}


@pytest.mark.parametrize("limit", ["0", "101"])
def test_the_page_size_is_bounded(api, org, tokens, limit):
    assert_error(api.http.get(f"/v1/orgs/{org}/invoices?limit={limit}", headers=bearer(tokens["admin"])), 422,
                 "validation_failed")


def test_the_list_shows_each_invoice_with_the_figures_of_its_own_view(api, org, tokens, pinned_clock):
    # October finalized (frozen figures), November still a draft (priced live) with a credit on it.
    pinned_clock.now = datetime(2026, 10, 20, 12, tzinfo=UTC)
    assert post_usage(api, tokens["usage"], [usage_event(org, "oct", quantity="50",
                                                         timestamp="2026-10-20T11:00:00Z")]).status_code == 200
    pinned_clock.now = datetime(2026, 11, 15, 12, tzinfo=UTC)
    admin = bearer(tokens["admin"])
    assert api.http.post(f"/v1/orgs/{org}/invoices/inv_202610/finalize", headers=admin).status_code == 200
    assert post_usage(api, tokens["usage"], [
        usage_event(org, "nov-1", quantity="100"), usage_event(org, "nov-2", quantity="3", region="nrt"),
    ]).status_code == 200
    credit = {"client_id": "goodwill", "kind": "credit", "amount_cents": 50, "description": "Goodwill"}
    assert api.http.post(f"/v1/orgs/{org}/invoices/inv_202611/items", headers=admin,
                         body=json.dumps(credit)).status_code == 201

    listed = api.http.get(f"/v1/orgs/{org}/invoices", headers=admin).json_body["invoices"]

    assert [i["id"] for i in listed] == ["inv_202611", "inv_202610"]
    for summary in listed:
        view = api.http.get(f"/v1/orgs/{org}/invoices/{summary['id']}", headers=admin).json_body
        for field in ("status", "subtotal", "credits", "total", "line_count"):
            assert summary[field] == view[field], (summary["id"], field, summary[field], view[field])
    november = listed[0]
    assert (november["subtotal"]["cents"], november["credits"]["cents"], november["total"]["cents"]) == (212, 50, 162)
    assert listed[0]["line_count"] == 3
    assert (listed[1]["total"]["cents"], listed[1]["line_count"]) == (100, 1)
