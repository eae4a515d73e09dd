"""Collection: an invoice finalized with auto_advance is charged or sent once, with the outcome the test chose
per customer and Stripe's events; enum values Stripe does not define are refused."""

from __future__ import annotations

import pytest
import stripe


def invoice_for(client: stripe.StripeClient, customer: stripe.Customer, method: str, amount: int = 1250,
                **extra: object) -> stripe.Invoice:
    params: dict[str, object] = {"customer": customer.id, "currency": "usd", "auto_advance": False,
                                 "collection_method": method, **extra}
    draft = client.v1.invoices.create(params=params)  # type: ignore[arg-type]
    client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": amount, "description": "usage"}]})
    return draft


def event_types(emulator, invoice_id: str) -> list[str]:
    return [e["type"] for e in emulator.events() if e["data"]["object"]["id"] == invoice_id]


def test_an_unknown_collection_method_is_refused_and_nothing_is_created(client, emulator, customer):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.create(params={"customer": customer.id, "collection_method": "by_carrier_pigeon"})
    assert excinfo.value.http_status == 400 and excinfo.value.param == "collection_method"
    assert emulator.state()["invoices"] == []
    # An enum that only adds "" (unset) to free text still takes any text.
    assert client.v1.customers.create(params={"business_name": "Acme Holdings"}).id


@pytest.mark.parametrize(("outcome", "status", "events"), [
    ("succeeds", "paid", ["invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]),
    ("declines", "open", ["invoice.finalized", "invoice.payment_failed"]),
    ("requires_action", "open", ["invoice.finalized", "invoice.payment_action_required"]),
])
def test_charge_automatically_charges_once_with_the_chosen_outcome(client, emulator, customer, outcome, status,
                                                                   events):
    emulator.set_payment_outcome(outcome, customer=customer.email)
    draft = invoice_for(client, customer, "charge_automatically")
    finalized = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": True},
                                                    options={"idempotency_key": f"finalize-{draft.id}"})
    assert (finalized.status, finalized.attempt_count, finalized.auto_advance) == (status, 1, True)
    assert finalized.hosted_invoice_url and finalized.invoice_pdf
    # A retry of the same request replays; a new finalize is refused: the card is charged once.
    again = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": True},
                                                options={"idempotency_key": f"finalize-{draft.id}"})
    assert again.attempt_count == 1
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": True})
    assert event_types(emulator, draft.id) == events


def test_send_invoice_is_sent_once_and_waits_for_the_customer(client, emulator, customer):
    draft = invoice_for(client, customer, "send_invoice", days_until_due=30)
    finalized = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": True})
    assert (finalized.status, finalized.attempt_count, finalized.days_until_due) == ("open", 0, 30)
    assert finalized.due_date == finalized.status_transitions.finalized_at + 30 * 86400
    assert event_types(emulator, draft.id) == ["invoice.finalized", "invoice.sent"]


def test_without_auto_advance_nothing_is_collected(client, emulator, customer):
    emulator.set_payment_outcome("succeeds")
    draft = invoice_for(client, customer, "charge_automatically")
    finalized = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    assert (finalized.status, finalized.attempt_count) == ("open", 0)
    assert event_types(emulator, draft.id) == ["invoice.finalized"]


def test_outcomes_are_chosen_per_customer_by_id_or_email(client, emulator):
    declined = client.v1.customers.create(params={"email": "declined@example.com"})
    charged = client.v1.customers.create(params={"email": "charged@example.com"})
    emulator.set_payment_outcome("declines", customer=declined.id)
    with pytest.raises(ValueError):
        emulator.set_payment_outcome("sometimes")
    statuses = {}
    for customer in (declined, charged):
        draft = invoice_for(client, customer, "charge_automatically")
        statuses[customer.email] = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": True}).status
    assert statuses == {"declined@example.com": "open", "charged@example.com": "paid"}
