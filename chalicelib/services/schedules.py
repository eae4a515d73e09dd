"""The hourly jobs, each one call from its schedule."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from ..config import Settings
from ..domain.periods import Period
from ..observability import logger
from .credits import CreditService
from .invoices import InvoiceService
from .notifications import announce_delayed_syncs
from .reconcile import check_period, requeue_stale
from .subscriptions import SubscriptionService
from .sync_worker import default_gateway


def close_months(now: datetime, settings: Settings) -> dict[str, Any]:
    """Finalize drafts of past periods whose grace has passed (and resume interrupted ones); then open
    subscribers' drafts with their recurring lines, and expire credit no invoice can use any more."""
    finalized = InvoiceService().finalize_due(now, settings.finalize_grace)
    opened = SubscriptionService(settings).sweep(now)
    expired = CreditService().expire_due(now, settings.finalize_grace)
    logger.info("month-end finalize", extra={"finalized": len(finalized), "subscriptions": len(opened),
                                             "credits_expired": len(expired)})
    return {"finalized": [f"{i.org}/{i.id}" for i in finalized], "subscriptions": opened, "credits_expired": expired}


def reconcile_recent(now: datetime, settings: Settings) -> dict[str, Any]:
    """Re-enqueue syncs stuck past the threshold; compare this and last period with Stripe; tell customers
    whose invoice is late."""
    report = requeue_stale(now, settings.sync_stale_after)
    for period in (Period.of(now).previous(), Period.of(now)):
        check_period(period, default_gateway(), now, report)
    announce_delayed_syncs(now, settings.sync_stale_after)
    return asdict(report)
