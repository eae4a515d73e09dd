"""Signed webhook delivery of ``invoice.*`` events.

Events are POSTed as Stripe Event JSON with a ``Stripe-Signature`` header of
the form ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`` keyed with
the endpoint's ``whsec_`` secret, which ``stripe.Webhook.construct_event``
verifies. Delivery runs on a background thread so API responses never wait
for the receiver; it is best effort with a few quick retries, and every
attempt is recorded for inspection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import Any

DELIVERED_EVENT_TYPES = frozenset({
    "invoice.finalized", "invoice.paid", "invoice.payment_failed",
    "invoice.payment_action_required", "invoice.voided", "invoice.marked_uncollectible",
})


def sign(payload: str, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for ``payload``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


class WebhookDispatcher:
    def __init__(self, url: str | None = None, secret: str | None = None, *,
                 max_attempts: int = 3, retry_delay_s: float = 0.2,
                 timeout_s: float = 5.0) -> None:
        self.url = url
        self.secret = secret or new_secret()
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self.timeout_s = timeout_s
        self._initial_retries = (max_attempts, retry_delay_s, timeout_s)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._deliveries: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        # Loopback receivers must not be sent through an HTTP proxy that may
        # be configured in the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def configure(self, url: str | None, secret: str | None = None) -> None:
        self.url = url
        if secret:
            self.secret = secret

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="stripe-emulator-webhooks",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    def submit(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for delivery; never blocks the caller."""
        if self.url is None or event["type"] not in DELIVERED_EVENT_TYPES:
            return
        event["pending_webhooks"] = 1
        record = {"event_id": event["id"], "type": event["type"], "url": self.url,
                  "status": "pending", "attempts": [], "payload": None,
                  "signature": None}
        with self._lock:
            self._deliveries.append(record)
        # Serialise now: the event is a snapshot of the object at this moment.
        self._queue.put({"record": record, "payload": json.dumps(event, default=str),
                         "url": self.url, "secret": self.secret})

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d, attempts=list(d["attempts"])) for d in self._deliveries]

    def reset(self, url: str | None, secret: str) -> None:
        """Forget past deliveries, drop the ones not yet attempted, and deliver to `url` again with the
        retry settings given at construction."""
        with self._lock:
            self._deliveries.clear()
        stopping = False  # a stop request waiting in the queue must survive
        while True:
            try:
                stopping = self._queue.get_nowait() is None or stopping
            except queue.Empty:
                break
        if stopping:
            self._queue.put(None)
        self.configure(url, secret)
        self.max_attempts, self.retry_delay_s, self.timeout_s = self._initial_retries

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._deliver(job)

    def _deliver(self, job: dict[str, Any]) -> None:
        record = job["record"]
        for attempt in range(self.max_attempts):
            if attempt:
                time.sleep(self.retry_delay_s * 2 ** (attempt - 1))
            header = sign(job["payload"], job["secret"], int(time.time()))
            outcome = self._post(job["url"], job["payload"], header)
            with self._lock:
                record["payload"], record["signature"] = job["payload"], header
                record["attempts"].append(outcome)
                # Stripe counts any 2xx answer as delivered.
                ok = outcome["status_code"] is not None and 200 <= outcome["status_code"] < 300
                last = attempt == self.max_attempts - 1
                record["status"] = "delivered" if ok else ("failed" if last else "retrying")
            if ok:
                return

    def _post(self, url: str, payload: str, header: str) -> dict[str, Any]:
        request = urllib.request.Request(
            url, data=payload.encode(), method="POST",
            headers={"Content-Type": "application/json; charset=utf-8",
                     "Stripe-Signature": header,
                     "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})
        started = time.time()
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                status, error = response.status, None
        except urllib.error.HTTPError as exc:
            status, error = exc.code, None
        except (urllib.error.URLError, OSError) as exc:
            status, error = None, str(exc)
        return {"at": started, "status_code": status, "error": error,
                "duration_ms": round((time.time() - started) * 1000, 1)}
