"""Usage for a closed period is not lost: it is billed on the next open invoice as a labelled
late-usage line, at the closed period's price, with what its period left of the free allowance."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from acceptance_support import bearer, post_usage, usage_event

D = Decimal
NOV, DEC = "inv_202611", "inv_202612"


@pytest.fixture
def december_prices(monkeypatch) -> None:
    """A price change on 1 December: egress in North America & Europe goes from $0.02 to $0.03 per GB."""
    from chalicelib.domain import pricebook
    from chalicelib.domain.catalog import EgressGroup

    december = dataclasses.replace(
        pricebook.PRICE_BOOK_2026, version="2026-12", effective_from=date(2026, 12, 1),
        egress_per_gb={**pricebook.PRICE_BOOK_2026.egress_per_gb, EgressGroup.NORTH_AMERICA_EUROPE: D("0.03")})
    book = (pricebook.PRICE_BOOK_2026, december)
    monkeypatch.setattr(pricebook.quote, "__defaults__", (book,))


@pytest.fixture
def closed_november(api, org, tokens, pinned_clock, december_prices) -> dict[str, Any]:
    """November billed and finalized: 100 GB of egress in iad and 10 GB-months of snapshots (free)."""
    pinned_clock.now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    response = post_usage(api, tokens["usage"], [
        usage_event(org, "nov-egress", quantity="100", timestamp="2026-11-20T10:00:00Z"),
        usage_event(org, "nov-snap", meter="snapshot_storage", quantity="7200", timestamp="2026-11-20T10:00:00Z"),
    ])
    assert response.status_code == 200, response.body
    pinned_clock.now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    finalized = api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/finalize", headers=bearer(tokens["admin"]))
    assert finalized.status_code == 200, finalized.body
    assert finalized.json_body["total"]["cents"] == 200
    return finalized.json_body


def test_usage_for_a_finalized_period_lands_on_the_next_invoice_as_a_labelled_late_line(
        api, org, tokens, pinned_clock, closed_november, store):
    pinned_clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)
    response = post_usage(api, tokens["usage"], [
        usage_event(org, "late-egress", quantity="50", timestamp="2026-11-29T23:00:00Z"),
        usage_event(org, "late-egress-2", quantity="50", timestamp="2026-11-30T23:59:59Z"),
    ])

    assert response.status_code == 200, response.body
    results = response.json_body["results"]
    assert {(r["status"], r["invoice_id"], r["late"]) for r in results} == {("accepted", DEC, True)}
    body = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=bearer(tokens["admin"])).json_body
    assert body["id"] == DEC
    [line] = body["lines"]
    assert line["kind"] == "late_usage" and line["late"] is True
    assert line["usage_period"] == "2026-11"
    assert "2026-11" in line["description"] and "late" in line["description"].lower()
    assert D(line["quantity"]) == 100
    assert line["event_count"] == 2


def test_late_usage_is_priced_at_its_own_period_price(api, org, tokens, pinned_clock, closed_november):
    pinned_clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)
    response = post_usage(api, tokens["usage"], [
        usage_event(org, "late", quantity="100", timestamp="2026-11-30T12:00:00Z"),
        usage_event(org, "current", quantity="100", timestamp="2026-12-02T12:00:00Z"),
    ])
    assert response.status_code == 200, response.body

    body = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=bearer(tokens["admin"])).json_body

    lines = {line["usage_period"]: line for line in body["lines"]}
    assert (lines["2026-11"]["kind"], lines["2026-12"]["kind"]) == ("late_usage", "usage")
    assert (D(lines["2026-11"]["unit_price"]["amount"]), lines["2026-11"]["price_version"]) == (D("0.02"), "2026-01")
    assert (D(lines["2026-12"]["unit_price"]["amount"]), lines["2026-12"]["price_version"]) == (D("0.03"), "2026-12")
    assert (lines["2026-11"]["amount"]["cents"], lines["2026-12"]["amount"]["cents"]) == (200, 300)
    assert body["total"]["cents"] == 500


def test_late_usage_consumes_what_its_own_period_left_of_the_free_allowance(api, org, tokens, pinned_clock,
                                                                           closed_november):
    pinned_clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)
    # November used its 10 free GB-months of snapshots but none of its 10 free certificates.
    response = post_usage(api, tokens["usage"], [
        usage_event(org, "late-snap", meter="snapshot_storage", quantity="7200", timestamp="2026-11-30T12:00:00Z"),
        usage_event(org, "late-cert", meter="certificate_single", quantity="4", region=None,
                    timestamp="2026-11-30T12:00:00Z"),
        usage_event(org, "dec-snap", meter="snapshot_storage", quantity="7200", timestamp="2026-12-02T12:00:00Z"),
        usage_event(org, "dec-cert", meter="certificate_single", quantity="12", region=None,
                    timestamp="2026-12-02T12:00:00Z"),
    ])
    assert response.status_code == 200, response.body

    body = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=bearer(tokens["admin"])).json_body

    lines = {(line["usage_period"], line["product"]): line for line in body["lines"]}
    free_and_cents = {key: (D(line["free_quantity"]), line["amount"]["cents"]) for key, line in lines.items()}
    assert free_and_cents == {
        ("2026-11", "Volume snapshots"): (D(0), 80),  # November's allowance was used up by its own invoice
        ("2026-11", "Single-host certificate"): (D(4), 0),  # within what November left
        ("2026-12", "Volume snapshots"): (D(7200), 0),  # December's own allowance, untouched by November's
        ("2026-12", "Single-host certificate"): (D(10), 20),
    }


def test_late_lines_of_one_period_share_what_it_left_in_order_of_use_across_invoices(
        api, org, tokens, pinned_clock, closed_november, store):
    admin = bearer(tokens["admin"])
    pinned_clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)
    first = post_usage(api, tokens["usage"], [
        usage_event(org, "late-x", app="x", meter="certificate_single", quantity="6", region=None,
                    timestamp="2026-11-30T10:00:00Z")])
    assert first.json_body["results"][0]["invoice_id"] == DEC
    pinned_clock.now = datetime(2027, 1, 1, 2, tzinfo=UTC)
    assert api.http.post(f"/v1/orgs/{org}/invoices/{DEC}/finalize", headers=admin).status_code == 200
    pinned_clock.now = datetime(2027, 1, 2, 9, tzinfo=UTC)

    # Two more November lines, billed in January: the one used first takes what is left of November's 10.
    second = post_usage(api, tokens["usage"], [
        usage_event(org, "late-y", app="y", meter="certificate_single", quantity="3", region=None,
                    timestamp="2026-11-30T22:00:00Z"),
        usage_event(org, "late-z", app="z", meter="certificate_single", quantity="3", region=None,
                    timestamp="2026-11-30T21:00:00Z"),
    ])
    assert {r["invoice_id"] for r in second.json_body["results"]} == {"inv_202701"}

    body = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=admin).json_body
    by_app = {line["app"]: (D(line["free_quantity"]), line["amount"]["cents"]) for line in body["lines"]}
    assert by_app == {"z": (D(3), 0), "y": (D(1), 20)}
    december = api.http.get(f"/v1/orgs/{org}/invoices/{DEC}", headers=admin).json_body
    assert [(D(line["free_quantity"]), line["amount"]["cents"]) for line in december["lines"]] == [(D(6), 0)]

    finalized = api.http.post(f"/v1/orgs/{org}/invoices/inv_202701/finalize", headers=admin).json_body
    assert finalized["total"]["cents"] == 20
    frozen = {line.id: line.amount_cents for line in store.lines(org, "inv_202701").values()}
    assert sorted(frozen.values()) == [0, 20]


def test_late_usage_leaves_the_finalized_invoice_untouched(api, org, tokens, pinned_clock, closed_november,
                                                           store):
    before = store.invoices(org)[NOV]
    pinned_clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)

    post_usage(api, tokens["usage"], [usage_event(org, "late", quantity="10", timestamp="2026-11-30T12:00:00Z")])

    assert store.invoices(org)[NOV] == before
    view = api.http.get(f"/v1/orgs/{org}/invoices/{NOV}", headers=bearer(tokens["admin"])).json_body
    assert (view["status"], view["total"]["cents"]) == ("finalized", closed_november["total"]["cents"])


def test_a_late_event_sent_again_is_a_duplicate_of_its_late_line(api, org, tokens, pinned_clock, closed_november,
                                                                 store):
    pinned_clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)
    events = [usage_event(org, "late-once", quantity="10", timestamp="2026-11-30T12:00:00Z")]
    first = post_usage(api, tokens["usage"], events).json_body["results"][0]

    again = post_usage(api, tokens["usage"], events).json_body["results"][0]

    assert (again["status"], again["invoice_id"], again["line_id"]) == ("duplicate", DEC, first["line_id"])
    assert [line.quantity for line in store.lines(org, DEC).values()] == [D(10)]


def test_an_already_counted_event_resent_after_its_period_closed_is_still_a_duplicate(
        api, org, tokens, pinned_clock, closed_november, store):
    pinned_clock.now = datetime(2026, 12, 3, 9, tzinfo=UTC)

    again = post_usage(api, tokens["usage"], [
        usage_event(org, "nov-egress", quantity="100", timestamp="2026-11-20T10:00:00Z")])

    assert again.status_code == 200, again.body
    [result] = again.json_body["results"]
    assert (result["status"], result["invoice_id"]) == ("duplicate", NOV)
    assert store.lines(org, DEC) == {}
