"""Invoice items, and the line items they appear as on their invoice.

In Stripe every one-off invoice line is backed by an invoice item: creating
an item with ``invoice=...`` and adding a line through
``/v1/invoices/{id}/add_lines`` both create one. Here the invoice item is the
single source of truth and the ``line_item`` view is rendered from it.
"""

from __future__ import annotations

import decimal
from typing import Any

from . import customers
from .errors import StripeError, invalid_request, no_such, param_error
from .store import Store, created_matches, merge_metadata, new_id, page

DEFAULT_CURRENCY = "usd"


def not_editable(invoice: dict[str, Any]) -> StripeError:
    # Stripe refuses to change a finalized invoice's lines with this code.
    return invalid_request(
        f"This invoice is no longer editable because it has status "
        f"'{invoice['status']}'. Only draft invoices can be changed.",
        code="invoice_not_editable",
    )


def check_capacity(store: Store, invoice_id: str, adding: int) -> None:
    """Stripe allows at most 250 invoice items on one invoice."""
    present = len(store.invoice_lines.get(invoice_id, []))
    if present + adding > store.max_invoice_lines:
        raise invalid_request(
            f"An invoice can have at most {store.max_invoice_lines} invoice "
            f"items. This invoice has {present} and this request adds "
            f"{adding}.",
            param="lines" if adding != 1 else "invoice",
        )


def amount_of(params: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Resolve the charged amount the way Stripe does for one-off items.

    Either a flat ``amount`` or a unit price (``price_data`` or
    ``unit_amount_decimal``) times ``quantity``; catalogue prices are not
    modelled, so ``pricing[price]`` is reported as unknown.
    """
    def p(name: str) -> str:
        return f"{path}[{name}]" if path else name

    quantity = params.get("quantity", 1)
    if "amount" in params:
        amount = params["amount"]
        unit = decimal.Decimal(amount) / (quantity or 1)
    elif "price_data" in params or "unit_amount_decimal" in params:
        data = params.get("price_data", params)
        unit = data.get("unit_amount_decimal", data.get("unit_amount"))
        if unit is None:
            raise param_error(f"Missing required param: {p('price_data')}[unit_amount].",
                              code="parameter_missing", param=p("price_data"))
        qty = params.get("quantity_decimal", quantity)
        amount = int((decimal.Decimal(unit) * decimal.Decimal(qty))
                     .quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))
    elif "pricing" in params:
        price = params["pricing"].get("price", "")
        raise no_such("price", price, param=p("pricing") + "[price]", status=400)
    else:
        raise param_error(f"Missing required param: {p('amount')}.",
                          code="parameter_missing", param=p("amount"))
    return {"amount": amount, "quantity": quantity,
            "unit_amount_decimal": str(decimal.Decimal(unit).normalize())}


def build_item(store: Store, params: dict[str, Any], *, customer: str,
               currency: str, invoice: str | None, path: str = "",
               metadata_param: str = "metadata") -> dict[str, Any]:
    """Validate and construct (not store) an invoice item."""
    money = amount_of(params, path)
    now = store.now()
    period = params.get("period") or {"start": now, "end": now}
    if period["end"] < period["start"]:
        raise param_error("The period end must be greater than or equal to the start.",
                          code=None, param=f"{path}[period]" if path else "period")
    return {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": money["amount"],
        "currency": currency,
        "customer": customer,
        "date": now,
        "description": params.get("description"),
        "discountable": params.get("discountable", money["amount"] >= 0),
        "discounts": [],
        "invoice": invoice,
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata"), metadata_param),
        "parent": None,
        "period": {"start": period["start"], "end": period["end"]},
        "pricing": {"price_details": None, "type": "price_details",
                    "unit_amount_decimal": money["unit_amount_decimal"]},
        "proration": False,
        "quantity": money["quantity"],
        "tax_rates": [],
        "test_clock": None,
        "_line_id": None,
        "_seq": store.next_seq(),
    }


def attach(store: Store, item: dict[str, Any], invoice_id: str) -> None:
    store.invoice_items[item["id"]] = item
    item["invoice"] = invoice_id
    item["_line_id"] = item["_line_id"] or new_id("il")
    store.invoice_lines.setdefault(invoice_id, []).append(item["id"])


def as_line(item: dict[str, Any]) -> dict[str, Any]:
    """The ``line_item`` an invoice item appears as (2025+ API shape)."""
    return {
        "id": item["_line_id"],
        "object": "line_item",
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": item["discountable"],
        "discounts": [],
        "invoice": item["invoice"],
        "livemode": False,
        "metadata": dict(item["metadata"]),
        "parent": {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": item["id"], "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
        },
        "period": dict(item["period"]),
        "pretax_credit_amounts": [],
        "pricing": item["pricing"],
        "quantity": item["quantity"],
        "subscription": None,
        "taxes": [],
    }


def lines_of(store: Store, invoice_id: str) -> list[dict[str, Any]]:
    return [as_line(store.invoice_items[i]) for i in store.invoice_lines.get(invoice_id, [])]


def create(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        invoice_id = params.get("invoice")
        if invoice_id is not None:
            invoice = store.invoices.get(invoice_id)
            if invoice is None or invoice.get("deleted"):
                raise no_such("invoice", invoice_id, param="invoice", status=400)
            customer = params.get("customer", invoice["customer"])
            if customer != invoice["customer"]:
                raise invalid_request(
                    f"The invoice {invoice_id} belongs to customer "
                    f"{invoice['customer']}, not {customer}.", param="invoice")
            if invoice["status"] != "draft":
                raise not_editable(invoice)
            currency = params.get("currency", invoice["currency"]).lower()
            if currency != invoice["currency"]:
                raise invalid_request(
                    f"The currency of the invoice item ({currency}) must match "
                    f"the currency of the invoice ({invoice['currency']}).",
                    param="currency")
            check_capacity(store, invoice_id, 1)
        else:
            if "customer" not in params:
                raise param_error("Missing required param: customer.",
                                  code="parameter_missing", param="customer")
            customer = params["customer"]
            currency = params.get("currency", DEFAULT_CURRENCY).lower()
        customers.get(store, customer, param="customer", status=400)
        item = build_item(store, params, customer=customer, currency=currency,
                          invoice=invoice_id)
        if invoice_id is not None:
            attach(store, item, invoice_id)
        else:
            store.invoice_items[item["id"]] = item
        return item


def get(store: Store, item_id: str) -> dict[str, Any]:
    item = store.invoice_items.get(item_id)
    if item is None:
        raise no_such("invoiceitem", item_id)
    return item


def listing(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        items = [
            i for i in store.invoice_items.values()
            if params.get("invoice", i["invoice"]) == i["invoice"]
            and params.get("customer", i["customer"]) == i["customer"]
            and ("pending" not in params or params["pending"] == (i["invoice"] is None))
            and created_matches(i["date"], params.get("created"))
        ]
        items.sort(key=lambda i: i["_seq"], reverse=True)
        return page(items, params, "/v1/invoiceitems", "invoiceitem")
