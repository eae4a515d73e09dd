"""The demo's customer side: how each org is billed, its budget, its webhook endpoint, and what reached it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from devstack.webhook_receiver import WebhookReceiver

# acme's card is charged and succeeds; globex's card declines; initech is emailed its invoice.
BILLING = {
    "acme": {"collection_method": "charge_automatically"},
    "globex": {"collection_method": "charge_automatically"},
    "initech": {"collection_method": "send_invoice", "days_until_due": 30},
}
DECLINED = "globex"
# acme's month costs about $90 (its $29 support plan from day one): 25 % and $20 are crossed whatever
# the day, 90 % late in the month or on the projection.
ACME_BUDGET = {"amount_cents": 10000, "thresholds": [{"percent": 25}, {"percent": 90}, {"amount_cents": 2000}]}
EVENTS = ["invoice.finalized", "invoice.synced", "invoice.payment_succeeded", "invoice.payment_failed",
          "invoice.sync_delayed", "budget.threshold_crossed"]


class Customers:
    """One local receiver for every org's endpoint (one path each, one secret each)."""

    def __init__(self, api: str, admin: str, console: Console) -> None:
        self.api, self.admin, self.console = api, admin, console
        self.receivers: dict[str, WebhookReceiver] = {}

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = requests.request(method, self.api + path, data=None if body is None else json.dumps(body),
                                    timeout=60, headers={"Authorization": f"Bearer {self.admin}",
                                                         "Content-Type": "application/json"})
        response.raise_for_status()
        return dict(response.json())

    def set_up(self, orgs: dict[str, str], stripe: Any) -> None:
        for org in orgs:
            receiver = WebhookReceiver().start()
            created = self._call("POST", f"/v1/orgs/{org}/webhook-endpoints",
                                 {"url": receiver.url, "event_types": EVENTS})
            receiver.secret = created["secret"]  # shown once, kept by the customer
            self.receivers[org] = receiver
        stripe.set_payment_outcome("declines", customer=f"billing@{DECLINED}.test")
        self._call("PUT", "/v1/orgs/acme/budget", ACME_BUDGET)
        self.console.print("billing: acme charged (card succeeds), globex charged (card declines), initech emailed "
                           "(30 days); acme budget $100 with alerts at 25 %, 90 % and $20")

    def stop(self) -> None:
        for receiver in self.receivers.values():
            receiver.stop()

    def print_alerts(self, org: str) -> None:
        alerts = self._call("GET", f"/v1/orgs/{org}/alerts")["alerts"]
        table = Table(title=f"{org} · spend alerts")
        for column in ("kind", "threshold", "at spend", "alert id"):
            table.add_column(column)
        for alert in alerts:
            threshold = alert["threshold"]
            limit = f"{threshold['percent']} %" if threshold["percent"] else f"${threshold['amount_cents'] / 100:,.2f}"
            table.add_row(alert["kind"], limit, f"${alert['spend_cents'] / 100:,.2f}", alert["id"])
        self.console.print(table)

    def print_received(self) -> None:
        table = Table(title="what reached each customer's endpoint (signature verified, deduplicated by id)")
        for column in ("org", "event", "about", "status", "verified"):
            table.add_column(column)
        for org, receiver in self.receivers.items():
            seen: set[str] = set()
            for received in receiver.accepted():
                if received.event_id in seen:
                    continue
                seen.add(received.event_id)
                data = received.body.get("data", {})
                if "alert" in data:
                    alert = data["alert"]
                    about = f"{alert['period']} {alert['kind']} ≥ ${alert['threshold_cents'] / 100:,.2f}"
                    status = f"spend ${alert['spend_cents'] / 100:,.2f}"
                else:
                    about = data.get("invoice", {}).get("id", "-")
                    status = f"payment {data.get('invoice', {}).get('payment_status', '-')}"
                table.add_row(org, received.type, about, status, "yes" if received.verified else "NO")
        self.console.print(table)

    def types(self, org: str) -> set[str]:
        return {r.type for r in self.receivers[org].accepted()}

    def wait_for_payments(self, run: Callable[[], object], invoice_status: Callable[[str], dict[str, Any]],
                          timeout_s: float = 90) -> bool:
        """Stripe's webhooks reach the API on their own; deliver what they cause until the customers have it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run()
            paid = invoice_status("acme")["payment_status"] == "paid"
            failed = invoice_status(DECLINED)["payment_status"] == "failed"
            if paid and failed and "invoice.payment_failed" in self.types(DECLINED) and \
                    "invoice.payment_succeeded" in self.types("acme"):
                return True
        return False
