"""One-off charges and credits: idempotent by the client's id, never below zero, never on a closed invoice."""

from __future__ import annotations

import json
from typing import Any

import pytest
from acceptance_support import assert_error, bearer, post_usage, usage_event

NOV = "inv_202611"


@pytest.fixture
def draft(api, org, tokens, pinned_clock) -> str:
    """An org whose November draft holds 100 GB of egress in iad: $2.00."""
    response = post_usage(api, tokens["usage"], [usage_event(org, "usage-1", quantity="100")])
    assert response.status_code == 200, response.body
    return org


def add_item(api: Any, tokens: dict[str, str], org: str, client_id: str, kind: str, cents: int,
             description: str = "adjustment") -> Any:
    body = {"client_id": client_id, "kind": kind, "amount_cents": cents, "description": description}
    return api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/items", headers=bearer(tokens["admin"]),
                         body=json.dumps(body))


def total(api: Any, tokens: dict[str, str], org: str) -> int:
    return api.http.get(f"/v1/orgs/{org}/invoices/{NOV}", headers=bearer(tokens["admin"])).json_body["total"]["cents"]


def test_the_same_item_sent_twice_is_one_line_answered_201_then_200(api, draft, tokens, store):
    first = add_item(api, tokens, draft, "setup-fee", "charge", 1500, "Setup fee")
    second = add_item(api, tokens, draft, "setup-fee", "charge", 1500, "Setup fee")

    assert first.status_code == 201, first.body
    assert second.status_code == 200, second.body
    assert second.json_body["id"] == first.json_body["id"]
    assert second.json_body["amount"]["cents"] == 1500
    fixed = [line for line in store.lines(draft, NOV).values() if line.kind == "one_off"]
    assert [line.amount_cents for line in fixed] == [1500]
    assert total(api, tokens, draft) == 200 + 1500


def test_a_client_id_reused_for_another_amount_is_a_conflict(api, draft, tokens, store):
    assert add_item(api, tokens, draft, "fee-1", "charge", 1500).status_code == 201
    before = store.invoices(draft)

    assert_error(add_item(api, tokens, draft, "fee-1", "charge", 1600), 409, "conflict")
    assert_error(add_item(api, tokens, draft, "fee-1", "credit", 1500), 409, "conflict")

    assert store.invoices(draft) == before
    assert total(api, tokens, draft) == 200 + 1500


def test_a_credit_shows_on_the_invoice_and_reduces_its_total(api, draft, tokens):
    response = add_item(api, tokens, draft, "goodwill", "credit", 50, "Goodwill credit")

    assert response.status_code == 201, response.body
    assert response.json_body["amount"]["cents"] == -50
    body = api.http.get(f"/v1/orgs/{draft}/invoices/{NOV}", headers=bearer(tokens["admin"])).json_body
    assert (body["subtotal"]["cents"], body["credits"]["cents"], body["total"]["cents"]) == (200, 50, 150)


def test_a_credit_that_would_take_the_total_below_zero_is_refused(api, draft, tokens, store):
    before = store.invoices(draft)

    assert_error(add_item(api, tokens, draft, "too-much", "credit", 201), 409, "conflict")

    assert store.invoices(draft) == before
    assert add_item(api, tokens, draft, "exactly", "credit", 200).status_code == 201
    assert total(api, tokens, draft) == 0
    assert_error(add_item(api, tokens, draft, "one-more-cent", "credit", 1), 409, "conflict")


def test_items_on_a_finalized_invoice_are_refused(api, draft, tokens, store):
    assert add_item(api, tokens, draft, "before-close", "charge", 700).status_code == 201
    finalize = api.http.post(f"/v1/orgs/{draft}/invoices/{NOV}/finalize", headers=bearer(tokens["admin"]))
    assert finalize.status_code == 200, finalize.body
    before = store.invoices(draft)

    assert_error(add_item(api, tokens, draft, "after-close", "charge", 100), 409)
    assert_error(add_item(api, tokens, draft, "after-close-credit", "credit", 100), 409)

    assert store.invoices(draft) == before
    assert total(api, tokens, draft) == 900
    # A retry of an item the invoice already holds is still answered as the same item.
    replay = add_item(api, tokens, draft, "before-close", "charge", 700)
    assert replay.status_code == 200, replay.body
