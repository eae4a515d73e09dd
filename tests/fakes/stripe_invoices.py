"""An in-memory Stripe for the sync (`StripeInvoices`): customers, invoices with our ids in metadata,
their lines, finalize, void and delete, with Stripe's refusals as the gateway sorts them.

Idempotency keys are not replayed: as past Stripe's 24 h key memory, only the sync's own look-before-act
keeps it from creating twice. `created` counts every object made, so a test can prove "exactly once".
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

from chalicelib.domain.collection import Collection
from chalicelib.stripe.errors import PermanentSyncError
from chalicelib.stripe.lines import StripeLine


@dataclass
class FakeLine:
    key: str
    amount: int
    description: str


@dataclass
class FakeStripeInvoice:
    id: str
    customer: str
    currency: str
    metadata: dict[str, str]
    collection: Collection
    status: str | None = "draft"
    number: str | None = None
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None
    lines: list[FakeLine] = field(default_factory=list)
    deleted: bool = False

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


@dataclass
class FakeCustomer:
    id: str
    org: str
    name: str
    email: str


class MemoryStripe:
    def __init__(self) -> None:
        self.customers: dict[str, FakeCustomer] = {}
        self.invoices: dict[str, FakeStripeInvoice] = {}
        self.created: Counter[str] = Counter()  # "customer", "invoice", "line", "finalize", "void", "delete"
        self._numbers = 0

    # -- customers ---------------------------------------------------------------------------------
    def find_customer(self, org: str, email: str) -> str | None:
        for customer in self.customers.values():
            if customer.email == email and customer.org == org:
                return customer.id
        return None

    def create_customer(self, org: str, name: str, email: str) -> str:
        self.created["customer"] += 1
        customer = FakeCustomer(f"cus_{len(self.customers) + 1:04d}", org, name, email)
        self.customers[customer.id] = customer
        return customer.id

    # -- invoices ----------------------------------------------------------------------------------
    def retrieve_invoice(self, invoice_id: str) -> FakeStripeInvoice:
        return copy.deepcopy(self._live(invoice_id))

    def retrieve_invoice_if_exists(self, invoice_id: str) -> FakeStripeInvoice | None:
        invoice = self.invoices.get(invoice_id)
        return None if invoice is None or invoice.deleted else copy.deepcopy(invoice)

    def find_invoice(self, customer: str, org: str, our_invoice_id: str) -> FakeStripeInvoice | None:
        for invoice in self.invoices.values():
            if not invoice.deleted and invoice.customer == customer and \
                    invoice.metadata.get("org") == org and invoice.metadata.get("invoice_id") == our_invoice_id:
                return copy.deepcopy(invoice)
        return None

    def create_invoice(self, customer: str, org: str, our_invoice_id: str, number: str, currency: str,
                       period: str, collection: Collection) -> FakeStripeInvoice:
        if customer not in self.customers:
            raise PermanentSyncError(f"stripe InvalidRequestError (400, resource_missing): No such customer: "
                                     f"'{customer}'")
        self.created["invoice"] += 1
        invoice = FakeStripeInvoice(f"in_{len(self.invoices) + 1:04d}", customer, currency,
                                    {"org": org, "invoice_id": our_invoice_id, "number": number, "period": period},
                                    collection)
        self.invoices[invoice.id] = invoice
        return copy.deepcopy(invoice)

    def line_keys(self, stripe_invoice_id: str) -> dict[str, int]:
        return {line.key: line.amount for line in self._live(stripe_invoice_id).lines}

    def add_lines(self, stripe_invoice_id: str, org: str, our_invoice_id: str,
                  lines: list[StripeLine]) -> FakeStripeInvoice:
        invoice = self._draft(stripe_invoice_id, "add lines to")
        self.created["line"] += len(lines)
        invoice.lines += [FakeLine(line.key, line.amount, line.description) for line in lines]
        return copy.deepcopy(invoice)

    def finalize(self, stripe_invoice_id: str, org: str, our_invoice_id: str) -> FakeStripeInvoice:
        invoice = self._draft(stripe_invoice_id, "finalize")
        self.created["finalize"] += 1
        self._numbers += 1
        invoice.number = f"FAKE-{self._numbers:04d}"
        invoice.hosted_invoice_url = f"https://invoice.example/{invoice.id}"
        invoice.invoice_pdf = f"https://invoice.example/{invoice.id}/pdf"
        invoice.status = "paid" if invoice.total == 0 else "open"  # nothing to collect: Stripe marks it paid
        return copy.deepcopy(invoice)

    def void(self, stripe_invoice_id: str, org: str, our_invoice_id: str) -> FakeStripeInvoice:
        invoice = self._live(stripe_invoice_id)
        if invoice.status not in ("open", "uncollectible"):
            raise PermanentSyncError(f"stripe InvalidRequestError (400, status_transition_invalid): invoice "
                                     f"{invoice.id} is {invoice.status}")
        self.created["void"] += 1
        invoice.status = "void"
        return copy.deepcopy(invoice)

    def delete_draft(self, stripe_invoice_id: str) -> None:
        invoice = self._draft(stripe_invoice_id, "delete")
        self.created["delete"] += 1
        invoice.deleted = True

    # -- for tests: what happens on Stripe's side --------------------------------------------------
    def pay(self, stripe_invoice_id: str) -> None:
        self.invoices[stripe_invoice_id].status = "paid"

    def live_copies(self, org: str, our_invoice_id: str) -> list[FakeStripeInvoice]:
        return [invoice for invoice in self.invoices.values() if not invoice.deleted
                and (invoice.metadata["org"], invoice.metadata["invoice_id"]) == (org, our_invoice_id)]

    def _live(self, stripe_invoice_id: str) -> FakeStripeInvoice:
        invoice = self.invoices.get(stripe_invoice_id)
        if invoice is None or invoice.deleted:  # Stripe answers 404 for a deleted draft too
            raise PermanentSyncError(f"stripe InvalidRequestError (404, resource_missing): No such invoice: "
                                     f"'{stripe_invoice_id}'")
        return invoice

    def _draft(self, stripe_invoice_id: str, action: str) -> FakeStripeInvoice:
        invoice = self._live(stripe_invoice_id)
        if invoice.status != "draft":
            raise PermanentSyncError(f"stripe InvalidRequestError (400, invoice_not_editable): cannot {action} "
                                     f"invoice {invoice.id}: it is {invoice.status}")
        return invoice
