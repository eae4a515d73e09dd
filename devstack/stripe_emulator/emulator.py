"""``StripeEmulator``: the server plus its in-process admin interface."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import stripe
from werkzeug.wrappers import Request, Response

from . import invoices, payments
from .admin import AdminApp
from .api import ApiApp, to_json
from .faults import FaultInjector, FaultRule
from .idempotency import DEFAULT_TTL_SECONDS, IdempotencyStore
from .limits import DEFAULT_ENDPOINT_PER_SECOND, DEFAULT_GLOBAL_PER_SECOND, KEEP, RateLimiter
from .metrics import RequestMetrics
from .server import BackgroundServer
from .store import Store
from .webhooks import WebhookDispatcher


class StripeEmulator:
    """A stateful Stripe API emulator for stripe-python, served on loopback.

    Point a client at it with
    ``stripe.StripeClient(key, base_addresses={"api": emulator.start()})``.
    Every admin action is available here as a method and over HTTP under
    ``/_emulator/`` (see ``admin.py``).
    """

    def __init__(self, *, api_keys: Iterable[str] = (), webhook_url: str | None = None,
                 webhook_secret: str | None = None,
                 global_rate_limit: int | None = DEFAULT_GLOBAL_PER_SECOND,
                 endpoint_rate_limit: int | None = DEFAULT_ENDPOINT_PER_SECOND,
                 idempotency_ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 seed: int | None = None, max_invoice_lines: int = 250,
                 verbose: bool = False) -> None:
        self._initial_limits = (global_rate_limit, endpoint_rate_limit)
        self._initial_ttl = idempotency_ttl_seconds
        self._initial_seed = seed
        self.store = Store(max_invoice_lines=max_invoice_lines)
        self.store.api_version = stripe.api_version
        self.idempotency = IdempotencyStore(ttl_seconds=idempotency_ttl_seconds)
        self.limiter = RateLimiter(global_rate_limit, endpoint_rate_limit)
        self.faults = FaultInjector(seed)
        self.metrics = RequestMetrics()
        self.webhooks = WebhookDispatcher(webhook_url, webhook_secret)
        self._initial_webhooks = (webhook_url, self.webhooks.secret)
        self.store.event_sink = self.webhooks.submit
        self._api = ApiApp(store=self.store, idempotency=self.idempotency,
                           limiter=self.limiter, faults=self.faults,
                           metrics=self.metrics, api_keys=api_keys)
        self._admin = AdminApp(self)
        self._server = BackgroundServer(self._wsgi, verbose=verbose)
        self.base_url: str | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a background thread; returns the base URL."""
        if self.base_url is not None:
            raise RuntimeError("emulator already started")
        self.webhooks.start()
        self.base_url = self._server.start(host, port)
        return self.base_url

    def stop(self) -> None:
        self._server.stop()
        self.webhooks.stop()
        self.base_url = None

    def __enter__(self) -> StripeEmulator:
        if self.base_url is None:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/_emulator"):
            response: Response = self._admin.handle(request)
        else:
            response = self._api.handle(request)
        return response(environ, start_response)

    # -- state ------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything the account holds, invoices with all their lines."""
        with self.store.lock:
            dump = {
                "customers": list(self.store.customers.values()),
                "invoices": [invoices.render(self.store, inv, all_lines=True)
                             for inv in self.store.invoices.values() if not inv.get("deleted")],
                "invoice_items": list(self.store.invoice_items.values()),
                "events": len(self.store.events),
            }
            state: dict[str, Any] = json.loads(to_json(dump))
            return state

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        """One invoice as the API shows it, with all of its lines."""
        with self.store.lock:
            rendered = invoices.render(self.store, invoices.get(self.store, invoice_id),
                                       all_lines=True)
            result: dict[str, Any] = json.loads(to_json(rendered))
            return result

    def reset(self) -> None:
        """Back to a fresh account with the configuration given at construction (webhook endpoint and
        secret included), so one running emulator can serve many tests, each from a clean start."""
        self.store.reset()
        self.idempotency.forget_all()
        self.idempotency.ttl_seconds = self._initial_ttl
        self.metrics.reset()
        self.faults.clear()
        self.faults.seed(self._initial_seed)
        self.limiter.configure(global_per_second=self._initial_limits[0],
                               per_endpoint_per_second=self._initial_limits[1],
                               endpoint_overrides={})
        self.limiter.reset()
        self.webhooks.reset(*self._initial_webhooks)

    # -- request counts -----------------------------------------------------------
    def request_counts(self) -> dict[str, Any]:
        return self.metrics.counts()

    def requests_for_invoice(self, invoice_id: str) -> int:
        count: int = self.metrics.counts()["by_invoice"].get(invoice_id, 0)
        return count

    def request_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self.metrics.log(limit)

    def reset_request_counts(self) -> None:
        self.metrics.reset()

    # -- faults and limits ----------------------------------------------------------
    def add_fault(self, match: str = "*", **settings: Any) -> str:
        """Add a fault rule (see ``FaultRule``); returns its id."""
        return self.faults.add(FaultRule(match=match, **settings))

    def fail_next(self, match: str, count: int = 1, kind: str = "error",
                  status: int = 500) -> str:
        return self.faults.fail_next(match, count, kind, status)

    def remove_fault(self, fault_id: str) -> bool:
        return self.faults.remove(fault_id)

    def clear_faults(self) -> None:
        self.faults.clear()

    def seed(self, seed: int | None) -> None:
        self.faults.seed(seed)

    def set_rate_limits(self, *, global_per_second: Any = KEEP,
                        per_endpoint_per_second: Any = KEEP,
                        endpoint_overrides: Any = KEEP) -> dict[str, Any]:
        """Change limits (None = unlimited); omitted arguments are kept."""
        self.limiter.configure(global_per_second=global_per_second,
                               per_endpoint_per_second=per_endpoint_per_second,
                               endpoint_overrides=endpoint_overrides)
        return self.limiter.describe()

    # -- idempotency -----------------------------------------------------------------
    def forget_idempotency_keys(self) -> int:
        return self.idempotency.forget_all()

    def set_idempotency_ttl(self, seconds: float) -> None:
        self.idempotency.ttl_seconds = seconds

    def idempotency_key_count(self) -> int:
        return self.idempotency.count()

    def idempotency_keys_in_flight(self) -> list[str]:
        return self.idempotency.in_flight()

    # -- webhooks and payments ------------------------------------------------------------
    def configure_webhooks(self, url: str | None, secret: str | None = None) -> None:
        self.webhooks.configure(url, secret)

    @property
    def webhook_secret(self) -> str:
        return self.webhooks.secret

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return self.webhooks.deliveries()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self.store.lock:
            return [e for e in self.store.events if event_type in (None, e["type"])]

    def mark_payment_failed(self, invoice_id: str) -> dict[str, Any]:
        """Record a failed collection attempt; sends ``invoice.payment_failed``."""
        with self.store.lock:
            return invoices.record_payment_failure(
                self.store, invoices.get(self.store, invoice_id))

    def set_payment_outcome(self, outcome: str, customer: str | None = None) -> None:
        """How a card charge ends (`succeeds`, `declines`, `requires_action`) for one customer (by id or
        email), or for every customer without one when `customer` is None."""
        payments.check_outcome(outcome)
        with self.store.lock:
            if customer is None:
                self.store.default_payment_outcome = outcome
            else:
                self.store.payment_outcomes[customer] = outcome

    def decline_next_payment(self, invoice_id: str) -> None:
        """Make the next ``/pay`` of this invoice fail with a card decline."""
        with self.store.lock:
            invoices.get(self.store, invoice_id)["_decline_next_payment"] = True

