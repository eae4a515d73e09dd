"""Subscriptions on DynamoDB Local: the draft carries the recurring line from the moment its period opens or
the plan changes, with no usage event; a change mid-period credits the unused old plan and charges the new,
to the second; a backdated change lands like late usage; finalize includes it and the month-end job opens
next month's draft with it; replays change nothing and bad input writes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from acceptance_support import assert_error, bearer
from test_integration_lifecycle import run_month_end

NOV, DEC = "inv_202611", "inv_202612"
NOV_SECONDS = 30 * 86400


def share(fee_cents: int, seconds: int, length: int = NOV_SECONDS) -> int:
    """The rule, written out independently: a plan held from the start earns fee * elapsed / length, half-up."""
    return int((Decimal(fee_cents) * seconds / length).quantize(Decimal(1), ROUND_HALF_UP))


def change(api: Any, token: str, org: str, change_id: str, plan: str, at: str | None = None) -> Any:
    body: dict[str, Any] = {"change_id": change_id, "plan": plan}
    if at:
        body["effective_at"] = at
    return api.http.post(f"/v1/orgs/{org}/subscriptions", headers=bearer(token), body=json.dumps(body))


def cancel(api: Any, token: str, org: str, change_id: str, at: str) -> Any:
    body = {"change_id": change_id, "family": "support", "effective_at": at}
    return api.http.post(f"/v1/orgs/{org}/subscriptions/cancel", headers=bearer(token), body=json.dumps(body))


def invoice(api: Any, token: str, org: str, invoice_id: str = "upcoming") -> dict[str, Any]:
    response = api.http.get(f"/v1/orgs/{org}/invoices/{invoice_id}", headers=bearer(token))
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def recurring(body: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {line["description"]: (line["kind"], line["amount"]["cents"]) for line in body["lines"]
            if line["kind"] in ("recurring", "late_recurring")}


def test_a_subscription_puts_its_monthly_fee_on_the_draft_without_any_usage_event(api, org, tokens, pinned_clock):
    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 15, 12, tzinfo=UTC)

    created = change(api, admin, org, "start", "support-standard", "2026-11-01T00:00:00Z")

    assert created.status_code == 201, created.body
    assert created.json_body["subscriptions"] == [{
        "family": "support", "plan": "support-standard", "name": "Support plan: standard",
        "monthly_fee": {"cents": 2900, "display": "$29.00"}, "since": "2026-11-01T00:00:00.000000Z"}]
    body = invoice(api, admin, org)
    assert body["id"] == NOV
    [line] = body["lines"]
    assert (line["kind"], line["category"], line["amount"]["cents"], line["late"]) == ("recurring", "support", 2900,
                                                                                       False)
    assert line["display_quantity"] == "1" and line["display_unit"] == "months"
    assert body["total"]["cents"] == 2900

    replay = change(api, admin, org, "start", "support-standard", "2026-11-01T00:00:00Z")
    assert replay.status_code == 200 and replay.json_body == created.json_body
    assert_error(change(api, admin, org, "start", "support-premium", "2026-11-01T00:00:00Z"), 409, "conflict")
    assert recurring(invoice(api, admin, org)) == {"Support plan: standard · 2026-11": ("recurring", 2900)}
    read = api.http.get(f"/v1/orgs/{org}/subscriptions", headers=bearer(admin)).json_body
    assert [c["change_id"] for c in read["changes"]] == ["start"] and read["version"] == 1


def test_an_upgrade_mid_month_credits_the_unused_old_plan_and_charges_the_new_one_to_the_second(
        api, org, tokens, pinned_clock):
    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 20, 15, tzinfo=UTC)
    assert change(api, admin, org, "start", "support-standard", "2026-11-01T00:00:00Z").status_code == 201

    upgraded = change(api, admin, org, "upgrade", "support-premium", "2026-11-20T14:03:05Z")

    assert upgraded.status_code == 201, upgraded.body
    elapsed = (19 * 24 + 14) * 3600 + 3 * 60 + 5
    assert recurring(invoice(api, admin, org)) == {
        "Support plan: standard · 2026-11": ("recurring", 2900),
        "Unused time on Support plan: standard from 2026-11-20 14:03:05 UTC (prorated)":
            ("recurring", -(2900 - share(2900, elapsed))),
        "Support plan: premium from 2026-11-20 14:03:05 UTC (prorated)": ("recurring", 19900 - share(19900, elapsed)),
    }
    assert invoice(api, admin, org)["total"]["cents"] == share(2900, elapsed) + 19900 - share(19900, elapsed)


def test_finalize_includes_the_recurring_lines_and_the_month_end_job_opens_next_months_draft_with_them(
        api, org_on_own_table, tokens, pinned_clock, store):
    org, admin = org_on_own_table, tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 10, tzinfo=UTC)
    assert change(api, admin, org, "start", "support-premium", "2026-11-10T00:00:00Z").status_code == 201
    charged = 19900 - share(19900, 9 * 86400)

    pinned_clock.now = datetime(2026, 12, 1, 1, 0, 1, tzinfo=UTC)  # the grace has passed
    assert run_month_end(api) == [f"{org}/{NOV}"]

    november = invoice(api, admin, org, NOV)
    assert november["status"] == "finalized" and november["total"]["cents"] == charged
    assert recurring(november) == {"Support plan: premium from 2026-11-10 00:00:00 UTC (prorated)":
                                   ("recurring", charged)}
    december = invoice(api, admin, org)
    assert december["id"] == DEC and december["status"] == "draft"
    assert recurring(december) == {"Support plan: premium · 2026-12": ("recurring", 19900)}
    assert {k: v.status for k, v in store.invoices(org).items()} == {NOV: "finalized", DEC: "draft"}


def test_a_change_backdated_into_a_finalized_period_lands_on_the_next_invoice_like_late_usage(
        api, org, tokens, pinned_clock):
    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 2, tzinfo=UTC)
    assert change(api, admin, org, "start", "support-standard", "2026-11-01T00:00:00Z").status_code == 201
    pinned_clock.now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    finalized = api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/finalize", headers=bearer(admin))
    assert finalized.status_code == 200 and finalized.json_body["total"]["cents"] == 2900

    pinned_clock.now = datetime(2026, 12, 3, tzinfo=UTC)
    assert change(api, admin, org, "upgrade", "support-premium", "2026-11-21T00:00:00Z").status_code == 201

    assert invoice(api, admin, org, NOV)["total"]["cents"] == 2900  # a finalized invoice never changes
    december = invoice(api, admin, org)
    late = {d: v for d, v in recurring(december).items() if v[0] == "late_recurring"}
    assert late == {
        "Late plan change for 2026-11: Unused time on Support plan: standard from 2026-11-21 00:00:00 UTC "
        "(prorated)": ("late_recurring", -(2900 - share(2900, 20 * 86400))),
        "Late plan change for 2026-11: Support plan: premium from 2026-11-21 00:00:00 UTC (prorated)":
            ("late_recurring", 19900 - share(19900, 20 * 86400)),
    }
    assert all(line["late"] and line["usage_period"] == "2026-11" for line in december["lines"]
               if line["kind"] == "late_recurring")
    assert recurring(december)["Support plan: premium · 2026-12"] == ("recurring", 19900)
    # Over both invoices, November cost exactly 20 days of standard and 10 of premium.
    november_total = 2900 + sum(amount for _, amount in late.values())
    assert november_total == share(2900, 20 * 86400) + 19900 - share(19900, 20 * 86400)


def test_bad_plan_changes_are_refused_and_write_nothing(api, org, tokens, pinned_clock, store):
    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 15, tzinfo=UTC)
    assert_error(change(api, admin, org, "a", "support-gold"), 422)
    assert_error(change(api, admin, org, "a", "support-standard", "2026-10-01T00:00:00Z"), 422)  # > 35 days ago
    assert_error(change(api, admin, org, "a", "support-standard", "2028-01-01T00:00:00Z"), 422)  # > a year ahead
    assert_error(change(api, admin, org, "a", "support-standard", "2026-11-01T00:00:00"), 422)  # no timezone
    assert_error(change(api, admin, org, "bad#id", "support-standard"), 422)
    unknown_family = {"change_id": "a", "family": "gold"}
    assert_error(api.http.post(f"/v1/orgs/{org}/subscriptions/cancel", headers=bearer(admin),
                               body=json.dumps(unknown_family)), 422)
    assert_error(change(api, tokens["usage"], org, "a", "support-standard"), 403)
    assert_error(change(api, admin, "no-such-org", "a", "support-standard"), 404)
    assert store.invoices(org) == {}
    read = api.http.get(f"/v1/orgs/{org}/subscriptions", headers=bearer(admin)).json_body
    assert read == {"org": org, "version": 0, "subscriptions": [], "changes": []}


def test_a_cancel_stops_the_fee_from_that_second_and_a_later_plan_starts_it_again(api, org, tokens, pinned_clock):
    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 25, tzinfo=UTC)
    assert change(api, admin, org, "start", "support-standard", "2026-11-01T00:00:00Z").status_code == 201
    assert cancel(api, admin, org, "stop", "2026-11-11T00:00:00Z").status_code == 201
    assert change(api, admin, org, "again", "support-standard", "2026-11-21T00:00:00Z").status_code == 201

    assert invoice(api, admin, org)["total"]["cents"] == share(2900, 10 * 86400) * 2
    read = api.http.get(f"/v1/orgs/{org}/subscriptions", headers=bearer(admin)).json_body
    assert [s["since"] for s in read["subscriptions"]] == ["2026-11-21T00:00:00.000000Z"]


def test_closing_a_month_early_keeps_next_months_draft_carrying_its_fee(api, org, tokens, pinned_clock):
    from chalicelib.config import settings
    from chalicelib.services.subscriptions import SubscriptionService

    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 15, tzinfo=UTC)
    assert change(api, admin, org, "start", "support-standard", "2026-11-01T00:00:00Z").status_code == 201
    SubscriptionService(settings()).materialize(org, datetime(2026, 12, 1, 0, 30, tzinfo=UTC))  # December opens
    assert recurring(invoice(api, admin, org, DEC)) == {"Support plan: standard · 2026-12": ("recurring", 2900)}

    pinned_clock.now = datetime(2026, 11, 30, 18, tzinfo=UTC)  # a finalize that runs as of an earlier moment
    closed = api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/finalize", headers=bearer(admin))

    assert closed.status_code == 200 and closed.json_body["total"]["cents"] == 2900
    assert recurring(invoice(api, admin, org, DEC)) == {"Support plan: standard · 2026-12": ("recurring", 2900)}
