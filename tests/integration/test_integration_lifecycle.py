"""Invoice lifecycle: finalize once, void, and the month-end finalizer with its grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from acceptance_support import assert_error, bearer, post_usage, usage_event

NOV = "inv_202611"


def finalize(api: Any, tokens: dict[str, str], org: str, invoice_id: str = NOV) -> Any:
    return api.http.post(f"/v1/orgs/{org}/invoices/{invoice_id}/finalize", headers=bearer(tokens["admin"]))


def void(api: Any, tokens: dict[str, str], org: str, invoice_id: str = NOV) -> Any:
    return api.http.post(f"/v1/orgs/{org}/invoices/{invoice_id}/void", headers=bearer(tokens["admin"]))


def org_month(api: Any, tokens: dict[str, str], org: str, month: str = "2026-11") -> dict[str, Any]:
    response = api.http.get(f"/v1/reports/monthly-totals?from={month}&to={month}&org={org}",
                            headers=bearer(tokens["admin"]))
    assert response.status_code == 200, response.body
    [row] = response.json_body["months"]
    return row


@pytest.fixture
def billed(api, org, tokens, pinned_clock) -> str:
    """November usage: 250 GB of egress in iad ($5.00)."""
    response = post_usage(api, tokens["usage"], [usage_event(org, "u1", quantity="150"),
                                                 usage_event(org, "u2", quantity="100")])
    assert response.status_code == 200, response.body
    return org


def test_finalize_freezes_the_total_and_a_second_finalize_is_a_conflict(api, billed, tokens, store):
    first = finalize(api, tokens, billed)
    assert first.status_code == 200, first.body
    assert (first.json_body["status"], first.json_body["total"]["cents"]) == ("finalized", 500)
    assert first.json_body["sync"]["state"] == "pending"
    before = store.invoices(billed)

    assert_error(finalize(api, tokens, billed), 409, "invalid_transition")

    assert store.invoices(billed) == before
    assert org_month(api, tokens, billed)["invoice_count"] == 1


def test_the_upcoming_invoice_no_longer_shows_a_finalized_invoice(api, billed, tokens):
    assert finalize(api, tokens, billed).status_code == 200
    body = api.http.get(f"/v1/orgs/{billed}/invoices/upcoming", headers=bearer(tokens["admin"])).json_body
    assert (body["status"], body["lines"], body["total"]["cents"]) == ("draft", [], 0)


def test_voiding_a_finalized_invoice_takes_it_out_of_the_month_totals(api, billed, tokens, store):
    assert finalize(api, tokens, billed).status_code == 200
    assert org_month(api, tokens, billed) == {"period": "2026-11", "invoice_count": 1, "subtotal_cents": 500,
                                              "credits_cents": 0, "total_cents": 500}

    response = void(api, tokens, billed)

    assert response.status_code == 200, response.body
    assert response.json_body["status"] == "void"
    assert response.json_body["voided_at"]
    assert org_month(api, tokens, billed) == {"period": "2026-11", "invoice_count": 0, "subtotal_cents": 0,
                                              "credits_cents": 0, "total_cents": 0}
    before = store.invoices(billed)
    assert_error(void(api, tokens, billed), 409, "invalid_transition")
    assert_error(finalize(api, tokens, billed), 409, "invalid_transition")
    assert store.invoices(billed) == before
    assert org_month(api, tokens, billed)["invoice_count"] == 0


def test_voiding_a_draft_leaves_the_month_totals_alone_and_closes_it_to_usage(api, billed, tokens, store):
    response = void(api, tokens, billed)
    assert response.status_code == 200, response.body
    assert org_month(api, tokens, billed)["invoice_count"] == 0

    late = post_usage(api, tokens["usage"], [usage_event(billed, "after-void", quantity="1")])

    assert late.status_code == 200, late.body
    [result] = late.json_body["results"]
    assert (result["status"], result["invoice_id"], result["late"]) == ("accepted", "inv_202612", True)
    assert sum(line.quantity for line in store.lines(billed, NOV).values()) == 250


def drafts_for(org: str, periods: list[str], now: datetime) -> None:
    from chalicelib.domain.lines import LineKind
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.storage.invoices import InvoiceRepository

    for period in periods:
        invoice = InvoiceRepository().create_draft(org, Period.parse(period), now)
        InvoiceService().add_item(org, invoice.id, f"fee-{period}", LineKind.ONE_OFF, 1000, "Platform fee", now)


def run_month_end(api: Any) -> list[str]:
    response = api.lambda_.invoke("finalize_month", api.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    return response.payload["finalized"]


def test_the_month_end_finalizer_waits_out_the_grace_and_leaves_the_current_period_open(
        api, org_on_own_table, pinned_clock, store):
    from chalicelib.config import settings

    org = org_on_own_table  # the only org of its table, so the job's answers are exactly its invoices

    assert settings().finalize_grace == timedelta(hours=1)
    drafts_for(org, ["2026-01", "2026-02"], datetime(2026, 1, 20, tzinfo=UTC))

    pinned_clock.now = datetime(2026, 2, 1, 0, 59, 59, tzinfo=UTC)
    assert run_month_end(api) == []
    assert {k: v.status for k, v in store.invoices(org).items()} == {"inv_202601": "draft", "inv_202602": "draft"}

    pinned_clock.now = datetime(2026, 2, 1, 1, 0, 1, tzinfo=UTC)
    assert run_month_end(api) == [f"{org}/inv_202601"]
    invoices = store.invoices(org)
    assert {k: v.status for k, v in invoices.items()} == {"inv_202601": "finalized", "inv_202602": "draft"}
    assert invoices["inv_202601"].total_cents == 1000
    # The month it closed now has its rollup item in every shard, so finance reports read a fixed number.
    from chalicelib.storage import keys
    from chalicelib.storage.models import RollupItem

    closed = [RollupItem.get(keys.rollup_shard_pk(shard), keys.month_sk("2026-01"), consistent_read=True)
              for shard in range(keys.ROLLUP_SHARDS)]
    assert sum(item.invoice_count for item in closed) == 1

    assert run_month_end(api) == []


def test_the_month_end_finalizer_finishes_an_invoice_a_crash_left_finalizing(api, org_on_own_table, tokens,
                                                                             pinned_clock, monkeypatch, store):
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.storage.invoices import InvoiceRepository

    org = org_on_own_table
    drafts_for(org, ["2026-03"], datetime(2026, 3, 5, tzinfo=UTC))

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the function timed out")

    with monkeypatch.context() as patch:
        patch.setattr(InvoiceRepository, "freeze_lines", crash)
        with pytest.raises(RuntimeError):
            InvoiceService().finalize(org, "inv_202603", datetime(2026, 3, 31, 23, tzinfo=UTC))
    assert store.invoices(org)["inv_202603"].status == "finalizing"

    pinned_clock.now = datetime(2026, 3, 10, tzinfo=UTC)  # mid-period: only the interrupted one is due
    assert run_month_end(api) == [f"{org}/inv_202603"]

    invoice = store.invoices(org)["inv_202603"]
    assert (invoice.status, invoice.total_cents) == ("finalized", 1000)
    assert [line.amount_cents for line in invoice.lines.values()] == [1000]
    assert org_month(api, tokens, org, "2026-03")["invoice_count"] == 1
    assert run_month_end(api) == []
    assert org_month(api, tokens, org, "2026-03")["invoice_count"] == 1
