"""Customers: create, retrieve, list (with the ``email`` filter)."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from .errors import invalid_request, param_error
from .store import Store, created_matches, live, merge_metadata, new_id, page

_PREFIX_ALPHABET = string.ascii_uppercase + string.digits
_PREFIX_PATTERN = re.compile(r"^[A-Z0-9]{3,12}$")


def create(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    metadata = merge_metadata({}, params.get("metadata"))
    prefix = params.get("invoice_prefix")
    if prefix is not None and not _PREFIX_PATTERN.match(prefix):
        raise param_error(
            "Invoice prefix must be 3 to 12 uppercase letters or numbers.",
            code=None, param="invoice_prefix",
        )
    with store.lock:
        # Stripe gives every customer a unique prefix; invoice numbers are
        # "<prefix>-<4-digit sequence>" when numbering is per customer.
        if prefix is None:
            prefix = _unique_prefix(store)
        elif any(c["invoice_prefix"] == prefix for c in store.customers.values()):
            raise invalid_request(
                f"Invoice prefix {prefix} is already in use by another customer.",
                param="invoice_prefix",
            )
        customer = {
            "id": new_id("cus"),
            "object": "customer",
            "address": None,
            "balance": params.get("balance", 0),
            "created": store.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description"),
            "email": params.get("email"),
            "invoice_prefix": prefix,
            "invoice_settings": {"custom_fields": None,
                                 "default_payment_method": None,
                                 "footer": None, "rendering_options": None},
            "livemode": False,
            "metadata": metadata,
            "name": params.get("name"),
            "next_invoice_sequence": params.get("next_invoice_sequence", 1),
            "phone": params.get("phone"),
            "preferred_locales": params.get("preferred_locales", []),
            "shipping": None,
            "tax_exempt": params.get("tax_exempt", "none"),
            "test_clock": None,
        }
        store.customers[customer["id"]] = customer
        customer["_seq"] = store.next_seq()
        return customer


def _unique_prefix(store: Store) -> str:
    used = {c["invoice_prefix"] for c in store.customers.values()}
    while True:
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
        if prefix not in used:
            return prefix


def get(store: Store, customer_id: str, *, param: str = "id",
        status: int = 404) -> dict[str, Any]:
    return live(store.customers, "customer", customer_id, param=param, status=status)


def listing(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        items = [
            c for c in store.customers.values()
            # Stripe's email filter is an exact, case-sensitive match.
            if ("email" not in params or c["email"] == params["email"])
            and created_matches(c["created"], params.get("created"))
        ]
        items.sort(key=lambda c: (c["created"], c["_seq"]), reverse=True)
        return page(items, params, "/v1/customers", "customer")
