"""Push one finalized (or voided) invoice to Stripe, exactly once, whatever fails around it.

Each step first looks at what already exists, so the sync can stop anywhere (crash,
timeout, lost response) and the next delivery finishes the job:
  customer   stored id on the org, else found by email + metadata, else created;
  invoice    stored Stripe id, else found by listing the customer's invoices for our id
             in metadata, else created; its id is stored the moment we have it. The
             listing is skipped when this sync created the customer: every earlier
             attempt stopped before storing a customer id, so before creating an invoice;
  lines      the Stripe draft's lines are diffed by our line key in metadata, and only
             the missing ones added;
  finalize   only after Stripe's total equals ours.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from ..domain.collection import DEFAULT_COLLECTION, Collection
from ..domain.invoice import FROZEN, Invoice, InvoiceStatus, SyncState
from ..storage.invoices import InvoiceRepository
from ..storage.leases import LeaseTable
from ..storage.orgs import OrgRepository
from ..stripe.errors import PermanentSyncError, RetryableSyncError
from ..stripe.lines import stripe_lines
from .ports import OrgProfiles, StripeInvoices, StripeInvoiceView, SyncedInvoices, SyncLeases

LEASE_TTL = timedelta(minutes=2)
Checkpoint = Callable[[str], None]


def no_checkpoint(step: str) -> None:
    """Tests replace this to stop the sync between any two side effects."""


class SyncResult(StrEnum):
    SYNCED = "synced"
    ALREADY_SYNCED = "already_synced"
    NOT_READY = "not_ready"
    SUPERSEDED = "superseded"


class InvoiceSync:
    def __init__(self, gateway: StripeInvoices, checkpoint: Checkpoint = no_checkpoint,
                 invoices: SyncedInvoices | None = None, orgs: OrgProfiles | None = None,
                 leases: SyncLeases | None = None) -> None:
        self.gateway = gateway
        self.checkpoint = checkpoint
        self.invoices: SyncedInvoices = invoices if invoices is not None else InvoiceRepository()
        self.orgs: OrgProfiles = orgs if orgs is not None else OrgRepository()
        self.leases: SyncLeases = leases if leases is not None else LeaseTable()

    def sync(self, org: str, invoice_id: str, now: datetime) -> SyncResult:
        invoice = self._load(org, invoice_id)
        if invoice.status not in FROZEN:
            return SyncResult.NOT_READY
        if invoice.sync.state is SyncState.SYNCED:
            return SyncResult.ALREADY_SYNCED
        owner = uuid.uuid4().hex
        if not self.leases.acquire(org, invoice_id, owner, now, LEASE_TTL):
            raise RetryableSyncError("another worker holds this invoice's sync lease")
        try:
            invoice = self._load(org, invoice_id)  # fresh, now that it is ours
            if invoice.sync.state is SyncState.SYNCED:
                return SyncResult.ALREADY_SYNCED
            stripe_invoice = self._push_void(invoice) if invoice.status is InvoiceStatus.VOID else self._push(invoice)
            self.checkpoint("before_mark_synced")
            recorded = self._record_synced(invoice, stripe_invoice, now)
            return SyncResult.SYNCED if recorded else SyncResult.SUPERSEDED
        finally:
            self.leases.release(org, invoice_id, owner)

    def _record_synced(self, invoice: Invoice, stripe_invoice: StripeInvoiceView | None, now: datetime) -> bool:
        def record(current: Invoice) -> bool:
            return self.invoices.record_sync(
                current, SyncState.SYNCED, now,
                stripe_invoice_id=stripe_invoice.id if stripe_invoice else None,
                stripe_number=getattr(stripe_invoice, "number", None) if stripe_invoice else None,
                hosted_invoice_url=getattr(stripe_invoice, "hosted_invoice_url", None) if stripe_invoice else None,
                invoice_pdf=getattr(stripe_invoice, "invoice_pdf", None) if stripe_invoice else None,
            )

        if record(invoice):
            return True
        # Collection races the sync: Stripe may charge at finalize and its `invoice.paid` webhook move our
        # invoice to paid before we get here. The same sync request still owns the outcome.
        fresh = self._load(invoice.org, invoice.id)
        if fresh.status is not invoice.status and fresh.status in FROZEN and \
                fresh.sync.requested_at == invoice.sync.requested_at:
            return record(fresh)
        return False

    def record_failure(self, org: str, invoice_id: str, error: Exception, now: datetime, permanent: bool) -> None:
        invoice = self.invoices.get(org, invoice_id)
        if invoice is None:
            return
        if permanent:
            self.invoices.record_sync(invoice, SyncState.FAILED, now, error=str(error), count_attempt=True)
        else:
            # Only the error and the attempt: a worker that lost the race must not undo a `synced`.
            self.invoices.note_sync_error(invoice, str(error), now)

    def _load(self, org: str, invoice_id: str) -> Invoice:
        invoice = self.invoices.get(org, invoice_id)
        if invoice is None:
            raise PermanentSyncError(f"invoice {org}/{invoice_id} does not exist")
        return invoice

    def _customer(self, org: str) -> tuple[str, bool]:
        """The org's Stripe customer, and whether this call created it."""
        profile = self.orgs.get(org)
        if profile is None:
            raise PermanentSyncError(f"organisation {org} has no billing profile")
        if profile.stripe_customer_id:
            return profile.stripe_customer_id, False
        customer = self.gateway.find_customer(org, profile.email)
        created = customer is None
        if customer is None:
            customer = self.gateway.create_customer(org, profile.name, profile.email)
            self.checkpoint("after_create_customer")
        self.orgs.set_stripe_customer(org, customer)
        self.checkpoint("after_store_customer")
        return customer, created

    def _collection(self, org: str) -> Collection:
        profile = self.orgs.get(org)
        return profile.collection if profile is not None else DEFAULT_COLLECTION

    def _locate(self, invoice: Invoice) -> tuple[str, StripeInvoiceView | None]:
        """The customer, and the Stripe invoice for ours if one exists."""
        customer, new_customer = self._customer(invoice.org)
        if invoice.sync.stripe_invoice_id:
            return customer, self.gateway.retrieve_invoice(invoice.sync.stripe_invoice_id)
        if new_customer:
            # Invoices are created only after the customer id is stored, and it was not: none exists yet.
            return customer, None
        return customer, self.gateway.find_invoice(customer, invoice.org, invoice.id)

    def _push(self, invoice: Invoice) -> StripeInvoiceView:
        customer, found = self._locate(invoice)
        existing: dict[str, int] = {}
        if found is None:
            found = self.gateway.create_invoice(customer, invoice.org, invoice.id, invoice.number, invoice.currency,
                                                str(invoice.period), self._collection(invoice.org))
            self.checkpoint("after_create_invoice")
        elif found.status == "draft":
            existing = self.gateway.line_keys(found.id)
        if not invoice.sync.stripe_invoice_id:
            self.invoices.record_stripe_invoice(invoice, found.id)
            self.checkpoint("after_store_invoice_id")
        if found.status == "draft":
            wanted = stripe_lines(invoice, self.invoices.lines(invoice.org, invoice.id))
            missing = [line for line in wanted if line.key not in existing]
            if missing:
                found = self.gateway.add_lines(found.id, invoice.org, invoice.id, missing)
                self.checkpoint("after_add_lines")
            self._verify(invoice, found, "draft")
            found = self.gateway.finalize(found.id, invoice.org, invoice.id)
            self.checkpoint("after_finalize")
        self._verify(invoice, found, "finalized")
        return found

    def _push_void(self, invoice: Invoice) -> StripeInvoiceView | None:
        if invoice.sync.stripe_invoice_id:
            # Gone means deleted: an earlier attempt deleted the draft and stopped before recording it.
            found = self.gateway.retrieve_invoice_if_exists(invoice.sync.stripe_invoice_id)
        else:
            _, found = self._locate(invoice)
        if found is None or found.status in ("void", "deleted"):
            return found
        if found.status == "draft":
            self.gateway.delete_draft(found.id)  # Stripe voids only finalized invoices; a draft is deleted
            return None
        if found.status == "paid":
            raise PermanentSyncError(f"Stripe invoice {found.id} is paid; refund it before voiding")
        return self.gateway.void(found.id, invoice.org, invoice.id)

    @staticmethod
    def _verify(invoice: Invoice, found: StripeInvoiceView, stage: str) -> None:
        expected = ("draft",) if stage == "draft" else ("open", "paid", "uncollectible")
        if found.status not in expected:
            raise PermanentSyncError(f"Stripe invoice {found.id} is {found.status}; expected {' or '.join(expected)}")
        if found.total != invoice.total_cents or found.currency != invoice.currency:
            raise PermanentSyncError(
                f"Stripe {stage} total {found.total} {found.currency} differs from ours "
                f"{invoice.total_cents} {invoice.currency} (Stripe invoice {found.id})"
            )
