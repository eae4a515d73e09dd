"""Reconciliation: re-enqueue stuck syncs; flag synced invoices whose Stripe copy differs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from .. import queue
from ..domain.collection import payment_drift
from ..domain.invoice import Invoice, InvoiceStatus, SyncState
from ..domain.periods import Period
from ..domain.sync_message import SyncMessage
from ..observability import flush_metrics, logger, metrics
from ..storage.invoices import InvoiceRepository
from ..stripe.errors import PermanentSyncError, RetryableSyncError
from ..stripe.lines import stripe_lines
from .ports import ReconciledInvoices, StripeInvoices, SyncQueue


@dataclass
class ReconcileReport:
    requeued: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    payment_drift: list[str] = field(default_factory=list)  # totals agree, payment status does not


def requeue_stale(now: datetime, stale_after: timedelta, report: ReconcileReport | None = None, *,
                  invoices: ReconciledInvoices | None = None, sync_queue: SyncQueue | None = None) -> ReconcileReport:
    report = report or ReconcileReport()
    repo: ReconciledInvoices = invoices if invoices is not None else InvoiceRepository()
    sqs: SyncQueue = sync_queue if sync_queue is not None else queue.SqsSyncQueue()
    stale = [i for i in repo.by_state(f"sync_{SyncState.PENDING.value}")
             if i.sync.requested_at is None or i.sync.requested_at < now - stale_after]
    sqs.enqueue_sync([SyncMessage(i.org, i.id, i.sync.requested_at) for i in stale])
    report.requeued += [f"{i.org}/{i.id}" for i in stale]
    return report


def check_period(period: Period, gateway: StripeInvoices, now: datetime, report: ReconcileReport | None = None, *,
                 invoices: ReconciledInvoices | None = None) -> ReconcileReport:
    """Compare every synced invoice of the period with its Stripe copy: total, currency, and each line that
    was sent (its key and amount); a voided one, that its copy is voided (or, a draft there, deleted)."""
    report = report or ReconcileReport()
    repo: ReconciledInvoices = invoices if invoices is not None else InvoiceRepository()
    for state in (InvoiceStatus.FINALIZED, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE):
        for invoice in repo.by_state(state.value, before_period=period.next()):
            if invoice.period != period or not invoice.sync.stripe_invoice_id:
                continue
            name = f"{invoice.org}/{invoice.id}"
            try:
                copy = gateway.retrieve_invoice(invoice.sync.stripe_invoice_id)
                held = gateway.line_keys(copy.id)
            except (RetryableSyncError, PermanentSyncError) as error:
                report.unchecked.append(f"{name}: {error}")
                continue
            # What the sync sent: one Stripe line per line, or the rolled-up lines above 250.
            sent = {line.key: line.amount for line in stripe_lines(invoice, repo.lines(invoice.org, invoice.id))}
            if copy.total == invoice.total_cents and copy.currency == invoice.currency and held == sent:
                report.matched.append(name)
                flag_payment_drift(report, invoice, str(copy.status))
                continue
            _mismatched(report, repo, invoice, now, f"Stripe total {copy.total} with {len(held)} lines; ours "
                        f"{invoice.total_cents} with {len(sent)} lines sent for {invoice.line_count}")
    _check_voided(period, gateway, now, report, repo)
    flush_metrics()
    return report


def _check_voided(period: Period, gateway: StripeInvoices, now: datetime, report: ReconcileReport,
                  repo: ReconciledInvoices) -> None:
    """A voided invoice whose void reached Stripe (synced) must not be collectable there: its copy is void,
    or gone (the sync deletes a copy still in draft). Anything else would still be collected."""
    for invoice in repo.by_state(InvoiceStatus.VOID.value, before_period=period.next()):
        if invoice.period != period or not invoice.sync.stripe_invoice_id or invoice.sync.state is not SyncState.SYNCED:
            continue
        name = f"{invoice.org}/{invoice.id}"
        try:
            copy = gateway.retrieve_invoice_if_exists(invoice.sync.stripe_invoice_id)
        except (RetryableSyncError, PermanentSyncError) as error:
            report.unchecked.append(f"{name}: {error}")
            continue
        if copy is None or copy.status == "void":
            report.matched.append(name)
        else:
            _mismatched(report, repo, invoice, now, f"voided here; Stripe invoice {copy.id} is {copy.status}")


def _mismatched(report: ReconcileReport, repo: ReconciledInvoices, invoice: Invoice, now: datetime,
                reason: str) -> None:
    """Recorded as a failed sync (the alarm, and on-call's list) with the reason, counted and logged."""
    report.mismatched.append(f"{invoice.org}/{invoice.id}: {reason}")
    repo.record_sync(invoice, SyncState.FAILED, now, error=f"reconciliation mismatch: {reason}")
    metrics.add_metric(name="InvoiceMismatch", unit=MetricUnit.Count, value=1)
    logger.error("invoice differs from Stripe", extra={"org": invoice.org, "invoice_id": invoice.id,
                                                       "reason": reason})


def flag_payment_drift(report: ReconcileReport, invoice: Invoice, stripe_status: str) -> None:
    """A lost or unapplied Stripe event leaves our payment status behind Stripe's: flag it for a person."""
    reason = payment_drift(stripe_status, invoice.payment_status)
    if reason is None:
        return
    report.payment_drift.append(f"{invoice.org}/{invoice.id}: {reason}")
    metrics.add_metric(name="PaymentStatusDrift", unit=MetricUnit.Count, value=1)
    logger.error("payment status differs from Stripe", extra={"org": invoice.org, "invoice_id": invoice.id,
                                                              "reason": reason})
