"""Collection: what Stripe does with an invoice finalized with ``auto_advance=true``.

``send_invoice`` emails the invoice (``invoice.sent``) and waits for the customer to pay
on the hosted page. ``charge_automatically`` attempts a payment with the customer's card
on file at once; the test chooses the outcome per customer (by id or email):

* ``succeeds``: the invoice is paid (``invoice.paid``, ``invoice.payment_succeeded``);
* ``declines``: it stays open, ``attempt_count`` 1, the next attempt in 3 days
  (``invoice.payment_failed``);
* ``requires_action``: it stays open until the customer confirms the payment
  (``invoice.payment_action_required``).

Every finalized invoice gets a ``hosted_invoice_url`` and an ``invoice_pdf``. A finalize
is applied once (a second one is refused, an idempotent retry replays the first answer),
so an invoice is charged or sent at most once here, whatever the client retries.
"""

from __future__ import annotations

from typing import Any

from .store import Store

OUTCOMES = ("succeeds", "declines", "requires_action")
RETRY_AFTER_SECONDS = 3 * 86400  # Stripe's smart retries space attempts over days
HOSTED_BASE = "https://invoice.stripe.com/i/acct_emulator"
PDF_BASE = "https://pay.stripe.com/invoice/acct_emulator"


def check_outcome(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise ValueError(f"payment outcome must be one of {', '.join(OUTCOMES)}")
    return outcome


def outcome_for(store: Store, customer: dict[str, Any]) -> str:
    chosen = store.payment_outcomes.get(customer["id"]) or store.payment_outcomes.get(customer.get("email") or "")
    return chosen or store.default_payment_outcome


def publish_pages(invoice: dict[str, Any]) -> None:
    """Stripe's hosted page and PDF exist from finalization on."""
    token = invoice["id"].removeprefix("in_")
    invoice["hosted_invoice_url"] = f"{HOSTED_BASE}/test_{token}"
    invoice["invoice_pdf"] = f"{PDF_BASE}/test_{token}/pdf"


def advance(store: Store, invoice: dict[str, Any]) -> None:
    """Collect a just-finalized invoice that has something to collect and auto_advance on."""
    from . import invoices  # imported here: invoices imports this module

    if invoice["collection_method"] == "send_invoice":
        invoice["_sent_count"] = invoice.get("_sent_count", 0) + 1
        store.emit("invoice.sent", invoices.render(store, invoice))
        return
    outcome = outcome_for(store, store.customers[invoice["customer"]])
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    if outcome == "succeeds":
        invoices.mark_paid(store, invoice, attempted=False)
        store.emit("invoice.payment_succeeded", invoices.render(store, invoice))
    elif outcome == "declines":
        invoice["next_payment_attempt"] = store.now() + RETRY_AFTER_SECONDS
        store.emit("invoice.payment_failed", invoices.render(store, invoice))
    else:
        store.emit("invoice.payment_action_required", invoices.render(store, invoice))
