"""The synthetic check: a tiny invoice a day for a canary org, which must reach Stripe, `synced`
and matching ours, within minutes of its finalize.

Each run (every few minutes) looks at today's probe and moves it one step:
  no probe yet        the canary org of the day gets one usage event and its invoice is
                      finalized: from here the real stream → queue → worker path takes over;
  finalized, pending  waiting, until the deadline passes: then `late`;
  synced              Stripe's copy is read and compared (status, total, currency): `healthy`
                      or `mismatched`; a healthy probe is then voided, so it leaves the month
                      totals and its Stripe copy is voided by the same sync path;
  sync failed         `failed` (the DLQ and the invoice's last error say why).
Every run emits CanaryHealthy (1 or 0); the alarm fires on 0, or when no run reported at all.

One org per day because an org has one invoice per calendar month. Its invoices are synced
with Stripe's test-mode key (STRIPE_CANARY_API_KEY), never the live one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from aws_lambda_powertools.metrics import MetricUnit

from ..config import Settings, settings
from ..domain.invoice import Invoice, InvoiceStatus, SyncState, invoice_id_for
from ..domain.periods import Period
from ..observability import flush_metrics, logger, metrics
from ..storage.invoice_headers import InvoiceHeaders
from ..storage.orgs import OrgRepository
from ..stripe.errors import PermanentSyncError, RetryableSyncError
from ..stripe.gateway import StripeGateway, gateway_for
from .backlog import emit_backlog
from .invoices import InvoiceService
from .usage import UsageEvent, record_usage

DEADLINE = timedelta(minutes=10)  # finalize → synced and matched; the sync itself takes seconds
PROBE_EVENT = "canary-probe"
# 0.5 GB of egress in iad: one cent, the smallest amount that still reaches Stripe as a line.
PROBE_METER, PROBE_REGION, PROBE_QUANTITY = "egress", "iad", Decimal("0.5")
STRIPE_FINAL = frozenset({"open", "paid"})  # a finalized Stripe invoice (void once we void ours)
TEST_MODE_KEY_PREFIXES = ("sk_test_", "rk_test_")


class Outcome(StrEnum):
    STARTED = "started"
    WAITING = "waiting"
    HEALTHY = "healthy"
    LATE = "late"
    MISMATCHED = "mismatched"
    FAILED = "failed"


HEALTHY_OUTCOMES = frozenset({Outcome.STARTED, Outcome.WAITING, Outcome.HEALTHY})


@dataclass(frozen=True)
class CanaryReport:
    org: str
    invoice_id: str
    outcome: Outcome
    detail: str


def probe_org(base: str, now: datetime) -> str:
    return f"{base}-{now:%Y%m%d}"


def is_probe_org(base: str, org: str) -> bool:
    return bool(base) and re.fullmatch(rf"{re.escape(base)}-\d{{8}}", org) is not None


def canary_gateway() -> StripeGateway:
    """Stripe for the canary's orgs: a test-mode key, never a live one (their invoices are synthetic)."""
    current = settings()
    key = current.stripe_canary_api_key or current.stripe_api_key
    if not key.startswith(TEST_MODE_KEY_PREFIXES):
        raise PermanentSyncError("no Stripe test-mode key for the canary (set STRIPE_CANARY_API_KEY_PARAM)")
    return gateway_for(key, current.stripe_api_base, current.stripe_max_network_retries)


def scheduled_checks(now: datetime, current: Settings) -> dict[str, object]:
    """The canary function's run: the sync backlog's gauges, then today's probe (when CANARY_ORG is set)."""
    pending, oldest = emit_backlog(InvoiceHeaders(), now)
    result: dict[str, object] = {"pending_syncs": pending,
                                 "oldest_pending_seconds": oldest.age_seconds if oldest else None}
    try:
        if current.canary_org:
            report = run_canary(now, current, canary_gateway())
            result["canary"] = {"org": report.org, "invoice_id": report.invoice_id,
                                "outcome": report.outcome.value, "detail": report.detail}
    finally:
        flush_metrics()
    return result


def run_canary(now: datetime, current: Settings, gateway: StripeGateway) -> CanaryReport:
    """Move today's probe one step and report it (see the module docstring)."""
    org = probe_org(current.canary_org, now)
    invoice_id = invoice_id_for(Period.of(now))
    repo = InvoiceHeaders()
    invoice = repo.get(org, invoice_id)
    if invoice is None or invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.FINALIZING):
        _start(org, invoice_id, now, current)
        report = CanaryReport(org, invoice_id, Outcome.STARTED, "probe finalized; the sync takes it from here")
    else:
        report = _check(invoice, now, gateway)
    healthy = report.outcome in HEALTHY_OUTCOMES
    metrics.add_metric(name="CanaryHealthy", unit=MetricUnit.Count, value=1 if healthy else 0)
    (logger.info if healthy else logger.error)("canary", extra={"org": org, "invoice_id": invoice_id,
                                                                "outcome": report.outcome.value,
                                                                "detail": report.detail})
    return report


def _start(org: str, invoice_id: str, now: datetime, current: Settings) -> None:
    orgs = OrgRepository()
    if orgs.get(org) is None:
        orgs.upsert(org, "Invoicing canary", f"{org}@canary.example.com", "usd", now)
    event = UsageEvent(PROBE_EVENT, org, "canary", PROBE_METER, PROBE_QUANTITY, PROBE_REGION, {}, now)
    (result,) = record_usage([event], now, current)
    if result.status == "rejected":
        raise RuntimeError(f"the canary's usage event was rejected: {result.error}")
    invoice = InvoiceHeaders().get(org, invoice_id)
    if invoice is not None and invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.FINALIZING):
        InvoiceService().finalize(org, invoice_id, now)


def _check(invoice: Invoice, now: datetime, gateway: StripeGateway) -> CanaryReport:
    def report(outcome: Outcome, detail: str) -> CanaryReport:
        return CanaryReport(invoice.org, invoice.id, outcome, detail)

    sync = invoice.sync
    if sync.state is SyncState.FAILED:
        return report(Outcome.FAILED, f"sync failed: {sync.last_error}")
    if sync.state is not SyncState.SYNCED:
        since = sync.requested_at or invoice.finalized_at or now
        waited = now - since
        if waited > DEADLINE:
            return report(Outcome.LATE, f"not synced {int(waited.total_seconds())} s after it was asked for")
        return report(Outcome.WAITING, f"sync pending for {int(waited.total_seconds())} s")
    if invoice.status is InvoiceStatus.VOID:
        return report(Outcome.HEALTHY, "verified earlier today, voided in Stripe too")
    problem = _mismatch(invoice, gateway)
    if problem:
        return report(Outcome.MISMATCHED, problem)
    if invoice.finalized_at and sync.synced_at:
        seconds = (sync.synced_at - invoice.finalized_at).total_seconds()
        metrics.add_metric(name="CanarySyncSeconds", unit=MetricUnit.Seconds, value=seconds)
    # Voided once verified: the probe leaves the month totals, and the void travels the same sync path.
    InvoiceService().void(invoice.org, invoice.id, now)
    return report(Outcome.HEALTHY, "synced and matching Stripe; voided")


def _mismatch(invoice: Invoice, gateway: StripeGateway) -> str | None:
    if not invoice.sync.stripe_invoice_id:
        return "synced without a Stripe invoice id"
    try:
        copy = gateway.retrieve_invoice(invoice.sync.stripe_invoice_id)
    except (RetryableSyncError, PermanentSyncError) as error:
        return f"Stripe's copy could not be read: {error}"
    if copy.status not in STRIPE_FINAL or copy.total != invoice.total_cents or copy.currency != invoice.currency:
        return (f"Stripe has {copy.status} {copy.total} {copy.currency}; "
                f"ours is finalized {invoice.total_cents} {invoice.currency}")
    return None
