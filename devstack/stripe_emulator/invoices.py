"""Invoices: the draft -> open -> paid/void/uncollectible lifecycle.

Modelled on the behaviour a sync depends on: drafts are the only editable
state, totals are integer sums of the line amounts, the number is assigned at
finalization from the customer's prefix and sequence, a zero-amount invoice
is marked paid as it is finalized, one finalized with ``auto_advance`` is
collected (``payments.py``), and each transition stamps ``status_transitions``
and emits the matching ``invoice.*`` event.
"""

from __future__ import annotations

from typing import Any

from . import customers, invoice_items, payments
from .errors import StripeError, invalid_request, no_such, param_error
from .store import Store, created_matches, live, merge_metadata, new_id, page

EMBEDDED_LINES = 10  # an invoice object carries the first 10 lines inline
DAY = 86400


def get(store: Store, invoice_id: str, *, param: str = "id",
        status: int = 404) -> dict[str, Any]:
    return live(store.invoices, "invoice", invoice_id, param=param, status=status)


def render(store: Store, invoice: dict[str, Any], *,
           all_lines: bool = False) -> dict[str, Any]:
    """The invoice as the API returns it, with totals from its lines."""
    lines = invoice_items.lines_of(store, invoice["id"])
    total = sum(line["amount"] for line in lines)
    # A negative total is owed to the customer, never collected.
    amount_due = max(total, 0)
    paid = amount_due if invoice["status"] == "paid" else 0
    settled = invoice["status"] in ("paid", "void")
    shown = lines if all_lines else lines[:EMBEDDED_LINES]
    out = dict(invoice)
    out.update({
        "subtotal": total, "subtotal_excluding_tax": total,
        "total": total, "total_excluding_tax": total,
        "amount_due": amount_due, "amount_paid": paid,
        "amount_remaining": 0 if settled else amount_due - paid,
        "lines": {"object": "list", "data": shown,
                  "has_more": len(shown) < len(lines), "total_count": len(lines),
                  "url": f"/v1/invoices/{invoice['id']}/lines"},
    })
    return out


def create(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    if "customer" not in params:
        raise param_error("Missing required param: customer.",
                          code="parameter_missing", param="customer")
    method = params.get("collection_method", "charge_automatically")
    if method == "send_invoice" and not ({"days_until_due", "due_date"} & params.keys()):
        raise param_error("Missing required param: days_until_due.",
                          code="parameter_missing", param="days_until_due")
    if method == "charge_automatically" and ({"days_until_due", "due_date"} & params.keys()):
        raise param_error(
            "You can only set `days_until_due` or `due_date` when "
            "`collection_method` is `send_invoice`.",
            code=None, param="days_until_due")
    metadata = merge_metadata({}, params.get("metadata"))
    with store.lock:
        customer = customers.get(store, params["customer"], param="customer", status=400)
        now = store.now()
        invoice = {
            "id": new_id("in"), "object": "invoice",
            "account_country": "US", "account_name": None,
            "amount_overpaid": 0, "amount_shipping": 0,
            "attempt_count": 0, "attempted": False,
            "auto_advance": params.get("auto_advance", False),
            "automatically_finalizes_at": None, "billing_reason": "manual",
            "collection_method": method, "created": now,
            "currency": params.get("currency", customer["currency"] or
                                   invoice_items.DEFAULT_CURRENCY).lower(),
            "custom_fields": None, "customer": customer["id"],
            "customer_email": customer["email"], "customer_name": customer["name"],
            "days_until_due": params.get("days_until_due"),
            "default_payment_method": None, "description": params.get("description"),
            "due_date": params.get("due_date"), "effective_at": None,
            "ending_balance": None, "footer": params.get("footer"),
            "hosted_invoice_url": None, "invoice_pdf": None,
            "last_finalization_error": None, "livemode": False,
            "metadata": metadata, "next_payment_attempt": None, "number": None,
            "parent": None, "period_end": now, "period_start": now,
            "starting_balance": 0, "statement_descriptor": params.get("statement_descriptor"),
            "status": "draft",
            "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None,
                                   "paid_at": None, "voided_at": None},
            "total_discount_amounts": [], "total_taxes": [],
            "webhooks_delivered_at": None,
            "_requested_number": params.get("number"),
            "_seq": store.next_seq(),
        }
        pending: list[dict[str, Any]] = []
        if params.get("pending_invoice_items_behavior") == "include":
            # The customer's pending items of the same currency, oldest first.
            pending = sorted((i for i in store.invoice_items.values()
                              if i["invoice"] is None and i["customer"] == customer["id"]
                              and i["currency"] == invoice["currency"]),
                             key=lambda i: i["_seq"])
            invoice_items.check_capacity(store, invoice["id"], len(pending))
        store.invoices[invoice["id"]] = invoice
        store.invoice_lines[invoice["id"]] = []
        for item in pending:
            invoice_items.attach(store, item, invoice["id"])
        return render(store, invoice)


def listing(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        found = [
            inv for inv in store.invoices.values()
            if not inv.get("deleted")
            and params.get("customer", inv["customer"]) == inv["customer"]
            and params.get("status", inv["status"]) == inv["status"]
            and params.get("collection_method", inv["collection_method"])
            == inv["collection_method"]
            and created_matches(inv["created"], params.get("created"))
        ]
        # Newest first; the sequence breaks ties within the same second.
        found.sort(key=lambda inv: (inv["created"], inv["_seq"]), reverse=True)
        result = page(found, params, "/v1/invoices", "invoice")
        result["data"] = [render(store, inv) for inv in result["data"]]
        return result


def add_lines(store: Store, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Add many lines in one call; all are applied or none is."""
    with store.lock:
        invoice = get(store, invoice_id)
        if invoice["status"] != "draft":
            raise invoice_items.not_editable(invoice)
        lines = params["lines"]
        invoice_items.check_capacity(store, invoice_id, len(lines))
        metadata = merge_metadata(invoice["metadata"], params.get("invoice_metadata"),
                                  "invoice_metadata")
        new_items: list[dict[str, Any]] = []
        for index, line in enumerate(lines):
            path = f"lines[{index}]"
            if "invoice_item" in line:
                claimed = _claim_item(store, invoice, line["invoice_item"], path)
                if claimed in new_items:
                    raise invalid_request(f"The invoice item {claimed['id']} is listed twice.",
                                          param=f"{path}[invoice_item]")
                new_items.append(claimed)
                continue
            price_currency = line.get("price_data", {}).get("currency", invoice["currency"])
            if price_currency.lower() != invoice["currency"]:
                raise invalid_request(
                    f"The currency of {path} ({price_currency}) must match the "
                    f"invoice currency ({invoice['currency']}).",
                    param=f"{path}[price_data][currency]")
            new_items.append(invoice_items.build_item(
                store, line, customer=invoice["customer"], currency=invoice["currency"],
                invoice=invoice_id, path=path, metadata_param=f"{path}[metadata]"))
        for item in new_items:
            invoice_items.attach(store, item, invoice_id)
        invoice["metadata"] = metadata
        return render(store, invoice)


def _claim_item(store: Store, invoice: dict[str, Any], item_id: str,
                path: str) -> dict[str, Any]:
    item = store.invoice_items.get(item_id)
    if item is None:
        raise no_such("invoiceitem", item_id, param=f"{path}[invoice_item]", status=400)
    if item["invoice"] is not None or item["customer"] != invoice["customer"]:
        raise invalid_request(
            f"The invoice item {item_id} is already on an invoice or belongs "
            "to another customer.", param=f"{path}[invoice_item]")
    return item


def list_lines(store: Store, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        get(store, invoice_id)
        # Lines are listed in the order they were added.
        lines = invoice_items.lines_of(store, invoice_id)
        return page(lines, params, f"/v1/invoices/{invoice_id}/lines", "line item")


def finalize(store: Store, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        invoice = get(store, invoice_id)
        if invoice["status"] != "draft":
            raise invalid_request(
                "This invoice is already finalized, you can't re-finalize a "
                "non-draft invoice.", code="invoice_not_editable")
        now = store.now()
        customer = store.customers[invoice["customer"]]
        if invoice["_requested_number"]:
            invoice["number"] = invoice["_requested_number"]
        else:
            invoice["number"] = (f"{customer['invoice_prefix']}-"
                                 f"{customer['next_invoice_sequence']:04d}")
            customer["next_invoice_sequence"] += 1
        if "auto_advance" in params:
            invoice["auto_advance"] = params["auto_advance"]
        invoice["status"] = "open"
        invoice["effective_at"] = now
        invoice["ending_balance"] = 0
        invoice["status_transitions"]["finalized_at"] = now
        if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
            invoice["due_date"] = now + DAY * (invoice["days_until_due"] or 0)
        payments.publish_pages(invoice)
        store.emit("invoice.finalized", render(store, invoice))
        if render(store, invoice)["amount_due"] == 0:
            # Stripe marks an invoice with nothing to collect paid at once.
            mark_paid(store, invoice, attempted=False)
        elif invoice["auto_advance"]:
            payments.advance(store, invoice)
        return render(store, invoice)


def mark_paid(store: Store, invoice: dict[str, Any], *, attempted: bool) -> None:
    invoice["status"] = "paid"
    invoice["status_transitions"]["paid_at"] = store.now()
    invoice["next_payment_attempt"] = None
    if attempted:
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
    store.emit("invoice.paid", render(store, invoice))


def _require_open(invoice: dict[str, Any], action: str) -> None:
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid_request(
            f"You can only {action} an open invoice. This invoice has status "
            f"'{invoice['status']}'.", code="status_transition_invalid")


def pay(store: Store, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        invoice = get(store, invoice_id)
        _require_open(invoice, "pay")
        if params.get("paid_out_of_band"):
            mark_paid(store, invoice, attempted=False)
        elif invoice.pop("_decline_next_payment", False):
            record_payment_failure(store, invoice)
            raise StripeError(402, "Your card was declined.", type="card_error",
                              code="card_declined")
        else:
            mark_paid(store, invoice, attempted=True)
        return render(store, invoice)


def record_payment_failure(store: Store, invoice: dict[str, Any]) -> dict[str, Any]:
    _require_open(invoice, "fail the payment of")
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    store.emit("invoice.payment_failed", render(store, invoice))
    return render(store, invoice)


def void(store: Store, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        invoice = get(store, invoice_id)
        _require_open(invoice, "void")
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = store.now()
        store.emit("invoice.voided", render(store, invoice))
        return render(store, invoice)


def mark_uncollectible(store: Store, invoice_id: str,
                       params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        invoice = get(store, invoice_id)
        if invoice["status"] != "open":
            raise invalid_request("You can only mark an open invoice uncollectible.",
                                  code="status_transition_invalid")
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = store.now()
        store.emit("invoice.marked_uncollectible", render(store, invoice))
        return render(store, invoice)


def delete(store: Store, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        invoice = get(store, invoice_id)
        if invoice["status"] != "draft":
            raise invalid_request("You can only delete draft invoices.",
                                  code="status_transition_invalid")
        invoice["deleted"] = True
        # The invoice's items go with it, as on Stripe.
        for item_id in store.invoice_lines.pop(invoice_id, []):
            store.invoice_items.pop(item_id, None)
        return {"id": invoice_id, "object": "invoice", "deleted": True}


def retrieve(store: Store, invoice_id: str, params: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    with store.lock:
        return render(store, get(store, invoice_id))
