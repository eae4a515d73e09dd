"""One contract, two implementations of `StripeInvoices`: the in-memory Stripe the sync rules are tested on,
and the real gateway (stripe-python) against the Stripe emulator.

What the sync relies on (chalicelib/services/ports.py): a customer and an invoice are found again by our
ids; lines go onto a draft only, and are read back by their keys; a finalized invoice is open for
collection, or paid when there is nothing to collect; only an open invoice is voided; a deleted draft is
gone. Stripe's refusals reach the sync as PermanentSyncError.

Left out on purpose: idempotency keys, which the fake does not replay (the sync must not rely on a key
Stripe forgets after 24 hours; and as Stripe, the emulator replays a refusal too, so no case here calls the
same thing twice); and what collection does after a finalize, which is Stripe's business (a card on file
may pay at once): the invoices here are sent, so finalized they wait, open, for the customer.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fakes.stripe_invoices import MemoryStripe

from chalicelib.domain.collection import Collection, CollectionMethod
from chalicelib.stripe.errors import PermanentSyncError
from chalicelib.stripe.lines import StripeLine

SENT = Collection.of(CollectionMethod.SEND_INVOICE, 30)
PERIOD = "2026-11"


@pytest.fixture(params=["memory", pytest.param("emulator", marks=pytest.mark.slow)])
def stripe(request: Any) -> Any:
    if request.param == "memory":
        return MemoryStripe()
    from chalicelib.stripe.gateway import StripeGateway

    emulator = request.getfixturevalue("stripe_server")
    emulator.reset()
    emulator.set_rate_limits(global_per_second=None, per_endpoint_per_second=None)
    return StripeGateway("sk_test_contract", emulator.base_url, max_network_retries=0)


@pytest.fixture
def org() -> str:
    return f"contract-{uuid.uuid4().hex[:10]}"


def _draft(stripe: Any, org: str, our_id: str = "inv_202611") -> tuple[str, Any]:
    customer = stripe.create_customer(org, "Contract Org", f"{org}@example.com")
    return customer, stripe.create_invoice(customer, org, our_id, "CON-0001", "usd", PERIOD, SENT)


def test_a_customer_is_found_by_its_org_and_email_and_no_other_org(stripe, org):
    assert stripe.find_customer(org, f"{org}@example.com") is None
    customer = stripe.create_customer(org, "Contract Org", f"{org}@example.com")
    assert stripe.find_customer(org, f"{org}@example.com") == customer
    assert stripe.find_customer(f"{org}-other", f"{org}@example.com") is None


def test_an_invoice_is_a_draft_found_again_by_our_ids(stripe, org):
    customer, invoice = _draft(stripe, org)
    assert (invoice.status, invoice.currency, invoice.total) == ("draft", "usd", 0)
    assert stripe.find_invoice(customer, org, "inv_202611").id == invoice.id
    assert stripe.find_invoice(customer, org, "inv_202612") is None
    assert stripe.retrieve_invoice(invoice.id).id == invoice.id


def test_lines_go_on_a_draft_and_are_read_back_by_their_keys(stripe, org):
    _, invoice = _draft(stripe, org)
    stripe.add_lines(invoice.id, org, "inv_202611", [StripeLine("line-a", 1250, "Machines"),
                                                       StripeLine("line-b", -250, "Credit")])
    stripe.add_lines(invoice.id, org, "inv_202611", [StripeLine("line-c", 7, "Egress")])
    assert stripe.line_keys(invoice.id) == {"line-a": 1250, "line-b": -250, "line-c": 7}
    assert stripe.retrieve_invoice(invoice.id).total == 1007


def test_a_finalized_invoice_is_open_for_collection_and_takes_no_more_lines(stripe, org):
    _, invoice = _draft(stripe, org)
    stripe.add_lines(invoice.id, org, "inv_202611", [StripeLine("line-a", 1250, "Machines")])
    final = stripe.finalize(invoice.id, org, "inv_202611")
    assert (final.status, final.total) == ("open", 1250)
    with pytest.raises(PermanentSyncError):
        stripe.add_lines(invoice.id, org, "inv_202611", [StripeLine("line-late", 5, "Late")])
    with pytest.raises(PermanentSyncError):
        stripe.delete_draft(invoice.id)
    assert stripe.line_keys(invoice.id) == {"line-a": 1250}


def test_an_invoice_with_nothing_to_collect_is_paid_when_finalized(stripe, org):
    _, invoice = _draft(stripe, org)
    stripe.add_lines(invoice.id, org, "inv_202611", [StripeLine("line-a", 500, "Machines"),
                                                       StripeLine("line-b", -500, "Credit applied")])
    assert stripe.finalize(invoice.id, org, "inv_202611").status == "paid"


def test_only_an_open_invoice_is_voided(stripe, org):
    customer, draft = _draft(stripe, org, "inv_202610")
    with pytest.raises(PermanentSyncError):
        stripe.void(draft.id, org, "inv_202610")
    assert stripe.retrieve_invoice(draft.id).status == "draft"
    invoice = stripe.create_invoice(customer, org, "inv_202611", "CON-0002", "usd", PERIOD, SENT)
    stripe.add_lines(invoice.id, org, "inv_202611", [StripeLine("line-a", 1250, "Machines")])
    stripe.finalize(invoice.id, org, "inv_202611")
    assert stripe.void(invoice.id, org, "inv_202611").status == "void"
    assert stripe.retrieve_invoice(invoice.id).status == "void"


def test_a_deleted_draft_is_gone(stripe, org):
    customer, invoice = _draft(stripe, org)
    stripe.delete_draft(invoice.id)
    assert stripe.retrieve_invoice_if_exists(invoice.id) is None
    assert stripe.find_invoice(customer, org, "inv_202611") is None
    with pytest.raises(PermanentSyncError):
        stripe.retrieve_invoice(invoice.id)


def test_an_invoice_for_an_unknown_customer_is_refused(stripe, org):
    with pytest.raises(PermanentSyncError):
        stripe.create_invoice("cus_nobody", org, "inv_202611", "CON-0001", "usd", PERIOD, SENT)
