"""Invoice behaviour a sync relies on, driven through stripe-python."""

from __future__ import annotations

import pytest
import stripe
from emulator_support import lines


def test_lifecycle_gives_totals_number_and_transitions(client, customer, draft):
    assert draft.status == "draft" and draft.number is None
    assert draft.livemode is False and draft.id.startswith("in_")

    invoice = client.v1.invoices.add_lines(draft.id, params={
        "lines": [
            {"amount": 1250, "description": "API calls", "metadata": {"usage_id": "a"},
             "period": {"start": 1_700_000_000, "end": 1_700_003_600}},
            {"amount": 300, "description": "Storage"},
            {"price_data": {"currency": "usd", "product": "prod_x", "unit_amount": 7},
             "quantity": 3, "description": "Seats"},
        ],
        "invoice_metadata": {"period": "2024-01"},
    })
    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (1571, 1571, 1571)
    assert invoice.metadata["period"] == "2024-01"
    assert invoice.lines.total_count == 3

    finalized = client.v1.invoices.finalize_invoice(draft.id)
    assert finalized.status == "open"
    assert finalized.number == f"{customer.invoice_prefix}-0001"
    assert finalized.status_transitions.finalized_at is not None
    assert finalized.amount_due == 1571 and finalized.amount_remaining == 1571

    second = client.v1.invoices.create(params={"customer": customer.id})
    client.v1.invoices.add_lines(second.id, params={"lines": [{"amount": 5}]})
    assert client.v1.invoices.finalize_invoice(second.id).number == \
        f"{customer.invoice_prefix}-0002"

    paid = client.v1.invoices.pay(draft.id)
    assert paid.status == "paid"
    assert paid.amount_paid == 1571 and paid.amount_remaining == 0
    assert paid.status_transitions.paid_at is not None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(draft.id)


def test_lines_keep_order_metadata_and_period(client, draft):
    client.v1.invoices.add_lines(draft.id, params={"lines": lines(12)})
    first = client.v1.invoices.line_items.list(draft.id, params={"limit": 5})
    assert [line.description for line in first.data] == [f"usage {i}" for i in range(5)]
    assert first.has_more is True
    assert first.data[0].metadata["usage_id"] == "u0"
    assert first.data[0].period.start == 1_700_000_000
    assert first.data[0].id.startswith("il_")
    everything = list(first.auto_paging_iter())
    assert [line.metadata["usage_id"] for line in everything] == [f"u{i}" for i in range(12)]
    # The invoice object itself carries only the first ten lines.
    invoice = client.v1.invoices.retrieve(draft.id)
    assert len(invoice.lines.data) == 10 and invoice.lines.has_more is True


def test_invoice_items_created_on_an_invoice_show_as_lines(client, customer, draft):
    item = client.v1.invoice_items.create(params={
        "customer": customer.id, "invoice": draft.id, "amount": 999, "currency": "usd",
        "description": "Overage", "metadata": {"usage_id": "x1"},
        "period": {"start": 1_700_000_000, "end": 1_700_086_400},
    })
    assert item.id.startswith("ii_") and item.invoice == draft.id
    listed = client.v1.invoice_items.list(params={"invoice": draft.id})
    assert [i.id for i in listed.data] == [item.id]
    line = client.v1.invoices.line_items.list(draft.id).data[0]
    assert line.amount == 999 and line.metadata["usage_id"] == "x1"
    assert line.parent.invoice_item_details.invoice_item == item.id
    assert client.v1.invoices.retrieve(draft.id).total == 999


def test_at_most_250_lines_and_nothing_applied_beyond(client, customer, draft):
    client.v1.invoices.add_lines(draft.id, params={"lines": lines(250)})
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.add_lines(draft.id, params={"lines": lines(1, start=250)})
    assert excinfo.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.create(params={"invoice": draft.id, "amount": 1})
    invoice = client.v1.invoices.retrieve(draft.id)
    assert invoice.lines.total_count == 250 and invoice.total == 25_000

    fresh = client.v1.invoices.create(params={"customer": customer.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.add_lines(fresh.id, params={"lines": lines(251)})
    assert client.v1.invoices.retrieve(fresh.id).lines.total_count == 0


def test_finalized_invoice_refuses_changes(client, draft):
    client.v1.invoices.add_lines(draft.id, params={"lines": lines(2)})
    client.v1.invoices.finalize_invoice(draft.id)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.add_lines(draft.id, params={"lines": lines(1)})
    assert excinfo.value.code == "invoice_not_editable"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.create(params={"invoice": draft.id, "amount": 1})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.finalize_invoice(draft.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.delete(draft.id)
    assert client.v1.invoices.retrieve(draft.id).total == 200

    voided = client.v1.invoices.void_invoice(draft.id)
    assert voided.status == "void" and voided.status_transitions.voided_at is not None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(draft.id)


def test_zero_amount_invoice_is_paid_when_finalized(client, draft):
    finalized = client.v1.invoices.finalize_invoice(draft.id)
    assert finalized.status == "paid" and finalized.amount_due == 0


def test_only_drafts_can_be_deleted(client, draft):
    client.v1.invoices.add_lines(draft.id, params={"lines": lines(1)})
    deleted = client.v1.invoices.delete(draft.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.retrieve(draft.id)
    assert excinfo.value.http_status == 404 and excinfo.value.code == "resource_missing"


def test_send_invoice_needs_days_until_due_and_sets_due_date(client, customer):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.create(params={"customer": customer.id,
                                          "collection_method": "send_invoice"})
    assert excinfo.value.param == "days_until_due"
    invoice = client.v1.invoices.create(params={
        "customer": customer.id, "collection_method": "send_invoice", "days_until_due": 30})
    client.v1.invoices.add_lines(invoice.id, params={"lines": lines(1)})
    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.due_date == finalized.status_transitions.finalized_at + 30 * 86400


def test_invoices_list_by_customer_newest_first_with_cursors(client, customer):
    other = client.v1.customers.create(params={"email": "other@example.com"})
    created = [client.v1.invoices.create(params={"customer": customer.id}).id
               for _ in range(7)]
    client.v1.invoices.create(params={"customer": other.id})
    newest_first = list(reversed(created))

    page1 = client.v1.invoices.list(params={"customer": customer.id, "limit": 3})
    assert [i.id for i in page1.data] == newest_first[:3] and page1.has_more
    page2 = client.v1.invoices.list(params={"customer": customer.id, "limit": 3,
                                            "starting_after": page1.data[-1].id})
    assert [i.id for i in page2.data] == newest_first[3:6] and page2.has_more
    page3 = client.v1.invoices.list(params={"customer": customer.id, "limit": 3,
                                            "starting_after": page2.data[-1].id})
    assert [i.id for i in page3.data] == newest_first[6:] and not page3.has_more
    back = client.v1.invoices.list(params={"customer": customer.id, "limit": 3,
                                           "ending_before": page2.data[0].id})
    assert [i.id for i in back.data] == newest_first[:3] and not back.has_more
    walked = client.v1.invoices.list(params={"customer": customer.id, "limit": 2})
    assert [i.id for i in walked.auto_paging_iter()] == newest_first
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.list(params={"customer": customer.id, "limit": 101})
    assert excinfo.value.param == "limit"


def test_customers_list_filters_by_email(client):
    wanted = [client.v1.customers.create(params={"email": "dup@example.com"}).id
              for _ in range(3)]
    client.v1.customers.create(params={"email": "else@example.com"})
    found = client.v1.customers.list(params={"email": "dup@example.com", "limit": 2})
    assert [c.id for c in found.data] == wanted[::-1][:2] and found.has_more
    assert [c.id for c in found.auto_paging_iter()] == wanted[::-1]
    assert client.v1.customers.retrieve(wanted[0]).email == "dup@example.com"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.customers.retrieve("cus_missing")
    assert excinfo.value.http_status == 404


def test_pending_items_are_pulled_in_only_when_asked(client, customer):
    pending = client.v1.invoice_items.create(params={"customer": customer.id, "amount": 40,
                                                     "currency": "usd"})
    assert pending.invoice is None
    excluded = client.v1.invoices.create(params={"customer": customer.id})
    assert excluded.lines.total_count == 0
    included = client.v1.invoices.create(params={
        "customer": customer.id, "pending_invoice_items_behavior": "include"})
    assert included.total == 40 and included.lines.data[0].parent.invoice_item_details \
        .invoice_item == pending.id
    assert client.v1.invoice_items.list(params={"pending": True}).data == []
