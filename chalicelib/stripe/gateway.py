"""The Stripe gateway: one StripeClient, typed params, deterministic idempotency keys.

Every POST carries a key derived from our ids, so a retry within Stripe's 24 h key
memory replays instead of repeating. Past that window, the sync finds what already
exists by our ids in metadata, so replays days later create nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

import stripe
from stripe._base_address import BaseAddresses
from stripe.params import (
    CustomerCreateParams,
    CustomerListParams,
    InvoiceAddLinesParams,
    InvoiceAddLinesParamsLine,
    InvoiceCreateParams,
    InvoiceFinalizeInvoiceParams,
    InvoiceLineItemListParams,
    InvoiceListParams,
    InvoiceVoidInvoiceParams,
)

from ..domain.collection import Collection, CollectionMethod
from .errors import classify
from .lines import StripeLine

PAGE = 100
T = TypeVar("T")


def _digest(*parts: str) -> str:
    """Keys include what the request depends on, so a corrected retry is a new request, not a conflict."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def metadata_of(obj: object) -> dict[str, str]:
    """Stripe objects' metadata as a plain dict (the SDK types it loosely)."""
    raw = getattr(obj, "metadata", None) or {}
    plain = raw.to_dict() if isinstance(raw, stripe.StripeObject) else dict(raw)
    return {str(key): str(value) for key, value in plain.items()}


class StripeGateway:
    def __init__(self, api_key: str, api_base: str | None = None, max_network_retries: int = 2,
                 timeout_seconds: int = 20) -> None:
        bases: BaseAddresses = {"api": api_base} if api_base else {}
        self.client = stripe.StripeClient(
            api_key, base_addresses=bases, max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
        )

    # -- customers ---------------------------------------------------------------------------
    def find_customer(self, org: str, email: str) -> str | None:
        params: CustomerListParams = {"email": email, "limit": PAGE}
        for customer in self._call(lambda: self.client.v1.customers.list(params=params)).auto_paging_iter():
            if metadata_of(customer).get("org") == org:
                return customer.id
        return None

    def create_customer(self, org: str, name: str, email: str) -> str:
        params: CustomerCreateParams = {"name": name, "email": email, "metadata": {"org": org}}
        customer = self._call(lambda: self.client.v1.customers.create(
            params=params, options={"idempotency_key": f"customer:{org}:{_digest(name, email)}"}))
        return customer.id

    # -- invoices ----------------------------------------------------------------------------
    def retrieve_invoice(self, invoice_id: str) -> stripe.Invoice:
        return self._call(lambda: self.client.v1.invoices.retrieve(invoice_id))

    def retrieve_invoice_if_exists(self, invoice_id: str) -> stripe.Invoice | None:
        """None when Stripe has no such invoice any more: a deleted draft answers 404."""
        try:
            return self.client.v1.invoices.retrieve(invoice_id)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise classify(error) from error
        except stripe.StripeError as error:
            raise classify(error) from error

    def find_invoice(self, customer: str, org: str, our_invoice_id: str) -> stripe.Invoice | None:
        """List the customer's invoices (search is eventually consistent; list is not)."""
        params: InvoiceListParams = {"customer": customer, "limit": PAGE}
        for invoice in self._call(lambda: self.client.v1.invoices.list(params=params)).auto_paging_iter():
            metadata = metadata_of(invoice)
            if metadata.get("org") == org and metadata.get("invoice_id") == our_invoice_id:
                return invoice
        return None

    def create_invoice(self, customer: str, org: str, our_invoice_id: str, number: str, currency: str,
                       period: str, collection: Collection) -> stripe.Invoice:
        # A draft stays still while its lines go in: with auto_advance Stripe would finalize it within the hour.
        params: InvoiceCreateParams = {
            "customer": customer,
            "currency": currency,
            "auto_advance": False,
            "collection_method": collection.method.value,
            "pending_invoice_items_behavior": "exclude",
            "description": f"Usage for {period} (invoice {number})",
            "metadata": {"org": org, "invoice_id": our_invoice_id, "number": number, "period": period},
        }
        if collection.method is CollectionMethod.SEND_INVOICE:
            params["days_until_due"] = collection.days_until_due or 1
        terms = _digest(collection.method, str(collection.days_until_due))
        key = f"invoice:{org}:{our_invoice_id}:create:{customer}:{terms}"
        return self._call(lambda: self.client.v1.invoices.create(params=params, options={"idempotency_key": key}))

    def line_keys(self, stripe_invoice_id: str) -> dict[str, int]:
        """Our key → amount for every line already on the Stripe invoice."""
        params: InvoiceLineItemListParams = {"limit": PAGE}
        lines = self._call(lambda: self.client.v1.invoices.line_items.list(stripe_invoice_id, params=params))
        return {metadata_of(line).get("line_key", line.id): line.amount for line in lines.auto_paging_iter()}

    def add_lines(self, stripe_invoice_id: str, org: str, our_invoice_id: str,
                  lines: list[StripeLine]) -> stripe.Invoice:
        payload: list[InvoiceAddLinesParamsLine] = [
            {"amount": line.amount, "description": line.description,
             "metadata": {"line_key": line.key, "org": org, "invoice_id": our_invoice_id}}
            for line in lines
        ]
        params: InvoiceAddLinesParams = {"lines": payload}
        digest = hashlib.sha256("|".join(line.key for line in lines).encode()).hexdigest()[:32]
        key = f"invoice:{org}:{our_invoice_id}:lines:{digest}"
        return self._call(lambda: self.client.v1.invoices.add_lines(
            stripe_invoice_id, params=params, options={"idempotency_key": key}))

    def finalize(self, stripe_invoice_id: str, org: str, our_invoice_id: str) -> stripe.Invoice:
        """Finalize and hand the invoice to Stripe's collection: it charges the card on file or emails it.

        Stripe finalizes a draft only once, and the sync finalizes only a draft it has verified, so
        however often this runs, Stripe advances (and charges) the invoice once.
        """
        params: InvoiceFinalizeInvoiceParams = {"auto_advance": True}
        key = f"invoice:{org}:{our_invoice_id}:finalize:advance"
        return self._call(lambda: self.client.v1.invoices.finalize_invoice(
            stripe_invoice_id, params=params, options={"idempotency_key": key}))

    def void(self, stripe_invoice_id: str, org: str, our_invoice_id: str) -> stripe.Invoice:
        params: InvoiceVoidInvoiceParams = {}
        return self._call(lambda: self.client.v1.invoices.void_invoice(
            stripe_invoice_id, params=params, options={"idempotency_key": f"invoice:{org}:{our_invoice_id}:void"}))

    def delete_draft(self, stripe_invoice_id: str) -> None:
        self._call(lambda: self.client.v1.invoices.delete(stripe_invoice_id))

    @staticmethod
    def _call(request: Callable[[], T]) -> T:
        try:
            return request()
        except stripe.StripeError as error:
            raise classify(error) from error



@lru_cache(maxsize=8)
def gateway_for(api_key: str, api_base: str | None, max_network_retries: int) -> StripeGateway:
    """One gateway per key and process, reused by every batch a warm Lambda runs (its HTTP sessions are
    per thread inside stripe-python, so threads may share it)."""
    return StripeGateway(api_key, api_base, max_network_retries)
