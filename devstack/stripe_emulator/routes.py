"""The Stripe API endpoints served, each tied to the stripe-python params
TypedDict that defines which parameters it accepts. Handlers run with the
state lock held (see ``api.ApiApp``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.routing import Map, Rule

from . import customers, invoice_items, invoices
from .errors import no_such
from .store import Store, page

Handler = Callable[[Store, dict[str, str], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    rule: str              # werkzeug rule, e.g. "/v1/invoices/<invoice>/add_lines"
    params: str            # name of the TypedDict in stripe.params
    handler: Handler

    @property
    def endpoint(self) -> str:
        """Stable name for counting and limits: "POST /v1/invoices/{invoice}"."""
        return f"{self.method} {self.rule.replace('<', '{').replace('>', '}')}"


def _event(store: Store, args: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    for event in store.events:
        if event["id"] == args["event"]:
            return event
    raise no_such("event", args["event"])


def _events(store: Store, args: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    found = [e for e in reversed(store.events)
             if params.get("type", e["type"]) == e["type"]]
    return page(found, params, "/v1/events", "event")


ROUTES: list[Route] = [
    Route("POST", "/v1/customers", "CustomerCreateParams",
          lambda s, a, p: customers.create(s, p)),
    Route("GET", "/v1/customers", "CustomerListParams",
          lambda s, a, p: customers.listing(s, p)),
    Route("GET", "/v1/customers/<customer>", "CustomerRetrieveParams",
          lambda s, a, p: customers.get(s, a["customer"])),
    Route("POST", "/v1/invoices", "InvoiceCreateParams",
          lambda s, a, p: invoices.create(s, p)),
    Route("GET", "/v1/invoices", "InvoiceListParams",
          lambda s, a, p: invoices.listing(s, p)),
    Route("GET", "/v1/invoices/<invoice>", "InvoiceRetrieveParams",
          lambda s, a, p: invoices.retrieve(s, a["invoice"], p)),
    Route("DELETE", "/v1/invoices/<invoice>", "InvoiceDeleteParams",
          lambda s, a, p: invoices.delete(s, a["invoice"], p)),
    Route("POST", "/v1/invoices/<invoice>/finalize", "InvoiceFinalizeInvoiceParams",
          lambda s, a, p: invoices.finalize(s, a["invoice"], p)),
    Route("POST", "/v1/invoices/<invoice>/pay", "InvoicePayParams",
          lambda s, a, p: invoices.pay(s, a["invoice"], p)),
    Route("POST", "/v1/invoices/<invoice>/void", "InvoiceVoidInvoiceParams",
          lambda s, a, p: invoices.void(s, a["invoice"], p)),
    Route("POST", "/v1/invoices/<invoice>/mark_uncollectible",
          "InvoiceMarkUncollectibleParams",
          lambda s, a, p: invoices.mark_uncollectible(s, a["invoice"], p)),
    Route("POST", "/v1/invoices/<invoice>/add_lines", "InvoiceAddLinesParams",
          lambda s, a, p: invoices.add_lines(s, a["invoice"], p)),
    Route("GET", "/v1/invoices/<invoice>/lines", "InvoiceLineItemListParams",
          lambda s, a, p: invoices.list_lines(s, a["invoice"], p)),
    Route("POST", "/v1/invoiceitems", "InvoiceItemCreateParams",
          lambda s, a, p: invoice_items.create(s, p)),
    Route("GET", "/v1/invoiceitems", "InvoiceItemListParams",
          lambda s, a, p: invoice_items.listing(s, p)),
    Route("GET", "/v1/invoiceitems/<invoiceitem>", "InvoiceItemRetrieveParams",
          lambda s, a, p: invoice_items.get(s, a["invoiceitem"])),
    Route("GET", "/v1/events", "EventListParams", _events),
    Route("GET", "/v1/events/<event>", "EventRetrieveParams", _event),
]


def url_map() -> Map:
    return Map([Rule(r.rule, methods=[r.method], endpoint=r) for r in ROUTES],
               strict_slashes=False)
