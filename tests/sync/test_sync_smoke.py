from datetime import UTC, datetime
from decimal import Decimal

from chalicelib.config import settings
from chalicelib.services.invoices import InvoiceService
from chalicelib.services.sync import InvoiceSync, SyncResult
from chalicelib.services.usage import UsageEvent, record_usage
from chalicelib.stripe.gateway import StripeGateway
from devstack.stripe_emulator import StripeEmulator


def test_finalized_invoice_reaches_stripe_once(org):
    now = datetime.now(UTC)
    events = [UsageEvent(f"e{i}", org, f"app{i % 3}", "egress", Decimal("1.25"), "fra", {}, now) for i in range(30)]
    record_usage(events, now, settings())
    service = InvoiceService()
    invoice = service.upcoming(org, "usd", now).invoice
    finalized = service.finalize(org, invoice.id, now)
    emulator = StripeEmulator()
    url = emulator.start()
    try:
        sync = InvoiceSync(StripeGateway("sk_test_x", url, 0))
        assert sync.sync(org, invoice.id, now) is SyncResult.SYNCED
        assert sync.sync(org, invoice.id, now) is SyncResult.ALREADY_SYNCED
        state = emulator.state()
        ours = [i for i in state["invoices"] if i["metadata"].get("org") == org]
        assert len(ours) == 1
        assert ours[0]["status"] == "open"
        assert ours[0]["total"] == finalized.total_cents
        stored = service.require(org, invoice.id)
        assert stored.sync.state.value == "synced"
        assert stored.sync.stripe_invoice_id == ours[0]["id"]
        assert stored.sync.stripe_invoice_number == ours[0]["number"]
    finally:
        emulator.stop()


def test_a_deleted_stripe_draft_reads_as_gone_and_other_invoices_as_themselves(gateway):
    """The void path relies on this: a draft an earlier attempt deleted answers 404, which the gateway reads
    as "no such invoice" rather than a permanent failure."""
    from chalicelib.domain.collection import DEFAULT_COLLECTION

    customer = gateway.create_customer("smoke-org", "Smoke", "smoke@example.com")
    draft = gateway.create_invoice(customer, "smoke-org", "inv_202611", "SMOKE-0001", "usd", "2026-11",
                                   DEFAULT_COLLECTION)
    assert gateway.retrieve_invoice_if_exists(draft.id).id == draft.id
    gateway.delete_draft(draft.id)
    assert gateway.retrieve_invoice_if_exists(draft.id) is None
    assert gateway.retrieve_invoice_if_exists("in_never_existed") is None
