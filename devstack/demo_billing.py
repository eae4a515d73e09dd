"""The demo's recurring fees and prepaid credit.

acme subscribes to standard support from the start of the month and upgrades to premium half-way
to now (over HTTP): its invoice credits the unused standard time and charges premium, to the
second. initech was given a promotional credit last month and spends it over two invoices: last
month is recorded through the service layer as of a moment last month (the API's clock is real),
finalized as the month-end job would, and synced like this month's.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import requests
from rich.console import Console

PROMOTION_CENTS = 6000


def _post(url: str, token: str, body: Any) -> dict[str, Any]:
    response = requests.post(url, data=json.dumps(body), timeout=60,
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response.raise_for_status()
    return dict(response.json())


def subscribe(api: str, admin: str, org: str, now: datetime, upgrade: bool, console: Console) -> None:
    """Standard support from the start of the month; with `upgrade`, premium from half-way to now."""
    from chalicelib.domain.periods import Period, utc_iso

    start = Period.of(now).start
    _post(f"{api}/v1/orgs/{org}/subscriptions", admin,
          {"change_id": "support-start", "plan": "support-standard", "effective_at": utc_iso(start)})
    if not upgrade:
        return
    halfway = (start + (now - start) / 2).replace(microsecond=0)
    answer = _post(f"{api}/v1/orgs/{org}/subscriptions", admin,
                   {"change_id": "support-upgrade", "plan": "support-premium", "effective_at": utc_iso(halfway)})
    held = ", ".join(f"{s['name']} since {s['since']}" for s in answer["subscriptions"])
    console.print(f"{org} upgraded its support plan at {utc_iso(halfway)}: {held}", soft_wrap=True)


def last_month_with_promotion(org: str, now: datetime, console: Console) -> str:
    """Last month for `org`, as it happened then: standard support, a little usage, a promotional credit worth
    more than the invoice (expiring with this month), and the month-end finalize. Returns the invoice id."""
    from chalicelib.config import settings
    from chalicelib.domain.credits import CreditReason
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.credits import CreditService
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.subscriptions import SubscriptionService
    from chalicelib.services.usage import UsageEvent, record_usage

    last = Period.of(now).previous()
    then = last.start + timedelta(days=19, hours=12)
    SubscriptionService(settings()).change(org, "support-start", None, "support-standard", last.start, then)
    events = [UsageEvent(f"last-month-{day}", org, "web", "machine_runtime", Decimal(86400), "iad",
                         {"preset": "performance-1x"}, last.start + timedelta(days=day)) for day in range(19)]
    results = record_usage(events, then, settings())
    assert all(r.status == "accepted" for r in results), results[:3]
    CreditService().grant(org, "launch-promotion", PROMOTION_CENTS, CreditReason.PROMOTION, "launch promotion",
                          Period.of(now).end, then)
    invoice = InvoiceService().finalize(org, invoice_id_for(last), last.end + timedelta(minutes=65))
    console.print(f"{org}: {last} finalized as of {last.end + timedelta(minutes=65):%Y-%m-%d %H:%M} UTC, "
                  f"subtotal ${invoice.subtotal_cents / 100:,.2f}, promotional credit applied "
                  f"${invoice.credits_cents / 100:,.2f}, amount due ${invoice.total_cents / 100:,.2f}", soft_wrap=True)
    return invoice.id


def print_credit_preview(invoice: dict[str, Any], console: Console) -> None:
    preview = invoice["credit_preview"]
    console.print(f"{invoice['org']} · upcoming {invoice['id']}: total {invoice['total']['display']}, credit that "
                  f"would apply {preview['would_apply']['display']} of {preview['balance']['display']}, "
                  f"balance after {preview['balance_after']['display']}, "
                  f"amount due after {preview['amount_due_after']['display']}", soft_wrap=True)
